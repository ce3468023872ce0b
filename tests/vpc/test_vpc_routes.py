"""Every route of the synthesized VPC, per zone: IGW for public, EIGW and NAT for private, NAT64 with DNS64.

Seed 003: public subnets route through the Internet gateway; private subnets reach IPv6 through the
Egress-only Internet gateway and IPv4 through NAT; DNS64 answers ``64:ff9b::`` addresses that only
work with a ``64:ff9b::/96`` route to a NAT gateway (NAT64).
"""

from __future__ import annotations

import pytest
from eksnet.vpc import NAT64_PREFIX, NatGateways, PodIpv4Egress
from support.cfn import ref_id, resources, tags
from vpc_testkit import Topology, lint_templates

AZS = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]

PER_AZ = {"nat_gateways": NatGateways.PER_AZ}
VARIANTS = {
    "node-snat": PER_AZ,
    "nat64": {"pod_ipv4_egress": PodIpv4Egress.NAT64, **PER_AZ},
    "ipv6-only": {"pod_ipv4_egress": PodIpv4Egress.NAT64, "ipv6_only_private_subnets": True, **PER_AZ,
                  "cluster_names": ["c"]},
    "nat64-shared-nat": {"pod_ipv4_egress": PodIpv4Egress.NAT64},  # the default: one NAT gateway
    "no-nat": {"nat_gateways": NatGateways.NONE},
}


@pytest.fixture(scope="module")
def templates_by_variant(build_vpc) -> dict[str, dict]:
    return {name: build_vpc(**props)[0] for name, props in VARIANTS.items()}


@pytest.fixture(scope="module")
def topologies(templates_by_variant) -> dict[str, Topology]:
    return {name: Topology(t) for name, t in templates_by_variant.items()}


def test_every_variant_passes_cfn_lint(templates_by_variant, tmp_path):
    # cdk-nag already ran during each synth (vpc_testkit.synth_vpc adds the gate)
    findings = lint_templates(tmp_path, templates_by_variant)
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize("variant", VARIANTS)
def test_public_subnets_route_both_families_to_the_internet_gateway(topologies, variant):
    topo = topologies[variant]
    public = topo.of_kind("Public")
    assert [s.az for s in public] == AZS
    for s in public:
        assert ref_id(s.routes["0.0.0.0/0"]["GatewayId"]) == topo.igw, s.logical_id
        assert ref_id(s.routes["::/0"]["GatewayId"]) == topo.igw, s.logical_id


@pytest.mark.parametrize("variant", VARIANTS)
def test_private_subnets_route_ipv6_default_to_the_egress_only_gateway(topologies, variant):
    topo = topologies[variant]
    private = topo.of_kind("Private")
    assert [s.az for s in private] == AZS
    for s in private:
        assert ref_id(s.routes["::/0"]["EgressOnlyInternetGatewayId"]) == topo.eigw, s.logical_id


def test_by_default_one_nat_gateway_serves_every_zone_as_eksctl_does(topologies):
    topo = topologies["nat64-shared-nat"]
    (nat,) = topo.nat_az
    assert all(ref_id(s.routes["0.0.0.0/0"]["NatGatewayId"]) == nat for s in topo.of_kind("Private"))
    assert all(ref_id(s.routes[NAT64_PREFIX]["NatGatewayId"]) == nat for s in topo.subnets if s.dns64)


def test_with_a_nat_gateway_per_zone_private_ipv4_goes_to_the_same_zone(topologies):
    topo = topologies["node-snat"]
    assert sorted(topo.nat_az.values()) == AZS
    for s in topo.of_kind("Private"):
        assert topo.nat_az[ref_id(s.routes["0.0.0.0/0"]["NatGatewayId"])] == s.az


@pytest.mark.parametrize("variant", ["nat64", "ipv6-only"])
def test_nat64_routes_go_to_the_same_zones_nat_gateway_wherever_dns64_is_on(topologies, variant):
    # with NatGateways.PER_AZ
    topo = topologies[variant]
    dns64 = [s for s in topo.subnets if s.dns64]
    assert [s.az for s in dns64] == AZS and all(s.kind == "Private" for s in dns64)
    for s in dns64:
        assert topo.nat_az[ref_id(s.routes[NAT64_PREFIX]["NatGatewayId"])] == s.az, s.logical_id


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_subnet_with_dns64_lacks_the_nat64_route(topologies, variant):
    for s in topologies[variant].subnets:
        if s.dns64:
            assert ref_id(s.routes.get(NAT64_PREFIX, {}).get("NatGatewayId")) in topologies[variant].nat_az


def test_node_snat_keeps_dns64_off_and_adds_no_nat64_route(topologies):
    topo = topologies["node-snat"]
    assert not [s.logical_id for s in topo.subnets if "EnableDns64" in s.props]
    assert not [s.logical_id for s in topo.subnets if NAT64_PREFIX in s.routes]


def test_ipv6_only_private_subnets_are_ipv6_native_without_an_ipv4_block(topologies):
    topo = topologies["ipv6-only"]
    for s in topo.of_kind("Private"):
        assert s.ipv6_native and "CidrBlock" not in s.props
        assert s.props["AssignIpv6AddressOnCreation"] is True
        assert s.props["PrivateDnsNameOptionsOnLaunch"]["HostnameType"] == "resource-name"
    assert all("CidrBlock" in s.props and not s.ipv6_native for s in topo.of_kind("Public"))


def test_a_shared_nat_gateway_serves_ipv4_and_nat64_of_every_zone(topologies):
    topo = topologies["nat64-shared-nat"]
    (nat,) = topo.nat_az
    for s in topo.of_kind("Private"):
        assert ref_id(s.routes["0.0.0.0/0"]["NatGatewayId"]) == nat
        assert ref_id(s.routes[NAT64_PREFIX]["NatGatewayId"]) == nat


def test_without_nat_gateways_private_subnets_have_ipv6_egress_only(topologies):
    topo = topologies["no-nat"]
    assert not topo.nat_az
    for s in topo.of_kind("Private"):
        assert set(s.routes) == {"::/0"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_subnet_gets_a_slash_64_and_ipv6_on_creation(topologies, variant):
    topo = topologies[variant]
    for s in topo.subnets:
        assert s.props["AssignIpv6AddressOnCreation"] is True, s.logical_id
        assert s.props["Ipv6CidrBlock"]["Fn::Select"][1]["Fn::Cidr"][2] == "64"
    (block,) = resources(topo.template, "AWS::EC2::VPCCidrBlock").values()
    assert block["Properties"]["AmazonProvidedIpv6CidrBlock"] is True


def test_ipv6_only_subnets_are_not_tagged_for_a_cluster_that_cannot_use_them(topologies):
    # EKS places nodes only in subnets with IPv4; the dual-stack public subnets keep the cluster tag.
    topo = topologies["ipv6-only"]
    for s in topo.subnets:
        assert ("kubernetes.io/cluster/c" in tags(s.props)) is (not s.ipv6_native), s.logical_id
