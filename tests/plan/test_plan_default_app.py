"""The default app's plan, checked against its synthesized templates and against the sources the
constructs use (``eksnet.max_pods`` and the node runtime's allocator): nothing in the plan is typed in."""

from __future__ import annotations

import ipaddress
import json
import math
import re

import pytest
from eksnet import max_pods
from eksnet.plan_model import SubnetKind, TargetKind, prefix_pods

from node_runtime.ipam.allocator import parse_range


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r.get("Properties", {}) for k, r in template["Resources"].items() if r["Type"] == kind}


def subnets_of(plan):
    return {(s.name, n.id): n for s in plan.stacks for v in s.vpcs for n in v.subnets}


def used_by(plan, keys) -> list:
    """The plan's subnets with these keys, in any stack (a cluster may use another stack's subnets)."""
    found = [n for s in plan.stacks for v in s.vpcs for n in v.subnets if n.key in keys]
    assert len(found) == len(set(keys)) > 0
    return found


def groups_of(plan):
    return {g.name: (s, c, g) for s in plan.stacks for c in s.clusters for g in c.node_groups}


def user_data_max_pods(template: dict, nodegroup_props: dict) -> int:
    """kubelet's maxPods as the launch template's user data carries it (the constructs' output)."""
    lt = resources(template, "AWS::EC2::LaunchTemplate")[nodegroup_props["LaunchTemplate"]["Id"]["Ref"]]
    parts = lt["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    text = "".join(p for p in parts if isinstance(p, str))
    return int(re.search(r"maxPods: (\d+)", text).group(1))


def test_every_subnet_of_every_template_is_in_the_plan_once(plan, templates):
    planned = subnets_of(plan)
    expected = {(stack, lid) for stack, t in templates.items() for lid in resources(t, "AWS::EC2::Subnet")}
    assert set(planned) == expected
    assert len(planned) == sum(len(v.subnets) for s in plan.stacks for v in s.vpcs)


def test_ipv4_blocks_and_zones_are_the_templates(plan, templates):
    for (stack, lid), subnet in subnets_of(plan).items():
        props = resources(templates[stack], "AWS::EC2::Subnet")[lid]
        assert subnet.ipv4 == props.get("CidrBlock")
        assert subnet.zone == props["AvailabilityZone"]


def test_ipv6_blocks_are_named_by_their_place_in_the_vpc_56(plan, templates):
    for (stack, lid), subnet in subnets_of(plan).items():
        select = resources(templates[stack], "AWS::EC2::Subnet")[lid]["Ipv6CidrBlock"]["Fn::Select"]
        index, (_, _, bits) = select[0], select[1]["Fn::Cidr"]
        assert subnet.ipv6 == f"<vpc /56> + {index} -> /{128 - int(bits)}"
        assert subnet.ipv6_prefixlen == 64


def test_subnet_kinds_follow_routes_and_properties(plan):
    subnets = subnets_of(plan)
    kinds = {}
    for (stack, _), s in subnets.items():
        kinds.setdefault(stack, set()).add(s.kind)
    assert kinds["EksnetNetwork"] == {SubnetKind.PUBLIC, SubnetKind.PRIVATE, SubnetKind.MULTUS}
    assert kinds["EksnetNetworkIpv6Only"] == {SubnetKind.PUBLIC, SubnetKind.IPV6_ONLY}
    assert kinds["EksnetMultus"] == {SubnetKind.PUBLIC, SubnetKind.PRIVATE, SubnetKind.MULTUS}
    for s in subnets.values():
        targets = {(r.destination, r.target) for r in s.routes}
        if s.kind is SubnetKind.PUBLIC:
            assert targets == {("0.0.0.0/0", TargetKind.IGW), ("::/0", TargetKind.IGW)}
        else:
            assert ("::/0", TargetKind.EIGW) in targets
            assert ("0.0.0.0/0", TargetKind.NAT) in targets
        if s.kind is SubnetKind.IPV6_ONLY:
            assert s.ipv4 is None and s.dns64
            assert ("64:ff9b::/96", TargetKind.NAT64) in targets


def test_nat_routes_go_to_a_nat_gateway_of_the_same_vpc(plan):
    for stack in plan.stacks:
        for vpc in stack.vpcs:
            nats = {g.id: g for g in vpc.gateways if g.kind is TargetKind.NAT}
            for s in vpc.subnets:
                for r in s.routes:
                    if r.target in (TargetKind.NAT, TargetKind.NAT64):
                        assert r.target_id in nats


RESERVATION_TYPES = ("AWS::EC2::SubnetCidrReservation", "Custom::SubnetCidrReservation")


def reservation_props(kind: str, props: dict) -> dict:
    """SubnetId, Cidr and ReservationType of CloudFormation's reservation, or of the custom resource that
    calls CreateSubnetCidrReservation (its parameters are JSON joined with intrinsics in ``Create``)."""
    if "Cidr" in props:
        return props
    parts = props["Create"]["Fn::Join"][1]
    held = {f"@@{i}@@": p for i, p in enumerate(parts) if not isinstance(p, str)}
    text = "".join(p if isinstance(p, str) else f"@@{i}@@" for i, p in enumerate(parts))
    params = json.loads(text)["parameters"]
    assert params and kind == "Custom::SubnetCidrReservation"
    return {k: held.get(v, v) for k, v in params.items()}


def test_reservations_and_delegated_prefixes_are_read_from_the_templates(plan, templates):
    for stack in ("EksnetNetwork", "EksnetMultus"):
        template = templates[stack]
        cfn = {lid: reservation_props(kind, p) for kind in RESERVATION_TYPES
               for lid, p in resources(template, kind).items()}
        assert cfn
        planned = {r.id: (n, r) for (s, _), n in subnets_of(plan).items() if s == stack for r in n.reservations}
        assert set(planned) == set(cfn)
        for lid, props in cfn.items():
            subnet, res = planned[lid]
            assert subnet.id == props["SubnetId"]["Ref"]
            assert res.type == props["ReservationType"]
            if isinstance(props["Cidr"], str):
                net = ipaddress.ip_network(props["Cidr"])
                assert (res.cidr, res.addresses, res.family) == (str(net), net.num_addresses, 4)
                assert net.subnet_of(ipaddress.ip_network(subnet.ipv4))
            else:
                index, (_, _, bits) = props["Cidr"]["Fn::Select"][0], props["Cidr"]["Fn::Select"][1]["Fn::Cidr"]
                assert res.cidr == f"<subnet /64> + {index} -> /{128 - int(bits)}"
                assert (res.family, res.addresses) == (6, 2 ** int(bits))


def test_max_pods_is_computed_by_eksnet_max_pods_for_the_enis_left_to_the_vpc_cni(plan):
    for _, cluster, group in groups_of(plan).values():
        [it] = group.instance_types
        lim = max_pods.limits(it)
        assert group.max_enis == lim.max_enis
        assert group.max_pods == max_pods.max_pods(
            it, ipv6=cluster.ip_family == "IPv6", prefix_delegation=cluster.cni_mode != "secondary IP",
            max_enis=lim.max_enis - group.multus_enis)


def test_max_pods_equals_what_the_constructs_put_in_the_node_user_data(plan, templates):
    """One source: the plan's maxPods (eksnet.max_pods, Multus ENIs taken out) is the launch template's."""
    for stack, _, group in groups_of(plan).values():
        props = resources(templates[stack.name], "AWS::EKS::Nodegroup")[group.id]
        assert group.user_data_max_pods == user_data_max_pods(templates[stack.name], props)
        assert group.max_pods == group.user_data_max_pods, group.name
    assert not [f for f in plan.findings if "maxPods" in f]


def test_the_multus_node_group_has_one_multus_eni_per_multus_subnet_of_its_zone(plan, templates):
    stack, _, group = groups_of(plan)["multusmng"]
    env = next(p["Environment"]["Variables"] for p in resources(templates["EksnetMultus"], "AWS::Lambda::Function")
               .values() if "MULTUS_SUBNETS" in p.get("Environment", {}).get("Variables", {}))
    assert group.multus_enis == 1
    [net] = group.multus
    assert (net.interface, net.device_index) == ("multus1", int(env["MULTUS_FIRST_DEVICE_INDEX"]))
    assert (net.ipv4_prefixes, net.ipv6_prefixes) == (int(env["MULTUS_IPV4_PREFIX_COUNT"]),
                                                      int(env["MULTUS_IPV6_PREFIX_COUNT"]))
    multus_subnets = {n.key: n for v in stack.vpcs for n in v.subnets if n.kind is SubnetKind.MULTUS}
    assert set(net.subnets.values()) == set(multus_subnets)
    assert all(multus_subnets[sid].zone == zone for zone, sid in net.subnets.items())
    for subnet in multus_subnets.values():  # the delegated prefix sizes, per zone, from the same environment
        assert (subnet.interface, subnet.delegated_ipv4_prefixes, subnet.delegated_ipv6_prefixes) == (
            "multus1", int(env["MULTUS_IPV4_PREFIX_COUNT"]), int(env["MULTUS_IPV6_PREFIX_COUNT"]))
    assert group.enis_per_instance == group.vpc_cni_enis_at_max_pods + 1


def test_the_multus_node_group_shows_the_size_it_gets_once_its_hooks_exist(plan, templates):
    # Its template starts it at 0 nodes; a deploy-time updateNodegroupConfig call gives it the app's sizes.
    _, _, group = groups_of(plan)["multusmng"]
    template = templates["EksnetMultus"]
    assert template["Resources"][group.id]["Properties"]["ScalingConfig"]["DesiredSize"] == 0
    [text] = ["".join(p if isinstance(p, str) else "?" for p in r["Create"]["Fn::Join"][1])
              for r in resources(template, "Custom::AWS").values()
              if "updateNodegroupConfig" in json.dumps(r.get("Create"))]
    sizes = json.loads(re.search(r'"scalingConfig":(\{[^}]*\})', text).group(1))
    assert (group.min_size, group.desired_size, group.max_size) == (
        sizes["minSize"], sizes["desiredSize"], sizes["maxSize"])
    assert group.desired_size > 0


def test_pods_per_node_on_a_multus_network_are_what_the_node_runtime_hands_out(plan):
    _, _, group = groups_of(plan)["multusmng"]
    [net] = group.multus
    per_28 = parse_range({"subnet": "10.0.0.0/28", "delegated": True}).size  # a delegated prefix: all of it
    assert per_28 == 16
    assert net.ipv4_pods == net.ipv4_prefixes * per_28 == prefix_pods(4, net.ipv4_prefixes)
    assert net.ipv6_pods == net.ipv6_prefixes * 2 ** 48
    assert net.pods_per_node == min(net.ipv4_pods, net.ipv6_pods, group.max_pods)


def test_nodes_per_secondary_ip_subnet_follow_the_enis_at_max_pods(plan):
    stack, _, group = groups_of(plan)["ipv4mng"]
    lim = max_pods.limits("t3.medium")
    enis = math.ceil((group.max_pods - 2) / (lim.ipv4_per_eni - 1))
    assert group.vpc_cni_enis_at_max_pods == enis
    for subnet in used_by(plan, group.subnets):
        [cap] = subnet.capacity
        usable = ipaddress.ip_network(subnet.ipv4).num_addresses - 5
        assert cap.per_node == {"IPv4 addresses": enis * lim.ipv4_per_eni}
        assert (cap.nodes, cap.limited_by) == (usable // (enis * lim.ipv4_per_eni), "IPv4 addresses")


def test_nodes_per_multus_subnet_run_out_of_reserved_prefixes_first(plan):
    stack, _, group = groups_of(plan)["multusmng"]
    [net] = group.multus
    for subnet in used_by(plan, list(net.subnets.values())):
        [cap] = subnet.capacity
        [v4] = [r for r in subnet.reservations if r.family == 4]
        [v6] = [r for r in subnet.reservations if r.family == 6]
        prefixes_28 = v4.addresses // 16
        prefixes_80 = v6.addresses // 2 ** 48
        primaries = ipaddress.ip_network(subnet.ipv4).num_addresses - 5 - v4.addresses
        assert cap.available == {"IPv4 addresses": primaries, "IPv4 /28 prefixes": prefixes_28,
                                 "IPv6 /80 prefixes": prefixes_80}
        assert cap.nodes == min(primaries, prefixes_28 // net.ipv4_prefixes, prefixes_80 // net.ipv6_prefixes)
        assert cap.limited_by == "IPv4 /28 prefixes"


def test_an_ipv6_node_takes_one_80_from_its_subnet(plan):
    stack, _, group = groups_of(plan)["ipv6mng"]
    assert group.max_pods == max_pods.MAX_PODS_LOW_CPU
    for subnet in used_by(plan, group.subnets):
        [cap] = subnet.capacity
        assert cap.per_node == {"IPv4 addresses": 1, "IPv6 /80 prefixes": 1}
        assert cap.available["IPv6 /80 prefixes"] == 2 ** 16


@pytest.mark.parametrize("kind,quota", [("AWS::EC2::VPC", "VPCs per region"),
                                         ("AWS::EC2::EIP", "Elastic IPs per region"),
                                         ("AWS::EC2::InternetGateway", "Internet gateways per region"),
                                         ("AWS::EKS::Cluster", "EKS clusters per region")])
def test_quota_needs_count_the_templates_resources(plan, templates, kind, quota):
    [need] = [q for q in plan.quotas if q.quota == quota]
    assert need.needed == sum(len(resources(t, kind)) for t in templates.values())
    assert need.fits == (need.needed <= need.default)
    if not need.fits:
        assert any(quota in f and "above the default quota" in f for f in plan.findings)


def test_eni_quota_per_instance_is_the_instance_types_limit(plan):
    for _, _, group in groups_of(plan).values():
        [need] = [q for q in plan.quotas if q.quota.startswith(f"ENIs per instance, node group {group.name} ")]
        assert (need.needed, need.default) == (group.enis_per_instance, group.max_enis)


def test_fixed_hourly_cost_is_count_times_the_dated_price(plan, templates):
    from eksnet.plan import load_prices

    row = load_prices()["regions"]["eu-central-1"]
    count = {k: sum(len(resources(t, k)) for t in templates.values())
             for k in ("AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EKS::Cluster")}
    expected = (count["AWS::EC2::NatGateway"] * row["natGatewayHour"] + count["AWS::EC2::EIP"] * row["publicIpv4Hour"]
                + count["AWS::EKS::Cluster"] * row["eksClusterHour"])
    assert plan.hourly_total == pytest.approx(expected)
    assert plan.prices_checked == load_prices()["checked"]



def test_everything_in_the_default_app_can_be_read(plan):
    assert not [f for f in plan.findings if "cannot be read" in f or "is not in" in f]


def test_the_default_apps_node_groups_fit_their_subnets(plan):
    assert not [f for f in plan.findings if "is more nodes than its subnets hold" in f]
