"""Typed props are enforced: a wrong type for any prop of a public construct or props class fails at construction
with a TypeError naming the prop, what was given and what is accepted (never a KeyError, AttributeError, a
silently wrong network or a jsii traceback).

Property-based: hypothesis draws a construct, one of its props and a value of a type that prop does not accept.
The Multus constructs (``eksnet.multus``) are not covered here: that package is being rewritten on its own branch.
"""

from __future__ import annotations

import inspect
import itertools
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from eksnet import typecheck
from eksnet.calico import Calico
from eksnet.cidr_reservation import CidrReservationType, SubnetCidrReservation
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import DeployEnv, EksnetStack
from eksnet.vpc import EksVpc, MultusNetwork, NatGateways, PodIpv4Egress
from eksnet.vpc_cni import (
    CustomNetworking,
    EniSubnet,
    PodSecurityGroups,
    PrefixMode,
    SecondaryIpMode,
    VpcCniConfig,
)
from eksnet.vpc_import import Ipv6ForImportedVpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_ids = itertools.count()


@dataclass
class Case:
    owner: str
    make: Callable[..., object]  # called with the base kwargs plus the one wrong prop
    signature: object  # the function or class whose annotations declare the props
    base: dict


@pytest.fixture(scope="module")
def world():
    stack = EksnetStack(cdk.App(), "Typed", deploy_env=DeployEnv())
    vpc = EksVpc(stack, "Vpc", flow_logs=False)
    cluster = EksCluster(stack, "Cluster", vpc=vpc, cluster_name="typed", ip_family=eks.IpFamily.IP_V4)
    imported = ec2.Vpc.from_vpc_attributes(
        stack, "Imported", vpc_id="vpc-1", availability_zones=["eu-central-1a"], private_subnet_ids=["subnet-1"],
        private_subnet_route_table_ids=["rtb-1"])

    def construct(cls):
        return lambda **kw: cls(stack, f"X{next(_ids)}", **kw)

    cases = [
        Case("EksVpc", construct(EksVpc), EksVpc.__init__, {}),
        Case("EksCluster", construct(EksCluster), EksCluster.__init__, {"vpc": vpc, "cluster_name": "c"}),
        Case("Calico", construct(Calico), Calico.__init__, {"cluster": cluster}),
        Case("Ipv6ForImportedVpc", construct(Ipv6ForImportedVpc), Ipv6ForImportedVpc.__init__, {"vpc": imported}),
        Case("SubnetCidrReservation", construct(SubnetCidrReservation), SubnetCidrReservation.__init__,
             {"subnet": vpc.private_subnets[0], "cidr": "192.168.96.0/28",
              "reservation_type": CidrReservationType.EXPLICIT}),
        Case("DeployEnv", DeployEnv, DeployEnv, {}),
        Case("MultusNetwork", MultusNetwork, MultusNetwork, {}),
        Case("NodeGroupSpec", NodeGroupSpec, NodeGroupSpec, {"name": "ng"}),
        Case("VpcCniConfig", VpcCniConfig, VpcCniConfig, {}),
        Case("SecondaryIpMode", SecondaryIpMode, SecondaryIpMode, {}),
        Case("PrefixMode", PrefixMode, PrefixMode, {}),
        Case("PodSecurityGroups", PodSecurityGroups, PodSecurityGroups, {}),
        Case("EniSubnet", EniSubnet, EniSubnet, {"subnet_id": "subnet-1", "security_group_ids": ("sg-1",)}),
        Case("CustomNetworking", CustomNetworking, CustomNetworking,
             {"subnets": {"eu-central-1a": EniSubnet("subnet-1", ("sg-1",))}}),
    ]
    return {c.owner: c for c in cases}


def _props(signature) -> dict[str, object]:
    hints = typing.get_type_hints(signature.__init__ if isinstance(signature, type) else signature)
    if is_dataclass(signature):
        return {f.name: hints[f.name] for f in fields(signature)}
    names = [n for n in inspect.signature(signature).parameters if n not in ("self", "scope", "id")]
    return {n: hints[n] for n in names if n in hints}


WRONG = st.one_of(
    st.text(max_size=6), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
)
# Props that accept any object (EksCluster.vpc: an ec2.IVpc or an EksVpc-like object) cannot be given a wrong type.
_SAMPLES = ["x", 1, 1.5, True, None, [1], {"a": 1}, object()]
OWNERS = ["EksVpc", "EksCluster", "Calico", "Ipv6ForImportedVpc", "SubnetCidrReservation", "DeployEnv",
          "MultusNetwork", "NodeGroupSpec", "VpcCniConfig", "SecondaryIpMode", "PrefixMode", "PodSecurityGroups",
          "EniSubnet", "CustomNetworking"]


@pytest.mark.parametrize("owner", OWNERS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_wrong_type_for_any_prop_is_refused_with_the_props_name(world, owner, data):
    case = world[owner]
    props = {n: a for n, a in _props(case.signature).items()
             if not all(typecheck.matches(v, a) for v in _SAMPLES)}
    assert props, f"{owner} has no checkable props"
    prop = data.draw(st.sampled_from(sorted(props)), label="prop")
    value = data.draw(WRONG.filter(lambda v: not typecheck.matches(v, props[prop])), label="value")
    with pytest.raises(TypeError) as raised:
        case.make(**{**case.base, prop: value})
    message = str(raised.value)
    assert message.startswith(f"{owner}.{prop} must be "), message
    assert f"got {value!r}" in message


def test_the_seeds_mistakes_are_refused_not_coerced(world):
    with pytest.raises(TypeError, match=r"EksVpc.pod_ipv4_egress must be PodIpv4Egress \(one of NODE_SNAT, NAT64\)"):
        world["EksVpc"].make(pod_ipv4_egress="NAT64")
    with pytest.raises(TypeError, match=r"EksVpc.nat_gateways must be NatGateways .* got 'none' \(str\)"):
        world["EksVpc"].make(nat_gateways="none")
    with pytest.raises(TypeError, match="NodeGroupSpec.instance_types must be a list or tuple of str"):
        NodeGroupSpec("ng", instance_types="m7g.large")
    # and the typed forms still work
    assert world["EksVpc"].make(nat_gateways=NatGateways.NONE, pod_ipv4_egress=PodIpv4Egress.NODE_SNAT)
