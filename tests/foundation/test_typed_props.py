"""Typed props are enforced: a wrong type for any prop of a public construct or props class fails at construction
with a TypeError naming the prop, what was given and what is accepted (never a KeyError, AttributeError, a
silently wrong network or a jsii traceback).

Property-based: hypothesis draws a construct, one of its props and a value of a type that prop does not accept.
Covered: the VPC, cluster, VPC CNI, Calico and CIDR reservation constructs and props, every Multus construct and
props class (``eksnet.multus``: the Multus errors are ``MultusTypeError``, a ``TypeError`` that is also their
``MultusConfigError``) and the NetworkPolicy builders (``eksnet.policy``).
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
from eksnet import policy, typecheck
from eksnet.calico import Calico
from eksnet.cidr_reservation import CidrReservationType, SubnetCidrReservation
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import DeployEnv, EksnetStack
from eksnet.multus import (
    EksnetIpam,
    HostDevice,
    HostLocalIpam,
    IpRange,
    Ipvlan,
    Macvlan,
    MultusConfigError,
    MultusEniAttacher,
    MultusInstall,
    MultusInterface,
    MultusInterfaces,
    MultusManifests,
    MultusNetworking,
    MultusNodeBootstrap,
    MultusTypeError,
    NetworkAttachmentDefinition,
    NetworkSelection,
    NodegroupRef,
    NodeRuntimeInstall,
    PerIpMultus,
    PerIpRanges,
    PerIpSettings,
    Route,
    StaticAddress,
    StaticIpam,
    multus_image,
    multus_manifests,
    network_selection_annotation,
)
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
from support.envs import deploy_env

_ids = itertools.count()


@dataclass
class Case:
    owner: str
    make: Callable[..., object]  # called with the base kwargs plus the one wrong prop
    signature: object  # the function or class whose annotations declare the props
    base: dict


@pytest.fixture(scope="module")
def world():
    stack = EksnetStack(cdk.App(), "Typed", deploy_env=deploy_env())
    vpc = EksVpc(stack, "Vpc", flow_logs=False)
    cluster = EksCluster(stack, "Cluster", vpc=vpc, cluster_name="typed", ip_family=eks.IpFamily.IP_V4)
    imported = ec2.Vpc.from_vpc_attributes(
        stack, "Imported", vpc_id="vpc-1", availability_zones=["eu-central-1a"], private_subnet_ids=["subnet-1"],
        private_subnet_route_table_ids=["rtb-1"])

    def construct(cls):
        return lambda **kw: cls(stack, f"X{next(_ids)}", **kw)

    def props(cls, **base):
        return Case(cls.__name__, cls, cls, base)

    def builder(func, **base):
        return Case(func.__name__, func, func, base)

    subnet = vpc.private_subnets[0]
    security_group = ec2.SecurityGroup(stack, "Sg", vpc=vpc.vpc)
    nad_base = {"name": "net", "interface": Ipvlan(master="multus1"), "ipam": EksnetIpam(pool="multus1")}
    manifest = {"kind": "ConfigMap"}

    cases = [
        Case("EksVpc", construct(EksVpc), EksVpc.__init__, {}),
        Case("EksCluster", construct(EksCluster), EksCluster.__init__, {"vpc": vpc, "cluster_name": "c"}),
        Case("Calico", construct(Calico), Calico.__init__, {"cluster": cluster}),
        Case("Ipv6ForImportedVpc", construct(Ipv6ForImportedVpc), Ipv6ForImportedVpc.__init__, {"vpc": imported}),
        Case("SubnetCidrReservation", construct(SubnetCidrReservation), SubnetCidrReservation.__init__,
             {"subnet": vpc.private_subnets[0], "cidr": "192.168.96.0/28",
              "reservation_type": CidrReservationType.EXPLICIT}),
        Case("DeployEnv", DeployEnv, DeployEnv, {"account": "123456789012", "region": "eu-central-1"}),
        Case("MultusNetwork", MultusNetwork, MultusNetwork, {}),
        Case("NodeGroupSpec", NodeGroupSpec, NodeGroupSpec, {"name": "ng"}),
        Case("VpcCniConfig", VpcCniConfig, VpcCniConfig, {}),
        Case("SecondaryIpMode", SecondaryIpMode, SecondaryIpMode, {}),
        Case("PrefixMode", PrefixMode, PrefixMode, {}),
        Case("PodSecurityGroups", PodSecurityGroups, PodSecurityGroups, {}),
        Case("EniSubnet", EniSubnet, EniSubnet, {"subnet_id": "subnet-1", "security_group_ids": ("sg-1",)}),
        Case("CustomNetworking", CustomNetworking, CustomNetworking,
             {"subnets": {"eu-central-1a": EniSubnet("subnet-1", ("sg-1",))}}),
        # --- eksnet.multus ---
        Case("MultusNetworking", construct(MultusNetworking), MultusNetworking.__init__,
             {"vpc": vpc, "cluster": cluster, "interfaces": [MultusInterface()]}),
        Case("MultusEniAttacher", construct(MultusEniAttacher), MultusEniAttacher.__init__,
             {"cluster_name": "typed", "subnets": {subnet.availability_zone: [subnet]},
              "security_group": security_group, "nodegroups": [NodegroupRef("typed", "ng")]}),
        Case("MultusNodeBootstrap", construct(MultusNodeBootstrap), MultusNodeBootstrap.__init__, {}),
        Case("MultusInstall", construct(MultusInstall), MultusInstall.__init__, {"cluster": cluster.cluster}),
        Case("PerIpMultus", construct(PerIpMultus), PerIpMultus.__init__,
             {"subnets": {subnet.availability_zone: subnet}, "ranges": PerIpRanges(prefix_length=28),
              "device_index": 1, "cluster": cluster}),
        props(MultusInterface), props(PerIpSettings), props(MultusInterfaces), props(NodeRuntimeInstall),
        props(PerIpRanges, prefix_length=28), props(NodegroupRef, cluster_name="c", nodegroup_name="ng"),
        props(MultusManifests, crd=manifest, service_account=manifest, cluster_role=manifest,
              cluster_role_binding=manifest, config_map=manifest, daemon_set=manifest),
        props(NetworkAttachmentDefinition, **nad_base), props(NetworkSelection, network="net"),
        props(Ipvlan, master="multus1"), props(Macvlan, master="multus1"), props(HostDevice, device="multus1"),
        props(EksnetIpam, pool="multus1"), props(HostLocalIpam, ranges=(IpRange("192.168.0.0/24"),)),
        props(StaticIpam), props(StaticAddress, address="192.168.0.10/24"), props(IpRange, subnet="192.168.0.0/24"),
        props(Route, dst="192.168.0.0/24"),
        builder(multus_manifests, image="example.com/multus:1"), builder(multus_image, region="eu-central-1"),
        # --- eksnet.policy ---
        props(policy.Requirement, key="app", operator=policy.SelectorOperator.EXISTS), props(policy.LabelSelector),
        props(policy.Port), props(policy.IpBlock, cidr="10.0.0.0/8"),
        props(policy.Peer, pod_selector=policy.ALL), props(policy.Rule),
        props(policy.NetworkPolicy, name="p", namespace="ns", ingress=()),
        builder(policy.namespace_named, name="ns"), builder(policy.tcp, port=80), builder(policy.udp, port=53),
        builder(policy.default_deny_ingress, namespace="ns"), builder(policy.default_deny_egress, namespace="ns"),
        builder(policy.default_deny_all, namespace="ns"), builder(policy.allow_dns_egress, namespace="ns"),
        builder(policy.allow_ingress, namespace="ns", name="p", peers=[policy.Peer.pods(policy.ALL)]),
        builder(policy.allow_egress, namespace="ns", name="p", peers=[policy.Peer.pods(policy.ALL)]),
        builder(policy.allow_all_ingress, namespace="ns"), builder(policy.allow_all_egress, namespace="ns"),
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
MULTUS_OWNERS = ["MultusNetworking", "MultusEniAttacher", "MultusNodeBootstrap", "MultusInstall", "PerIpMultus",
                 "MultusInterface", "PerIpSettings", "MultusInterfaces", "NodeRuntimeInstall", "PerIpRanges",
                 "NodegroupRef", "MultusManifests", "NetworkAttachmentDefinition", "NetworkSelection", "Ipvlan",
                 "Macvlan", "HostDevice", "EksnetIpam", "HostLocalIpam", "StaticIpam", "StaticAddress", "IpRange",
                 "Route", "multus_manifests", "multus_image"]
POLICY_OWNERS = ["Requirement", "LabelSelector", "Port", "IpBlock", "Peer", "Rule", "NetworkPolicy",
                 "namespace_named", "tcp", "udp", "default_deny_ingress", "default_deny_egress", "default_deny_all",
                 "allow_dns_egress", "allow_ingress", "allow_egress", "allow_all_ingress", "allow_all_egress"]


@pytest.mark.parametrize("owner", OWNERS + MULTUS_OWNERS + POLICY_OWNERS)
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
    if owner in MULTUS_OWNERS:  # code catching the Multus errors keeps catching them
        assert isinstance(raised.value, MultusConfigError)


def test_every_public_class_of_the_multus_package_and_the_policy_builders_is_covered(world):
    import eksnet.multus as multus

    public = {name for name in multus.__all__ if isinstance(getattr(multus, name), type)}
    abstract_or_enum = {"Interface", "Ipam", "CniVersion", "IpvlanMode", "MacvlanMode", "MultusLogLevel",
                        "AddressMode", "RpFilter", "MultusConfigError", "MultusTypeError"}
    no_props = {"NodeRuntimeAsset"}  # (scope, id) only
    assert public - abstract_or_enum - no_props <= set(MULTUS_OWNERS)
    policy_classes = {n for n, v in vars(policy).items() if isinstance(v, type) and v.__module__ == policy.__name__}
    assert policy_classes - {"Protocol", "SelectorOperator"} <= set(POLICY_OWNERS)
    assert set(OWNERS + MULTUS_OWNERS + POLICY_OWNERS) <= set(world)


def test_multus_wrong_types_are_refused_before_anything_is_made(world):
    with pytest.raises(MultusTypeError, match=r"MultusInterface.mode must be AddressMode \(one of PREFIX, PER_IP\), "
                                              r"got 'prefix' \(str\)"):
        MultusInterface(mode="prefix")
    with pytest.raises(MultusTypeError, match=r"Ipvlan.mode must be IpvlanMode \(one of L2, L3, L3S\)"):
        Ipvlan(master="multus1", mode="l3")
    with pytest.raises(MultusTypeError, match=r"MultusEniAttacher.heartbeat_timeout must be cdk.Duration or None"):
        world["MultusEniAttacher"].make(**{**world["MultusEniAttacher"].base, "heartbeat_timeout": 300})
    with pytest.raises(MultusTypeError, match=r"network_selection_annotation.networks\[1\] must be str or "
                                              r"NetworkAttachmentDefinition or NetworkSelection, got 7 \(int\)"):
        network_selection_annotation("net", 7)
    with pytest.raises(MultusTypeError, match=r"MultusNodeBootstrap.runtime must be NodeRuntimeInstall, got None"):
        world["MultusNodeBootstrap"].make(runtime=None)
    # right types are unchanged: a NAD still takes its labels as pairs or as a mapping
    nad = NetworkAttachmentDefinition(name="net", interface=Ipvlan(master="multus1"), ipam=EksnetIpam(pool="multus1"),
                                      labels={"app": "web"})
    assert nad.to_manifest()["metadata"]["labels"] == {"app": "web"}
    assert network_selection_annotation(nad, NetworkSelection("other", interface="net2")) == {
        "k8s.v1.cni.cncf.io/networks": "net,other@net2"}


def test_policy_wrong_types_are_refused_with_the_props_name():
    with pytest.raises(TypeError, match=r"Port.protocol must be Protocol \(one of TCP, UDP, SCTP\), got 'TCP'"):
        policy.Port(80, "TCP")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Port.port must be int or str or None, got True \(bool\)"):
        policy.Port(True)
    with pytest.raises(TypeError, match=r"allow_ingress.peers must be a list or tuple of Peer, got 'web'"):
        policy.allow_ingress("ns", "p", peers="web")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"NetworkPolicy.ingress must be a tuple of rules, not a single Rule"):
        policy.NetworkPolicy(name="p", namespace="ns", ingress=policy.Rule())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"LabelSelector.labels.app must be str, got 1 \(int\)"):
        policy.LabelSelector.labels(app=1)  # type: ignore[arg-type]
    # an iterable of peers that is not a list (a generator) is still taken
    peers = (policy.Peer.pods(policy.LabelSelector.labels(app=a)) for a in ("web", "api"))
    assert len(policy.allow_ingress("ns", "p", peers=peers).ingress[0].peers) == 2


def test_the_seeds_mistakes_are_refused_not_coerced(world):
    with pytest.raises(TypeError, match=r"EksVpc.pod_ipv4_egress must be PodIpv4Egress \(one of NODE_SNAT, NAT64\)"):
        world["EksVpc"].make(pod_ipv4_egress="NAT64")
    with pytest.raises(TypeError, match=r"EksVpc.nat_gateways must be NatGateways .* got 'none' \(str\)"):
        world["EksVpc"].make(nat_gateways="none")
    with pytest.raises(TypeError, match="NodeGroupSpec.instance_types must be a list or tuple of str"):
        NodeGroupSpec("ng", instance_types="m7g.large")
    # and the typed forms still work
    assert world["EksVpc"].make(nat_gateways=NatGateways.NONE, pod_ipv4_egress=PodIpv4Egress.NODE_SNAT)
