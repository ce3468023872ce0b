"""The lifecycle handler when something fails: nothing of this invocation stays behind, and the action is ABANDONed."""

from __future__ import annotations

from multus_eni_world import lifecycle_event


def _foreign_eni_at(node, device_index: int) -> str:
    """Someone else's interface already at ``device_index``: EC2 then refuses our attach there."""
    subnet = node.ec2.describe_instances(InstanceIds=[node.instance_id])["Reservations"][0]["Instances"][0]["SubnetId"]
    eni = node.ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=device_index)
    return eni


def test_an_attach_refused_midway_leaves_none_of_our_enis_behind(node, run):
    _foreign_eni_at(node, 2)
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)))
    assert len(outcome["created"]) == 2  # both were made before the second attach failed...
    assert sorted(outcome["deleted"]) == sorted(outcome["created"])
    assert node.our_enis() == []  # ...and both are gone, the first one detached first


def test_an_attach_refused_midway_abandons_the_lifecycle_action(node, run):
    _foreign_eni_at(node, 2)
    outcome = run(lifecycle_event(node, node.start(node.launch_hook)))
    assert node.results() == ["ABANDON"]
    assert outcome["result"] == "ABANDON" and "already has an interface" in outcome["error"]


def test_cleanup_leaves_interfaces_that_are_not_ours_alone(node, run):
    foreign = _foreign_eni_at(node, 2)
    run(lifecycle_event(node, node.start(node.launch_hook)))
    (eni,) = node.ec2.describe_network_interfaces(NetworkInterfaceIds=[foreign])["NetworkInterfaces"]
    assert eni["Attachment"]["InstanceId"] == node.instance_id


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
