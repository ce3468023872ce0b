"""The lifecycle handler on launch, against moto: one tagged, attached, configured ENI per Multus subnet, then CONTINUE."""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from multus_eni_world import lifecycle_event

EC2_READS = {"DescribeInstances", "DescribeNetworkInterfaces"}


def _by_index(enis: list[dict]) -> dict[int, dict]:
    return {int(next(t["Value"] for t in e["TagSet"] if t["Key"] == "eksnet.io/device-index")): e for e in enis}


def _ec2_calls(node) -> list[str]:
    return [n for n in node.calls.names() if n not in ("CompleteLifecycleAction",)]


def test_launch_creates_one_eni_per_multus_subnet_of_the_instance_zone(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    enis = node.our_enis()
    assert sorted(e["SubnetId"] for e in enis) == sorted(node.multus_subnets[node.zone])
    assert {e["AvailabilityZone"] for e in enis} == {node.zone}


def test_launch_tags_each_eni_with_the_seed_tags_its_instance_arn_and_device_index(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    for index, eni in _by_index(node.our_enis()).items():
        tags = {t["Key"]: t["Value"] for t in eni["TagSet"]}
        assert tags == {
            "multus": "true", "Zone": node.zone, "cluster": node.cluster, "node.k8s.amazonaws.com/no_manage": "true",
            "eksnet.io/instance-arn": f"arn:aws:ec2:eu-central-1:123456789012:instance/{node.instance_id}",
            "eksnet.io/device-index": str(index),
        }


def test_launch_sets_every_tag_in_the_create_call_and_never_tags_afterwards(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    creates = node.calls.of("CreateNetworkInterface")
    assert len(creates) == 2
    for params in creates:
        (spec,) = params["TagSpecifications"]
        assert spec["ResourceType"] == "network-interface"
        assert {"multus", "Zone", "cluster", "node.k8s.amazonaws.com/no_manage", "eksnet.io/instance-arn",
                "eksnet.io/device-index"} <= {t["Key"] for t in spec["Tags"]}
    assert "CreateTags" not in node.calls.names()


def test_launch_attaches_the_enis_at_device_indexes_one_to_n_in_subnet_order(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    enis = _by_index(node.our_enis())
    assert sorted(enis) == [1, 2]
    for index, subnet in enumerate(node.multus_subnets[node.zone], start=1):
        assert enis[index]["SubnetId"] == subnet
        assert enis[index]["Status"] == "in-use"
        assert enis[index]["Attachment"]["InstanceId"] == node.instance_id
        assert enis[index]["Attachment"]["DeviceIndex"] == index


def test_launch_turns_the_source_dest_check_off(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    for eni in node.our_enis():
        assert eni["SourceDestCheck"] is False


def test_launch_puts_the_multus_security_group_on_each_eni(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    for eni in node.our_enis():
        assert [g["GroupId"] for g in eni["Groups"]] == [node.security_group_id]


def test_launch_marks_the_attachments_delete_on_termination(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    assert all(e["Attachment"]["DeleteOnTermination"] is True for e in node.our_enis())


def test_enis_die_with_their_instance(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    node.ec2.terminate_instances(InstanceIds=[node.instance_id])
    assert node.our_enis() == []


def test_launch_completes_the_lifecycle_action_with_continue(node, run):
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)))
    assert node.results() == ["CONTINUE"]
    assert outcome["result"] == "CONTINUE" and outcome["completed"] is True


def test_launch_costs_four_ec2_calls_per_eni_plus_one_describe(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    calls = _ec2_calls(node)
    assert len(calls) == 4 * 2 + 1
    assert calls[0] == "DescribeInstances" and calls.count("DescribeNetworkInterfaces") == 0
    assert node.calls.names().count("CompleteLifecycleAction") == 1


def test_a_duplicated_event_costs_one_describe_and_leaves_exactly_one_eni_per_subnet(node, run):
    event = lifecycle_event(node, node.start(node.launch_hook))
    first = run(event)
    node.calls.calls.clear()
    second = run(json.loads(json.dumps(event)))
    enis = node.our_enis()
    assert sorted(e["SubnetId"] for e in enis) == sorted(node.multus_subnets[node.zone])
    assert second["enis"] == first["enis"] and second["created"] == []
    assert _ec2_calls(node) == ["DescribeInstances"]
    assert node.results() == ["CONTINUE"]  # the second completion found no waiting action, and said so
    assert second["completed"] is False and second["error"] is None


def test_a_redelivery_after_a_partial_run_finishes_the_job_without_new_enis_for_done_indexes(node, run, ops,
                                                                                            settings_of):
    token = node.start(node.launch_hook)
    settings = settings_of(node)
    instance = ops.describe_instance(node.ec2, node.instance_id)
    # A first invocation that died (timeout) right after its first create: the retry's create gets that ENI back.
    early = ops.create_eni(node.ec2, settings, instance, node.multus_subnets[node.zone][0], 1,
                           ops.client_token(token, node.instance_id, 1))
    outcome = run(lifecycle_event(node, token))
    enis = _by_index(node.our_enis())
    assert sorted(enis) == [1, 2] and enis[1]["NetworkInterfaceId"] == early["NetworkInterfaceId"]
    assert len(node.our_enis()) == 2
    assert node.results() == ["CONTINUE"] and outcome["error"] is None


def test_an_eni_attached_earlier_but_not_configured_is_configured_not_replaced(node, run, ops, settings_of):
    token = node.start(node.launch_hook)
    instance = ops.describe_instance(node.ec2, node.instance_id)
    eni = ops.create_eni(node.ec2, settings_of(node), instance, node.multus_subnets[node.zone][0], 1,
                         ops.client_token(token, node.instance_id, 1))["NetworkInterfaceId"]
    node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=1)
    run(lifecycle_event(node, token))
    enis = _by_index(node.our_enis())
    assert enis[1]["NetworkInterfaceId"] == eni
    assert enis[1]["SourceDestCheck"] is False and enis[1]["Attachment"]["DeleteOnTermination"] is True


def test_launch_delegates_an_ipv4_28_prefix_when_configured(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)), ipv4_prefix_count=1)
    for eni in node.our_enis():
        (prefix,) = eni["Ipv4Prefixes"]
        net = ipaddress.ip_network(prefix["Ipv4Prefix"])
        subnet = node.ec2.describe_subnets(SubnetIds=[eni["SubnetId"]])["Subnets"][0]
        assert net.prefixlen == 28 and net.subnet_of(ipaddress.ip_network(subnet["CidrBlock"]))


def test_launch_delegates_an_ipv6_80_prefix_when_configured(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)), ipv6_prefix_count=1)
    for eni in node.our_enis():
        (prefix,) = eni["Ipv6Prefixes"]
        net = ipaddress.ip_network(prefix["Ipv6Prefix"])
        subnet = node.ec2.describe_subnets(SubnetIds=[eni["SubnetId"]])["Subnets"][0]
        v6 = ipaddress.ip_network(subnet["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
        assert net.prefixlen == 80 and net.subnet_of(v6)


def test_launch_without_prefix_options_delegates_no_prefix(node, run):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    assert all(not e.get("Ipv4Prefixes") and not e.get("Ipv6Prefixes") for e in node.our_enis())
    assert all("Ipv4PrefixCount" not in p for p in node.calls.of("CreateNetworkInterface"))


def test_launch_logs_records_carrying_the_instance_id_through_the_logging_module(node, run, caplog):
    caplog.set_level(logging.INFO, logger="multus_eni")
    run(lifecycle_event(node, node.start(node.launch_hook)))
    records = [r for r in caplog.records if r.name == "multus_eni"]
    assert records and all(r.instance_id == node.instance_id for r in records)
    assert any(r.getMessage() == "lifecycle action completed" and r.result == "CONTINUE" for r in records)


def test_launch_never_sleeps(node, run, monkeypatch):
    def no_sleep(seconds):
        raise AssertionError(f"slept {seconds}s")

    monkeypatch.setattr("time.sleep", no_sleep)
    assert run(lifecycle_event(node, node.start(node.launch_hook)))["result"] == "CONTINUE"


def test_two_concurrent_deliveries_of_one_event_make_one_eni_per_subnet(node, run):
    event = lifecycle_event(node, node.start(node.launch_hook))
    barrier = threading.Barrier(2)

    def deliver():
        barrier.wait()
        return run(json.loads(json.dumps(event)))

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: deliver(), range(2)))
    enis = _by_index(node.our_enis())
    assert len(node.our_enis()) == 2
    assert sorted(e["SubnetId"] for e in enis.values()) == sorted(node.multus_subnets[node.zone])
    assert all(e["Attachment"]["InstanceId"] == node.instance_id for e in enis.values())
    assert [o["error"] for o in outcomes] == [None, None]
    assert node.results() == ["CONTINUE"]
