"""The default app shows both answers of seed 003 to "how do IPv6 pods reach IPv4": node SNAT (the seed's
eksctl VPC, with Multus subnets) and pure IPv6 (IPv6-only subnets, DNS64, NAT64)."""

from __future__ import annotations

from eksnet.vpc import NAT64_PREFIX
from support.cfn import cidr_reservations, ref_id
from vpc_testkit import Topology


def test_the_node_snat_stack_is_the_seeds_vpc_with_dns64_off(templates):
    topo = Topology(templates["EksnetNetwork"])
    assert len(topo.of_kind("Public")) == 3 and len(topo.of_kind("Private")) == 3
    assert not [s for s in topo.subnets if s.dns64 or NAT64_PREFIX in s.routes]
    assert [s.props["CidrBlock"] for s in topo.of_kind("Private")][0] == "192.168.96.0/19"


def test_the_node_snat_stack_has_multus_subnets_with_reserved_pod_ranges(templates):
    template = templates["EksnetNetwork"]
    assert len(Topology(template).of_kind("Multus")) == 3
    assert len(cidr_reservations(template)) == 6


def test_the_pure_ipv6_stack_has_ipv6_only_private_subnets_with_dns64_and_nat64(templates):
    topo = Topology(templates["EksnetNetworkIpv6Only"])
    private = topo.of_kind("Private")
    assert len(private) == 3
    for s in private:
        assert s.ipv6_native and s.dns64
        assert ref_id(s.routes[NAT64_PREFIX]["NatGatewayId"]) in topo.nat_az


def test_each_network_stack_has_one_nat_gateway_by_default(templates):
    for name in ("EksnetNetwork", "EksnetNetworkIpv6Only"):
        assert len(Topology(templates[name]).nat_az) == 1, name
