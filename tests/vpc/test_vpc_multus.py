"""Multus subnets (seed 003, "Configuring multiple network interfaces with Multus"): per zone and per
interface, with their own route tables, a Multus security group, and pod ranges reserved so that EC2
never hands a pod's address to an ENI as its primary address."""

from __future__ import annotations

import ipaddress

import pytest
from eksnet.vpc import CidrReservationType, MultusNetwork, NatGateways
from support.cfn import cidr_reservations, ref_id, resources, tags
from vpc_testkit import Topology, lint_templates, new_stack

AZS = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]


@pytest.fixture(scope="module")
def built(build_vpc):
    return build_vpc(multus=MultusNetwork(ipv4_supernet="192.168.192.0/19", interfaces_per_node=2),
                     nat_gateways=NatGateways.PER_AZ)


@pytest.fixture(scope="module")
def template(built):
    return built[0]


@pytest.fixture(scope="module")
def eks_vpc(built):
    return built[1]


@pytest.fixture(scope="module")
def topo(template):
    return Topology(template)


def test_each_zone_gets_one_multus_subnet_per_device_index_in_order(eks_vpc):
    assert list(eks_vpc.multus_subnets) == AZS
    for az, subnets in eks_vpc.multus_subnets.items():
        assert len(subnets) == 2 and all(s.availability_zone == az for s in subnets)


def test_the_supernet_is_split_zone_major_into_equal_subnets(eks_vpc):
    cidrs = [s.ipv4_cidr_block for az in AZS for s in eks_vpc.multus_subnets[az]]
    assert cidrs == [f"192.168.{third}.0/22" for third in (192, 196, 200, 204, 208, 212)]


def test_multus_subnets_have_route_tables_of_their_own(topo):
    multus = topo.of_kind("Multus")
    tables = [topo.route_table_of[s.logical_id] for s in multus]
    others = {topo.route_table_of[s.logical_id] for s in topo.subnets if s.kind != "Multus"}
    assert len(multus) == 6 and len(set(tables)) == 6 and not set(tables) & others


def test_multus_subnets_route_ipv4_to_their_zones_nat_and_ipv6_to_the_egress_only_gateway(topo):
    for s in topo.of_kind("Multus"):
        assert topo.nat_az[ref_id(s.routes["0.0.0.0/0"]["NatGatewayId"])] == s.az
        assert ref_id(s.routes["::/0"]["EgressOnlyInternetGatewayId"]) == topo.eigw
        assert not s.dns64


def test_multus_subnets_get_ipv6_slash_64s_after_the_node_subnets(topo):
    indexes = [s.props["Ipv6CidrBlock"]["Fn::Select"][0] for s in topo.of_kind("Multus")]
    node = [s.props["Ipv6CidrBlock"]["Fn::Select"][0] for s in topo.subnets if s.kind != "Multus"]
    assert sorted(node) == list(range(6)) and sorted(indexes) == list(range(6, 12))


def test_multus_subnets_are_tagged_with_their_zone(topo):
    for s in topo.of_kind("Multus"):
        assert tags(s.props)["Zone"] == s.az


def test_the_upper_half_of_each_multus_subnet_is_reserved_for_pod_prefixes(template, eks_vpc):
    found = {}
    for p in cidr_reservations(template):
        if isinstance(p["Cidr"], str):
            found[ref_id(p["SubnetId"])] = (p["Cidr"], p["ReservationType"])
    assert len(found) == 6
    for (az, device), pod in eks_vpc.multus_pod_ranges.items():
        subnet = ipaddress.IPv4Network(pod.subnet.ipv4_cidr_block)
        assert pod.ipv4 == list(subnet.subnets(prefixlen_diff=1))[1]
        assert eks_vpc.multus_subnets[az][device - 1] is pod.subnet
    assert sorted(c for c, _ in found.values()) == sorted(str(p.ipv4) for p in eks_vpc.multus_pod_ranges.values())
    assert {t for _, t in found.values()} == {"prefix"}


def test_a_slash_72_of_each_multus_slash_64_is_reserved_for_pod_ipv6(template):
    v6 = [p for p in cidr_reservations(template) if not isinstance(p["Cidr"], str)]
    assert len(v6) == 6
    for p in v6:
        index, (cidr,) = p["Cidr"]["Fn::Select"][0], [p["Cidr"]["Fn::Select"][1]]
        block, count, bits = cidr["Fn::Cidr"]
        assert (index, count, bits) == (1, 2, "56")
        assert block["Fn::Select"][1]["Fn::GetAtt"] == [ref_id(p["SubnetId"]), "Ipv6CidrBlocks"]


def test_pod_ranges_are_keyed_by_zone_and_device_index(eks_vpc):
    assert sorted(eks_vpc.multus_pod_ranges) == [(az, d) for az in AZS for d in (1, 2)]
    assert all(r.reservation_type is CidrReservationType.PREFIX for r in eks_vpc.multus_pod_ranges.values())


def test_the_multus_security_group_allows_its_members_and_all_egress_of_both_families(template, eks_vpc):
    groups = {lid: r["Properties"] for lid, r in resources(template, "AWS::EC2::SecurityGroup").items()
              if tags(r["Properties"]).get("multus") == "true"}
    assert len(groups) == 1 and eks_vpc.multus_security_group is not None
    (lid, sg), = groups.items()
    assert {e.get("CidrIp") or e.get("CidrIpv6") for e in sg["SecurityGroupEgress"]} == {"0.0.0.0/0", "::/0"}
    ingress = [p for p in (r["Properties"] for r in resources(template, "AWS::EC2::SecurityGroupIngress").values())
               if ref_id(p["GroupId"]) == lid]
    assert len(ingress) == 1
    assert ref_id(ingress[0]["SourceSecurityGroupId"]) == lid and ingress[0]["IpProtocol"] == "-1"


def test_without_multus_nothing_multus_is_made():
    from eksnet.vpc import EksVpc

    vpc = EksVpc(new_stack(), "EksVpc")
    assert vpc.multus_subnets == {} and vpc.multus_pod_ranges == {} and vpc.multus_security_group is None
    assert vpc.node.try_find_child("Multus") is None


def test_multus_without_ipv6_makes_ipv4_only_subnets_and_no_ipv6_reservation():
    from eksnet.vpc import EksVpc

    vpc = EksVpc(new_stack(), "EksVpc", multus=MultusNetwork(ipv6=False))
    for pod in vpc.multus_pod_ranges.values():
        cfn = pod.subnet.node.default_child
        assert pod.ipv6 is None and cfn.ipv6_cidr_block is None
        assert pod.subnet.node.try_find_child("PodRange6") is None


def test_the_multus_template_passes_cfn_lint(template, tmp_path):
    findings = lint_templates(tmp_path, {"VpcTest": template})
    assert not findings, "\n".join(map(str, findings))
