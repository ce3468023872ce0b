"""Bad input is refused when the construct is built, with a message that says what to change.

These tests only construct (no synth), except one that shows the DNS64 check runs during synth.
"""

from __future__ import annotations

import pytest
from aws_cdk import aws_ec2 as ec2
from eksnet.vpc import CidrReservationType, EksVpc, MultusNetwork, NatGateways, PodIpv4Egress
from vpc_testkit import new_stack


def build(**props) -> EksVpc:
    return EksVpc(new_stack(), "EksVpc", **props)


def test_nat64_without_a_nat_gateway_is_refused():
    with pytest.raises(ValueError, match="NAT64 .* nat_gateways=NONE creates none"):
        build(pod_ipv4_egress=PodIpv4Egress.NAT64, nat_gateways=NatGateways.NONE)


def test_ipv6_only_subnets_without_dns64_and_nat64_are_refused():
    with pytest.raises(ValueError, match="ipv6_only_private_subnets=True needs DNS64 and NAT64"):
        build(ipv6_only_private_subnets=True, pod_ipv4_egress=PodIpv4Egress.NODE_SNAT)


@pytest.mark.parametrize("az_count", [0, 1, 4])
def test_az_count_out_of_range_is_refused(az_count):
    with pytest.raises(ValueError, match=r"az_count must be between 2 .* and 3 .*got " + str(az_count)):
        build(az_count=az_count)


def test_az_count_above_six_is_refused_even_when_the_stack_knows_more_zones():
    stack = new_stack(azs=tuple(f"eu-central-1{c}" for c in "abcdefg"))
    with pytest.raises(ValueError, match="az_count must be between 2 .* and 6"):
        EksVpc(stack, "EksVpc", az_count=7)


def test_a_vpc_cidr_with_host_bits_is_refused():
    with pytest.raises(ValueError, match="ipv4_cidr '192.168.1.0/16' has host bits set; write 192.168.0.0/16"):
        build(ipv4_cidr="192.168.1.0/16")


def test_an_ipv6_vpc_cidr_is_refused():
    with pytest.raises(ValueError, match="ipv4_cidr must be an IPv4 CIDR .*IPv6 comes from Amazon"):
        build(ipv4_cidr="fd00::/56")


def test_subnets_that_do_not_fit_the_vpc_cidr_are_refused():
    with pytest.raises(ValueError, match="holds 4 /18 subnets but 3 zones need 6"):
        build(subnet_prefix_length=18)


def test_multus_supernet_outside_the_vpc_is_refused():
    with pytest.raises(ValueError, match="ipv4_supernet 10.0.0.0/19 is not inside the VPC's ipv4_cidr 192.168.0.0/16"):
        build(multus=MultusNetwork(ipv4_supernet="10.0.0.0/19"))


def test_multus_supernet_overlapping_node_subnets_is_refused():
    # the seed's 192.168.96.0/19 is eksctl's private subnet of the first zone
    with pytest.raises(ValueError, match=r"192.168.96.0/19 overlaps the public/private subnets \['192.168.96.0/19'\]"):
        build(multus=MultusNetwork(ipv4_supernet="192.168.96.0/19"))


def test_a_pod_range_as_large_as_its_multus_subnet_is_refused():
    # 192.168.192.0/19 split for 3 zones gives /21 subnets
    with pytest.raises(ValueError, match="pod_range_prefix_length /21 would reserve all of Multus subnet"):
        build(multus=MultusNetwork(pod_range_prefix_length=21))


def test_a_prefix_reservation_smaller_than_one_delegated_prefix_is_refused():
    with pytest.raises(ValueError, match="/29 is smaller than one /28 delegated prefix"):
        build(multus=MultusNetwork(pod_range_prefix_length=29))


def test_an_explicit_reservation_may_be_smaller_than_a_slash_28():
    vpc = build(multus=MultusNetwork(pod_range_prefix_length=29, reservation_type=CidrReservationType.EXPLICIT))
    assert all(r.ipv4.prefixlen == 29 for r in vpc.multus_pod_ranges.values())


def test_a_multus_supernet_too_small_for_its_subnets_is_refused():
    with pytest.raises(ValueError, match="too small for 3 zones x 4 interfaces: subnets would be /30"):
        build(multus=MultusNetwork(ipv4_supernet="192.168.192.0/26", interfaces_per_node=4))


def test_multus_interface_count_out_of_range_is_refused():
    with pytest.raises(ValueError, match="interfaces_per_node must be 1..14"):
        MultusNetwork(interfaces_per_node=0)


def test_an_invalid_eks_cluster_name_is_refused():
    with pytest.raises(ValueError, match="must be an EKS cluster name .*got 'my cluster'"):
        build(cluster_names=["my cluster"])


def test_dns64_turned_on_by_hand_without_a_nat64_route_fails_validation():
    vpc = build()
    vpc.public_subnets[0].node.default_child.enable_dns64 = True
    errors = vpc.node.validate()
    assert len(errors) == 1
    assert "PublicSubnet1/Subnet: DNS64 is on but its route table has no 64:ff9b::/96 route" in errors[0]


def test_an_ipv6_only_subnet_made_by_hand_without_dns64_fails_validation():
    vpc = build()
    cfn: ec2.CfnSubnet = vpc.private_subnets[1].node.default_child
    cfn.ipv6_native = True
    errors = vpc.node.validate()
    assert len(errors) == 1 and "PrivateSubnet2/Subnet: IPv6-only subnet needs DNS64 on" in errors[0]


def test_the_constructs_own_subnets_pass_the_dns64_check():
    assert build(pod_ipv4_egress=PodIpv4Egress.NAT64, ipv6_only_private_subnets=True).node.validate() == []


def test_synth_fails_on_dns64_without_nat64(tmp_path):
    import aws_cdk as cdk
    from eksnet.environment import EksnetStack
    from support.envs import deploy_env

    app = cdk.App(outdir=str(tmp_path))
    vpc = EksVpc(EksnetStack(app, "VpcTest", deploy_env=deploy_env()), "EksVpc")
    vpc.public_subnets[2].node.default_child.enable_dns64 = True
    with pytest.raises(Exception, match="DNS64 is on but its route table has no 64:ff9b::/96 route"):
        app.synth()
