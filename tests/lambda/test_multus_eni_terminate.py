"""The lifecycle handler on terminate, and the events it must not act on."""

from __future__ import annotations

from multus_eni_world import lifecycle_event


def _launched(node, run) -> list[str]:
    run(lifecycle_event(node, node.start(node.launch_hook)))
    return sorted(e["NetworkInterfaceId"] for e in node.our_enis())


def test_terminate_detaches_and_deletes_the_node_enis(node, run):
    enis = _launched(node, run)
    outcome = run(lifecycle_event(node, node.start(node.terminate_hook), launch=False))
    assert node.our_enis() == []
    assert sorted(outcome["deleted"]) == enis
    assert node.calls.names().count("DetachNetworkInterface") == 2


def test_terminate_completes_the_lifecycle_action_with_continue(node, run):
    _launched(node, run)
    run(lifecycle_event(node, node.start(node.terminate_hook), launch=False))
    assert node.results() == ["CONTINUE", "CONTINUE"]


def test_terminate_keeps_the_instance_primary_interface(node, run):
    _launched(node, run)
    run(lifecycle_event(node, node.start(node.terminate_hook), launch=False))
    (instance,) = node.ec2.describe_instances(InstanceIds=[node.instance_id])["Reservations"][0]["Instances"]
    assert [i["Attachment"]["DeviceIndex"] for i in instance["NetworkInterfaces"]] == [0]


def test_a_redelivered_terminate_event_is_harmless(node, run):
    _launched(node, run)
    event = lifecycle_event(node, node.start(node.terminate_hook), launch=False)
    run(event)
    again = run(event)
    assert again["error"] is None and again["deleted"] == []
    assert node.results() == ["CONTINUE", "CONTINUE"]


def test_an_instance_returning_to_the_warm_pool_keeps_its_enis(node, run):
    enis = _launched(node, run)
    outcome = run(lifecycle_event(node, node.start(node.terminate_hook), launch=False, destination="WarmPool"))
    assert sorted(e["NetworkInterfaceId"] for e in node.our_enis()) == enis
    assert outcome["skipped"] == "returning to warm pool" and node.results() == ["CONTINUE", "CONTINUE"]


def test_a_test_notification_is_acknowledged_without_any_call(node, run):
    event = {"AccountId": "123456789012", "RequestId": "r-1", "AutoScalingGroupARN": "arn:aws:autoscaling:x",
             "AutoScalingGroupName": node.group, "Service": "AWS Auto Scaling", "Event": "autoscaling:TEST_NOTIFICATION",
             "Time": "2026-11-23T22:40:00Z"}
    assert run(event) == {"skipped": "test notification"}
    assert node.calls.names() == []


def test_a_test_notification_wrapped_by_eventbridge_is_acknowledged_too(node, run):
    event = lifecycle_event(node, "t")
    event["detail"] = {"AutoScalingGroupName": node.group, "Event": "autoscaling:TEST_NOTIFICATION"}
    assert run(event) == {"skipped": "test notification"}
    assert node.calls.names() == []


def test_other_detail_types_are_ignored(node, run):
    event = lifecycle_event(node, "t")
    event["detail-type"] = "EC2 Instance Launch Successful"
    assert run(event)["skipped"].startswith("detail-type")
    assert node.calls.names() == []


def test_a_terminate_that_cannot_detach_abandons_and_leaves_the_enis_to_the_sweeper(node, run):
    enis = _launched(node, run)
    outcome = run(lifecycle_event(node, node.start(node.terminate_hook), launch=False),
                  refuse="DetachNetworkInterface")
    assert "UnauthorizedOperation" in outcome["error"]
    assert node.results() == ["CONTINUE", "ABANDON"]
    assert sorted(e["NetworkInterfaceId"] for e in node.our_enis()) == enis  # nothing half-deleted
