"""The lifecycle handler when something fails: nothing of this invocation stays behind, and the action is ABANDONed
whatever else fails, its own cleanup and its own time included."""

from __future__ import annotations

from multus_eni_world import lifecycle_event


def _foreign_eni_at(node, device_index: int) -> str:
    """Someone else's interface already at ``device_index``."""
    subnet = node.ec2.describe_instances(InstanceIds=[node.instance_id])["Reservations"][0]["Instances"][0]["SubnetId"]
    eni = node.ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=device_index)
    return eni


def test_an_attach_refused_midway_leaves_none_of_our_enis_behind(node, run):
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)), refuse="AttachNetworkInterface")
    assert len(outcome["created"]) == 1
    assert outcome["deleted"] == outcome["created"]
    assert node.our_enis() == []
    assert node.results() == ["ABANDON"] and "UnauthorizedOperation" in outcome["error"]


def test_an_index_taken_by_a_foreign_interface_abandons_and_cleans_up_the_first_eni(node, run):
    _foreign_eni_at(node, 2)
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)))
    assert "device index 2" in outcome["error"] and "not its Multus ENI" in outcome["error"]
    assert len(outcome["created"]) == 1 and outcome["deleted"] == outcome["created"]
    assert node.our_enis() == []  # the first one was attached: detached, waited for, deleted
    assert "DetachNetworkInterface" in node.calls.names()
    assert node.results() == ["ABANDON"]


def test_cleanup_leaves_interfaces_that_are_not_ours_alone(node, run):
    foreign = _foreign_eni_at(node, 2)
    run(lifecycle_event(node, node.start(node.launch_hook)))
    (eni,) = node.ec2.describe_network_interfaces(NetworkInterfaceIds=[foreign])["NetworkInterfaces"]
    assert eni["Attachment"]["InstanceId"] == node.instance_id


def test_a_cleanup_that_fails_still_abandons(node, run):
    _foreign_eni_at(node, 2)
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)), refuse="DeleteNetworkInterface")
    assert outcome["result"] == "ABANDON" and outcome["completed"] is True
    assert "UnauthorizedOperation" in outcome["cleanup_error"]
    assert node.results() == ["ABANDON"]


def test_a_launch_out_of_time_abandons_without_starting_an_ec2_call(node, run):
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)), seconds_left=60)
    assert "DeadlineReached" in outcome["error"]
    assert node.calls.names() == ["CompleteLifecycleAction"]
    assert node.results() == ["ABANDON"]


def test_a_create_refused_midway_deletes_the_enis_already_made_and_abandons(node, run):
    node.multus_subnets[node.zone][1] = "subnet-0000000000deadbee"  # no such subnet
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)))
    assert len(outcome["created"]) == 1 and outcome["deleted"] == outcome["created"]
    assert node.our_enis() == []
    assert node.results() == ["ABANDON"]


def test_a_zone_without_multus_subnets_abandons_without_creating_anything(node, run):
    del node.multus_subnets[node.zone]
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)))
    assert "no Multus subnet configured for zone" in outcome["error"]
    assert "CreateNetworkInterface" not in node.calls.names()
    assert node.results() == ["ABANDON"]


def test_an_exhausted_subnet_for_the_prefix_abandons_cleanly(node, run):
    # A /24 holds 16 /28s; 16 per ENI cannot fit once the subnet's reserved first addresses are excluded.
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)), ipv4_prefix_count=16)
    assert "InsufficientCidrBlocks" in outcome["error"]
    assert node.our_enis() == []
    assert node.results() == ["ABANDON"]


def test_a_launch_event_for_an_instance_already_gone_creates_nothing(node, run):
    token = node.start(node.launch_hook)
    node.ec2.terminate_instances(InstanceIds=[node.instance_id])
    outcome = run(lifecycle_event(node, token))
    assert outcome["skipped"] == "instance gone"
    assert "CreateNetworkInterface" not in node.calls.names()
