"""What ``EksCluster(vpc=...)`` reads from its VPC, for each kind of VPC its docstring names.

One app, synthesized once for the module, with a cluster on each VPC that works: an ``EksVpc``, a dual-stack
``ec2.Vpc`` built in the app, and a VPC imported with ``ec2.Vpc.from_vpc_attributes`` and its subnet ids.
What cannot work is refused before anything is made: an imported VPC that lists no private subnets, and a
``vpc`` that is no VPC at all.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import EksnetStack
from eksnet.vpc import EksVpc, PodIpv4Egress
from support.cfn import props
from support.envs import deploy_env

ZONES = ["eu-central-1a", "eu-central-1b"]


def _imported(stack, id="Imported", **subnets):
    return ec2.Vpc.from_vpc_attributes(stack, id, vpc_id="vpc-0123", availability_zones=ZONES, **subnets)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster-vpc") / "out"
    app = cdk.App(outdir=str(out))
    stacks, clusters, vpcs = {}, {}, {}

    stack = stacks["eksvpc"] = EksnetStack(app, "OnEksVpc", deploy_env=deploy_env())
    vpcs["eksvpc"] = EksVpc(stack, "Vpc", pod_ipv4_egress=PodIpv4Egress.NAT64, cluster_names=["a"], flow_logs=False)
    clusters["eksvpc"] = EksCluster(stack, "C", vpc=vpcs["eksvpc"], cluster_name="a", ip_family=eks.IpFamily.IP_V6,
                                    nodegroups=[NodeGroupSpec("ng")])

    stack = stacks["vpc"] = EksnetStack(app, "OnVpc", deploy_env=deploy_env())
    vpcs["vpc"] = ec2.Vpc(stack, "Vpc", ip_protocol=ec2.IpProtocol.DUAL_STACK, max_azs=2, nat_gateways=1)
    clusters["vpc"] = EksCluster(stack, "C", vpc=vpcs["vpc"], cluster_name="b", nodegroups=[NodeGroupSpec("ng")])

    stack = stacks["imported"] = EksnetStack(app, "OnImported", deploy_env=deploy_env())
    vpcs["imported"] = _imported(stack, private_subnet_ids=["subnet-p1", "subnet-p2"],
                                 public_subnet_ids=["subnet-u1", "subnet-u2"])
    clusters["imported"] = EksCluster(stack, "C", vpc=vpcs["imported"], cluster_name="c",
                                      nodegroups=[NodeGroupSpec("ng")])

    assembly = app.synth()
    templates = {k: assembly.get_stack_by_name(s.stack_name).template for k, s in stacks.items()}
    return {"stacks": stacks, "clusters": clusters, "vpcs": vpcs, "templates": templates}


def _resolve(world, kind, value):
    return json.loads(json.dumps(world["stacks"][kind].resolve(value)))


def _nodegroup_subnets(world, kind):
    ((_, ng),) = props(world["templates"][kind], "AWS::EKS::Nodegroup")
    return ng["Subnets"]


def _security_group_vpcs(world, kind):
    return [p["VpcId"] for _, p in props(world["templates"][kind], "AWS::EC2::SecurityGroup")]


@pytest.mark.parametrize("kind", ["eksvpc", "vpc", "imported"])
def test_node_groups_run_in_the_vpcs_private_subnets(world, kind):
    vpc = world["vpcs"][kind]
    private = (vpc.vpc if isinstance(vpc, EksVpc) else vpc).private_subnets
    assert _nodegroup_subnets(world, kind) == _resolve(world, kind, [s.subnet_id for s in private])


@pytest.mark.parametrize("kind", ["eksvpc", "vpc", "imported"])
def test_the_clusters_security_groups_are_in_the_vpc(world, kind):
    vpc = world["vpcs"][kind]
    vpc_id = _resolve(world, kind, vpc.vpc_id)
    assert set(map(json.dumps, _security_group_vpcs(world, kind))) == {json.dumps(vpc_id)}


def test_the_control_plane_of_an_imported_vpc_uses_its_private_and_public_subnets(world):
    ((_, cluster),) = props(world["templates"]["imported"], "AWS::EKS::Cluster")
    assert sorted(cluster["ResourcesVpcConfig"]["SubnetIds"]) == ["subnet-p1", "subnet-p2", "subnet-u1", "subnet-u2"]


def test_an_eks_vpc_gives_its_pod_ipv4_egress_and_counts_as_dual_stack(world):
    cluster = world["clusters"]["eksvpc"]
    assert (cluster.pod_ipv4_egress, cluster.dual_stack) == (PodIpv4Egress.NAT64, True)


def test_a_dual_stack_vpc_built_in_the_app_is_read_as_dual_stack(world):
    assert world["clusters"]["vpc"].dual_stack is True


def test_an_imported_vpc_counts_as_ipv4_only_unless_declared(world):
    assert world["clusters"]["imported"].dual_stack is False


def test_an_imported_vpc_without_private_subnets_is_refused_before_anything_is_made():
    stack = EksnetStack(cdk.App(), "S", deploy_env=deploy_env())
    vpc = _imported(stack, public_subnet_ids=["subnet-u1", "subnet-u2"])
    with pytest.raises(ValueError, match="has no private subnets.*private_subnet_ids"):
        EksCluster(stack, "C", vpc=vpc, cluster_name="c")
    assert stack.node.try_find_child("C").node.children == []


def test_something_that_is_no_vpc_is_a_type_error_naming_what_is_accepted():
    stack = EksnetStack(cdk.App(), "S", deploy_env=deploy_env())
    with pytest.raises(TypeError, match=r"EksCluster.vpc must be ec2.IVpc or EksVpc, got 'vpc-0123' \(str\)"):
        EksCluster(stack, "C", vpc="vpc-0123", cluster_name="c")
