"""The plan reads resource types and properties, not the default app's layout: hand-written templates
with what the default app lacks (the region-aware reservation custom resource, explicit reservations,
a private NAT gateway, prefix mode, two Multus interfaces, a region without prices)."""

from __future__ import annotations

import contextlib
import io

import pytest
from eksnet import max_pods
from eksnet.plan import build_plan, main, render_text
from eksnet.plan_model import SubnetKind, TargetKind
from eksnet.plan_template import SymbolicCidr, Template
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_testkit import write_assembly


def ref(x):
    return {"Ref": x}


def ipv6_of_vpc(index: int, count: int = 8) -> dict:
    return {"Fn::Select": [index, {"Fn::Cidr": [{"Fn::Select": [0, {"Fn::GetAtt": ["Vpc", "Ipv6CidrBlocks"]}]},
                                                count, "64"]}]}


def subnet(zone: str, cidr: str, index: int, **extra) -> dict:
    props = {"VpcId": ref("Vpc"), "AvailabilityZone": zone, "CidrBlock": cidr, "Ipv6CidrBlock": ipv6_of_vpc(index),
             "AssignIpv6AddressOnCreation": True, **extra}
    return {"Type": "AWS::EC2::Subnet", "Properties": props}


def route(table: str, dest: str, **target) -> dict:
    key = "DestinationIpv6CidrBlock" if ":" in dest else "DestinationCidrBlock"
    return {"Type": "AWS::EC2::Route", "Properties": {"RouteTableId": ref(table), key: dest, **target}}


def assoc(subnet_id: str, table: str) -> dict:
    return {"Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {"SubnetId": ref(subnet_id), "RouteTableId": ref(table)}}


def reservation(kind: str, subnet_id: str, cidr, rtype: str) -> dict:
    props = {"SubnetId": ref(subnet_id), "Cidr": cidr, "ReservationType": rtype}
    if kind.startswith("Custom::"):
        props["ServiceToken"] = {"Fn::GetAtt": ["ReservationProvider", "Arn"]}
    return {"Type": kind, "Properties": props}


def template(*, max_pods_in_user_data: int) -> dict:
    r = {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "VpcV6": {"Type": "AWS::EC2::VPCCidrBlock", "Properties": {"VpcId": ref("Vpc"),
                                                                   "AmazonProvidedIpv6CidrBlock": True}},
        "Igw": {"Type": "AWS::EC2::InternetGateway", "Properties": {}},
        "IgwAttach": {"Type": "AWS::EC2::VPCGatewayAttachment",
                      "Properties": {"VpcId": ref("Vpc"), "InternetGatewayId": ref("Igw")}},
        "Public": subnet("ap-south-2a", "10.0.0.0/24", 0),
        "Private": subnet("ap-south-2a", "10.0.1.0/24", 1),
        "Isolated": subnet("ap-south-2b", "10.0.2.0/24", 2),
        "MultusA": subnet("ap-south-2a", "10.0.8.0/24", 3),
        "MultusB": subnet("ap-south-2a", "10.0.9.0/24", 4),
        "PublicRt": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": ref("Vpc")}},
        "PrivateRt": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": ref("Vpc")}},
        "PublicA": assoc("Public", "PublicRt"),
        "PrivateA": assoc("Private", "PrivateRt"),
        "MultusAA": assoc("MultusA", "PrivateRt"),
        "MultusBA": assoc("MultusB", "PrivateRt"),
        "PublicDefault": route("PublicRt", "0.0.0.0/0", GatewayId=ref("Igw")),
        "Eip": {"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc"}},
        "Nat": {"Type": "AWS::EC2::NatGateway", "Properties": {"SubnetId": ref("Public"),
                                                               "AllocationId": {"Fn::GetAtt": ["Eip", "AllocationId"]}}},
        "PrivateNat": {"Type": "AWS::EC2::NatGateway", "Properties": {"SubnetId": ref("Private"),
                                                                      "ConnectivityType": "private"}},
        "PrivateDefault": route("PrivateRt", "0.0.0.0/0", NatGatewayId=ref("Nat")),
        "PrivateTgw": route("PrivateRt", "10.1.0.0/16", TransitGatewayId="tgw-0123"),
        "ResCustomV4": reservation("Custom::SubnetCidrReservation", "MultusA", "10.0.8.128/25", "prefix"),
        "ResCustomV6": reservation("Custom::SubnetCidrReservation", "MultusA", {"Fn::Select": [
            1, {"Fn::Cidr": [{"Fn::Select": [0, {"Fn::GetAtt": ["MultusA", "Ipv6CidrBlocks"]}]}, 2, "56"]}]}, "prefix"),
        "ResExplicit": reservation("AWS::EC2::SubnetCidrReservation", "MultusB", "10.0.9.192/26", "explicit"),
        "Cluster": {"Type": "AWS::EKS::Cluster", "Properties": {
            "Name": "c1", "Version": "1.34", "KubernetesNetworkConfig": {"IpFamily": "ipv4"},
            "ResourcesVpcConfig": {"SubnetIds": [ref("Private")]}}},
        "Cni": {"Type": "AWS::EKS::Addon", "Properties": {
            "AddonName": "vpc-cni", "ClusterName": ref("Cluster"),
            "ConfigurationValues": '{"env":{"ENABLE_PREFIX_DELEGATION":"true"}}'}},
        "Lt": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": {"UserData": {
            "Fn::Base64": {"Fn::Join": ["", [f"kubelet:\n  config:\n    maxPods: {max_pods_in_user_data}\n",
                                             ref("Cluster")]]}}}}},
        "Ng": {"Type": "AWS::EKS::Nodegroup", "Properties": {
            "ClusterName": ref("Cluster"), "NodegroupName": "ng1", "InstanceTypes": ["m5.large"],
            "Subnets": [ref("Private")], "ScalingConfig": {"MinSize": 1, "DesiredSize": 1, "MaxSize": 4},
            "LaunchTemplate": {"Id": ref("Lt")}}},
        "Asg": {"Type": "Custom::AWS", "Properties": {"ServiceToken": "x", "Create": {"Fn::Join": ["", [
            '{"nodegroupName":"', ref("Ng"), '"}']]}}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
            "MULTUS_SUBNETS": {"Fn::Join": ["", ['{"ap-south-2a":["', ref("MultusA"), '","', ref("MultusB"), '"]}']]},
            "MULTUS_IPV4_PREFIX_COUNT": "2", "MULTUS_IPV6_PREFIX_COUNT": "1", "MULTUS_FIRST_DEVICE_INDEX": "1"}}}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {
            "EventPattern": {"detail": {"AutoScalingGroupName": [{"Fn::GetAtt": ["Asg", "name"]}]}},
            "Targets": [{"Arn": {"Fn::GetAtt": ["Fn", "Arn"]}, "Id": "t"}]}},
    }
    return {"Resources": r}


@pytest.fixture(scope="module")
def hand_plan(tmp_path_factory):
    expected = max_pods.max_pods("m5.large", prefix_delegation=True, max_enis=max_pods.limits("m5.large").max_enis - 2)
    out = write_assembly(tmp_path_factory.mktemp("asm"), {"Hand": template(max_pods_in_user_data=expected)},
                         region="ap-south-2")
    return build_plan(out)


def the(plan, name):
    return next(n for s in plan.stacks for v in s.vpcs for n in v.subnets if n.id == name)


def test_the_custom_reservation_resource_counts_like_cloudformations(hand_plan):
    multus = the(hand_plan, "MultusA")
    assert {(r.id, r.family, r.cidr, r.type) for r in multus.reservations} == {
        ("ResCustomV4", 4, "10.0.8.128/25", "prefix"),
        ("ResCustomV6", 6, "<subnet /64> + 1 -> /72", "prefix"),
    }


def test_kinds_and_route_targets(hand_plan):
    assert the(hand_plan, "Public").kind is SubnetKind.PUBLIC
    assert the(hand_plan, "Private").kind is SubnetKind.PRIVATE
    assert the(hand_plan, "Isolated").kind is SubnetKind.ISOLATED
    assert the(hand_plan, "MultusB").tier == "Multus 2"
    assert {(r.destination, r.target) for r in the(hand_plan, "Private").routes} == {
        ("0.0.0.0/0", TargetKind.NAT), ("10.1.0.0/16", TargetKind.TGW)}


def test_only_public_nat_gateways_need_an_elastic_ip(hand_plan):
    [eips] = [q for q in hand_plan.quotas if q.quota == "Elastic IPs per region"]
    [nats] = [c for c in hand_plan.costs if c.item == "NAT gateways"]
    assert (eips.needed, nats.count) == (1, 2)


def test_two_multus_interfaces_leave_one_eni_to_the_vpc_cni(hand_plan):
    [group] = [g for s in hand_plan.stacks for c in s.clusters for g in c.node_groups]
    assert group.multus_enis == 2
    assert [(n.interface, n.device_index, n.ipv4_prefixes) for n in group.multus] == [
        ("multus1", 1, 2), ("multus2", 2, 2)]
    assert group.max_pods == group.user_data_max_pods
    assert group.vpc_cni_enis == 1
    assert group.enis_per_instance == 3 == group.max_enis
    assert all(f"maxPods {group.user_data_max_pods}" not in f for f in hand_plan.findings)


def test_prefix_mode_nodes_take_whole_28s_from_a_subnet_without_prefix_reservations(hand_plan):
    [group] = [g for s in hand_plan.stacks for c in s.clusters for g in c.node_groups]
    [cap] = the(hand_plan, "Private").capacity
    prefixes = -(-(group.max_pods - 2) // 16)
    assert cap.per_node == {"IPv4 addresses": 1 + 16 * prefixes}
    assert cap.nodes == (256 - 5) // (1 + 16 * prefixes)


def test_an_explicit_reservation_is_taken_out_of_the_addresses(hand_plan):
    [cap] = the(hand_plan, "MultusB").capacity
    assert cap.available["IPv4 addresses"] == 256 - 5 - 64
    assert cap.per_node["IPv4 addresses"] == 1 + 2 * 16


def test_a_region_without_prices_is_a_finding_not_a_guess(hand_plan):
    assert all(c.hourly is None for c in hand_plan.costs)
    assert any("no prices for region ap-south-2" in f for f in hand_plan.findings)
    assert "= ?/h" in render_text(hand_plan)


def test_a_user_data_max_pods_the_cni_cannot_address_is_a_finding(tmp_path):
    plan = build_plan(write_assembly(tmp_path, {"Hand": template(max_pods_in_user_data=250)}, region="eu-west-1"))
    [group] = [g for s in plan.stacks for c in s.clusters for g in c.node_groups]
    assert any(f"maxPods 250, more than the {group.max_pods}" in f for f in plan.findings)


def test_symbolic_cidrs_name_their_place_and_size():
    t = Template("S", template(max_pods_in_user_data=1), region=None, account=None)
    block = t.cidr(ipv6_of_vpc(5), family=6)
    assert block == SymbolicCidr("vpc", 56, ((5, 64),))
    assert str(block) == "<vpc /56> + 5 -> /64"
    assert block.num_addresses == 2 ** 64
    assert block.offset == 5 * 2 ** 64
    assert t.cidr({"Fn::Select": [1, {"Fn::Cidr": ["10.0.0.0/16", 4, "8"]}]}, family=4).exploded == "10.0.1.0/24"
    assert t.cidr({"Fn::ImportValue": "x"}, family=6) is None


def test_the_functions_group_names_say_which_node_groups_carry_multus_enis(tmp_path):
    """With MULTUS_GROUP_NAMES in the function's environment, no EventBridge rule is needed to find the groups."""
    t = template(max_pods_in_user_data=110)
    t["Resources"]["Fn"]["Properties"]["Environment"]["Variables"]["MULTUS_GROUP_NAMES"] = {
        "Fn::Join": ["", ['["', {"Fn::GetAtt": ["Asg", "name"]}, '"]']]}
    del t["Resources"]["Rule"]
    plan = build_plan(write_assembly(tmp_path, {"Hand": t}))
    [group] = [g for s in plan.stacks for c in s.clusters for g in c.node_groups]
    assert group.multus_enis == 2


def test_without_a_rule_or_group_names_the_launch_hooks_say_which_groups(tmp_path):
    t = template(max_pods_in_user_data=110)
    del t["Resources"]["Rule"]
    t["Resources"]["Hook"] = {"Type": "AWS::AutoScaling::LifecycleHook", "Properties": {
        "AutoScalingGroupName": {"Fn::GetAtt": ["Asg", "name"]},
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING"}}
    plan = build_plan(write_assembly(tmp_path, {"Hand": t}))
    [group] = [g for s in plan.stacks for c in s.clusters for g in c.node_groups]
    assert group.multus_enis == 2
    del t["Resources"]["Hook"]
    plan = build_plan(write_assembly(tmp_path / "none", {"Hand": t}))
    [group] = [g for s in plan.stacks for c in s.clusters for g in c.node_groups]
    assert group.multus_enis == 0


def test_a_node_group_larger_than_its_subnets_hold_is_a_finding(hand_plan):
    [group] = [g for s in hand_plan.stacks for c in s.clusters for g in c.node_groups]
    [cap] = the(hand_plan, "Private").capacity
    assert group.max_size > cap.nodes
    assert any(f"node group ng1: max size {group.max_size} is more nodes than its subnets hold ({cap.nodes};" in f
               for f in hand_plan.findings), hand_plan.findings


def test_a_cluster_on_another_stacks_subnets_is_planned_there(tmp_path):
    """Subnets imported with Fn::ImportValue are the exporting stack's: capacity and diagram land there."""
    from eksnet.plan_diagram import element_id, render_svg

    network = template(max_pods_in_user_data=110)
    cluster_resources = {k: network["Resources"].pop(k) for k in ("Cluster", "Cni", "Lt", "Ng", "Asg", "Fn", "Rule")}
    network["Outputs"] = {"PrivateOut": {"Value": ref("Private"), "Export": {"Name": "Net:Private"}},
                          "MultusAOut": {"Value": ref("MultusA"), "Export": {"Name": "Net:MultusA"}},
                          "MultusBOut": {"Value": ref("MultusB"), "Export": {"Name": "Net:MultusB"}}}
    imported = {"Fn::ImportValue": "Net:Private"}
    cluster_resources["Cluster"]["Properties"]["ResourcesVpcConfig"]["SubnetIds"] = [imported]
    cluster_resources["Ng"]["Properties"]["Subnets"] = [imported]
    cluster_resources["Fn"]["Properties"]["Environment"]["Variables"]["MULTUS_SUBNETS"] = {"Fn::Join": ["", [
        '{"ap-south-2a":["', {"Fn::ImportValue": "Net:MultusA"}, '","', {"Fn::ImportValue": "Net:MultusB"}, '"]}']]}
    plan = build_plan(write_assembly(tmp_path, {"Net": network, "Eks": {"Resources": cluster_resources}}))
    net, eks = plan.stacks
    [cluster] = eks.clusters
    [group] = cluster.node_groups
    assert cluster.vpc_id == "Net/Vpc"
    assert group.subnets == ["Net/Private"]
    assert group.multus_enis == 2
    assert [c.node_group for c in the(plan, "Private").capacity] == ["ng1"]
    assert "in VPC Net/Vpc (imported)" in render_text(plan)
    svg = render_svg(plan)
    assert f'id="{element_id("Eks", "Ng")}"' in svg and f'id="{element_id("Eks", "Cluster")}"' in svg


WEIRD = [None, 3, "x", [], {}, [1], {"Ref": 5}, {"Fn::Select": ["a", []]}, {"Fn::Cidr": [1, 2]},
         {"Fn::Join": ["", [1, 2]]}, {"Fn::ImportValue": "nowhere"}, True]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_template_content_ends_in_a_traceback(tmp_path_factory, data):
    """Whatever a property holds, the command prints a plan (exit 0) or one line (exit 2)."""
    t = template(max_pods_in_user_data=110)
    lid = data.draw(st.sampled_from(sorted(t["Resources"])))
    where = data.draw(st.sampled_from(["resource", "properties", "property"]))
    value = data.draw(st.sampled_from(WEIRD))
    if where == "resource":
        t["Resources"][lid] = value
    elif where == "properties":
        t["Resources"][lid]["Properties"] = value
    else:
        props = t["Resources"][lid]["Properties"]
        props[data.draw(st.sampled_from(sorted(props) or ["Extra"]))] = value
    out = write_assembly(tmp_path_factory.mktemp("weird"), {"Weird": t})
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        rc = main([str(out), "--diagram", str(out / "plan.svg")])
    assert rc in (0, 2)
    if rc == 2:
        assert len(err.getvalue().splitlines()) == 1 and std.getvalue() == ""
