"""What the VPC exposes and tags: eksctl's subnet layout, EKS tags, flow logs, NAT ids, IPv6 egress parity."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from eksnet import nag
from eksnet.environment import EksnetStack
from eksnet.vpc import EksVpc, NatGateways, PodIpv4Egress
from support.cfn import ref_id, resources, tags
from support.envs import deploy_env
from vpc_testkit import Topology, lint_templates, new_app, new_stack

AZS = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The default EksVpc shared by two clusters, plus two security groups made by others in its stack."""
    app = new_app(str(tmp_path_factory.mktemp("cdk")))
    stack = EksnetStack(app, "VpcTest", deploy_env=deploy_env())
    vpc = EksVpc(stack, "EksVpc", cluster_names=["myipv6cluster", "other"], nat_gateways=NatGateways.PER_AZ)
    ec2.SecurityGroup(stack, "OpenEgress", vpc=vpc.vpc, description="allows all IPv4 egress")
    ec2.SecurityGroup(stack, "NoEgress", vpc=vpc.vpc, description="allows no egress", allow_all_outbound=False)
    nag.add_checks(app)
    return app.synth().get_stack_by_name("VpcTest").template, vpc


@pytest.fixture(scope="module")
def topo(built):
    return Topology(built[0])


def test_subnets_follow_eksctls_layout_of_slash_19s(topo):
    assert [s.props["CidrBlock"] for s in topo.of_kind("Public")] == ["192.168.0.0/19", "192.168.32.0/19",
                                                                       "192.168.64.0/19"]
    assert [s.props["CidrBlock"] for s in topo.of_kind("Private")] == ["192.168.96.0/19", "192.168.128.0/19",
                                                                        "192.168.160.0/19"]


def test_the_vpc_uses_every_zone_of_the_stack_by_default(built):
    vpc = built[1]
    assert vpc.azs == AZS
    assert [s.availability_zone for s in vpc.public_subnets] == AZS
    assert [s.availability_zone for s in vpc.private_subnets] == AZS


def test_az_count_takes_the_first_zones():
    vpc = EksVpc(new_stack(), "EksVpc", az_count=2)
    assert vpc.azs == AZS[:2] and len(vpc.private_subnets) == 2 and list(vpc.nat_gateway_ids) == AZS[:2]


def test_public_subnets_are_tagged_for_internet_facing_load_balancers(topo):
    for s in topo.of_kind("Public"):
        assert tags(s.props)["kubernetes.io/role/elb"] == "1"
        assert "kubernetes.io/role/internal-elb" not in tags(s.props)


def test_private_subnets_are_tagged_for_internal_load_balancers(topo):
    for s in topo.of_kind("Private"):
        assert tags(s.props)["kubernetes.io/role/internal-elb"] == "1"
        assert "kubernetes.io/role/elb" not in tags(s.props)


def test_every_node_subnet_is_shared_with_each_named_cluster(topo):
    for s in topo.of_kind("Public") + topo.of_kind("Private"):
        t = tags(s.props)
        assert t["kubernetes.io/cluster/myipv6cluster"] == "shared" and t["kubernetes.io/cluster/other"] == "shared"


def test_flow_logs_record_all_traffic_of_the_vpc_by_default(built):
    template, _ = built
    (vpc_lid,) = resources(template, "AWS::EC2::VPC")
    (log,) = resources(template, "AWS::EC2::FlowLog").values()
    assert ref_id(log["Properties"]["ResourceId"]) == vpc_lid
    assert log["Properties"]["ResourceType"] == "VPC" and log["Properties"]["TrafficType"] == "ALL"


def test_flow_logs_are_kept_a_month_by_default(built):
    template, _ = built
    (log,) = resources(template, "AWS::EC2::FlowLog").values()
    group = template["Resources"][ref_id(log["Properties"]["LogGroupName"])]
    assert group["Properties"]["RetentionInDays"] == 30


def test_flow_logs_can_be_turned_off():
    vpc = EksVpc(new_stack(), "EksVpc", flow_logs=False)
    assert vpc.flow_log is None
    assert not [c for c in vpc.node.find_all() if isinstance(c, ec2.CfnFlowLog)]


def test_nat_gateway_ids_map_each_zone_to_its_own_gateway(built, topo):
    vpc = built[1]
    stack = cdk.Stack.of(vpc)
    resolved = {az: ref_id(stack.resolve(i)) for az, i in vpc.nat_gateway_ids.items()}
    assert resolved == {az: lid for lid, az in topo.nat_az.items()}


def test_the_pod_ipv4_egress_choice_is_readable_by_the_cluster(built):
    vpc = built[1]
    assert vpc.pod_ipv4_egress is PodIpv4Egress.NODE_SNAT and vpc.dns64 is False
    nat64 = EksVpc(new_stack(), "EksVpc", pod_ipv4_egress=PodIpv4Egress.NAT64)
    assert nat64.pod_ipv4_egress is PodIpv4Egress.NAT64 and nat64.dns64 is True


def _egress_of(template: dict, description: str) -> set[str]:
    """Every egress destination of the group with ``description``: inline rules and rule resources."""
    (lid, group), = [(lid, r["Properties"]) for lid, r in resources(template, "AWS::EC2::SecurityGroup").items()
                     if r["Properties"]["GroupDescription"] == description]
    rules = list(group.get("SecurityGroupEgress", []))
    rules += [r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupEgress").values()
              if ref_id(r["Properties"]["GroupId"]) == lid]
    return {e.get("CidrIp") or e.get("CidrIpv6") or e.get("DestinationSecurityGroupId") for e in rules}


def test_security_groups_that_allow_all_ipv4_egress_also_get_ipv6_egress(built):
    assert _egress_of(built[0], "allows all IPv4 egress") == {"0.0.0.0/0", "::/0"}


def test_security_groups_without_ipv4_egress_get_no_ipv6_egress(built):
    assert "::/0" not in _egress_of(built[0], "allows no egress")


def test_the_template_with_parity_rules_passes_cfn_lint(built, tmp_path):
    findings = lint_templates(tmp_path, {"VpcTest": built[0]})
    assert not findings, "\n".join(map(str, findings))
