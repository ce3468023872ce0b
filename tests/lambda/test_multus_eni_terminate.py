"""The lifecycle handler on terminate: the node keeps its ENIs until it is gone, and the action always CONTINUEs."""

from __future__ import annotations

from multus_eni_world import lifecycle_event


def _launched(node, run) -> list[str]:
    run(lifecycle_event(node, node.start(node.launch_hook)))
    node.calls.calls.clear()
    return sorted(e["NetworkInterfaceId"] for e in node.our_enis())


def test_terminate_leaves_the_enis_attached_while_the_node_runs(node, run):
    enis = _launched(node, run)
    run(lifecycle_event(node, node.start(node.terminate_hook), launch=False))
    found = node.our_enis()
    assert sorted(e["NetworkInterfaceId"] for e in found) == enis
    assert all(e["Attachment"]["InstanceId"] == node.instance_id for e in found)
    assert not {"DetachNetworkInterface", "DeleteNetworkInterface"} & set(node.calls.names())


def test_terminate_completes_the_lifecycle_action_with_continue_after_one_describe(node, run):
    _launched(node, run)
    run(lifecycle_event(node, node.start(node.terminate_hook), launch=False))
    assert node.results() == ["CONTINUE", "CONTINUE"]
    assert node.calls.names() == ["DescribeInstances", "CompleteLifecycleAction"]


def test_the_enis_go_with_the_instance_once_it_is_terminated(node, run):
    _launched(node, run)
    run(lifecycle_event(node, node.start(node.terminate_hook), launch=False))
    node.ec2.terminate_instances(InstanceIds=[node.instance_id])
    assert node.our_enis() == []


def test_terminate_marks_a_multus_eni_lacking_delete_on_termination(node, run, ops, settings_of):
    _launched(node, run)
    (eni,) = [e for e in node.our_enis() if e["Attachment"]["DeviceIndex"] == 1]
    node.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Attachment={
        "AttachmentId": eni["Attachment"]["AttachmentId"], "DeleteOnTermination": False})
    run(lifecycle_event(node, node.start(node.terminate_hook), launch=False))
    assert all(e["Attachment"]["DeleteOnTermination"] for e in node.our_enis())


def test_a_terminate_that_cannot_look_continues_anyway_and_leaves_the_rest_to_the_sweeper(node, run):
    enis = _launched(node, run)
    outcome = run(lifecycle_event(node, node.start(node.terminate_hook), launch=False), refuse="DescribeInstances")
    assert "UnauthorizedOperation" in outcome["error"]
    assert node.results() == ["CONTINUE", "CONTINUE"]
    assert sorted(e["NetworkInterfaceId"] for e in node.our_enis()) == enis  # nothing half-deleted


def test_a_terminate_out_of_time_continues_without_any_ec2_call(node, run):
    _launched(node, run)
    outcome = run(lifecycle_event(node, node.start(node.terminate_hook), launch=False), seconds_left=5)
    assert "DeadlineReached" in outcome["error"]
    assert node.results() == ["CONTINUE", "CONTINUE"]
    assert node.calls.names() == ["CompleteLifecycleAction"]


def test_a_redelivered_terminate_event_is_harmless(node, run):
    _launched(node, run)
    event = lifecycle_event(node, node.start(node.terminate_hook), launch=False)
    run(event)
    again = run(event)
    assert again["error"] is None and again["completed"] is False
    assert node.results() == ["CONTINUE", "CONTINUE"]


def test_an_instance_returning_to_the_warm_pool_keeps_its_enis_without_any_ec2_call(node, run):
    enis = _launched(node, run)
    outcome = run(lifecycle_event(node, node.start(node.terminate_hook), launch=False, destination="WarmPool"))
    assert sorted(e["NetworkInterfaceId"] for e in node.our_enis()) == enis
    assert outcome["skipped"] == "returning to warm pool" and node.results() == ["CONTINUE", "CONTINUE"]
    assert node.calls.names() == ["CompleteLifecycleAction"]
