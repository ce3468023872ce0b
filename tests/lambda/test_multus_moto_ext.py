"""The moto extensions behave as AWS documents: otherwise the Lambda tests would prove nothing."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from multus_eni_world import REGION

from demo import moto_ext


def _complete(node, token, result="CONTINUE", hook=None):
    node.autoscaling.complete_lifecycle_action(AutoScalingGroupName=node.group,
                                               LifecycleHookName=hook or node.launch_hook,
                                               LifecycleActionToken=token, LifecycleActionResult=result)


def test_complete_lifecycle_action_records_the_result(node):
    _complete(node, node.start(node.launch_hook), "ABANDON")
    assert node.results() == ["ABANDON"]


def test_completing_an_action_twice_is_a_validation_error(node):
    token = node.start(node.launch_hook)
    _complete(node, token)
    with pytest.raises(ClientError, match="No active Lifecycle Action found"):
        _complete(node, token)


def test_completing_with_an_unknown_token_is_a_validation_error(node):
    with pytest.raises(ClientError, match="No active Lifecycle Action found"):
        _complete(node, "00000000-0000-0000-0000-000000000000")


def test_a_result_other_than_continue_or_abandon_is_refused(node):
    with pytest.raises(ClientError, match="must be CONTINUE or ABANDON"):
        _complete(node, node.start(node.launch_hook), "MAYBE")


def test_an_action_can_be_completed_by_instance_id(node):
    node.start(node.launch_hook)
    node.autoscaling.complete_lifecycle_action(AutoScalingGroupName=node.group, LifecycleHookName=node.launch_hook,
                                               InstanceId=node.instance_id, LifecycleActionResult="CONTINUE")
    assert node.results() == ["CONTINUE"]


def test_heartbeats_are_recorded_on_the_waiting_action(node):
    token = node.start(node.launch_hook)
    node.autoscaling.record_lifecycle_action_heartbeat(AutoScalingGroupName=node.group,
                                                       LifecycleHookName=node.launch_hook, LifecycleActionToken=token)
    assert [a.heartbeats for a in moto_ext.lifecycle_actions(REGION).waiting if a.token == token] == [1]


def test_starting_an_action_needs_the_hook(node):
    with pytest.raises(ValueError, match="no lifecycle hook"):
        moto_ext.start_lifecycle_action(REGION, node.group, "missing", node.instance_id)


def _eni(node, index=0):
    return node.ec2.create_network_interface(SubnetId=node.multus_subnets[node.zone][index])["NetworkInterface"][
        "NetworkInterfaceId"]


def test_attaching_at_a_taken_device_index_is_refused(node):
    node.ec2.attach_network_interface(NetworkInterfaceId=_eni(node), InstanceId=node.instance_id, DeviceIndex=1)
    with pytest.raises(ClientError, match="already has an interface attached at device index '1'"):
        node.ec2.attach_network_interface(NetworkInterfaceId=_eni(node, 1), InstanceId=node.instance_id,
                                          DeviceIndex=1)


def test_attaching_an_interface_already_in_use_is_refused(node):
    eni = _eni(node)
    node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=1)
    with pytest.raises(ClientError, match="InvalidNetworkInterface.InUse"):
        node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=2)


def test_attaching_across_zones_is_refused(node):
    other_zone = next(z for z in node.multus_subnets if z != node.zone)
    eni = node.ec2.create_network_interface(SubnetId=node.multus_subnets[other_zone][0])["NetworkInterface"]
    with pytest.raises(ClientError, match="same availability zone"):
        node.ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=node.instance_id,
                                          DeviceIndex=1)


def test_deleting_an_attached_interface_is_refused(node):
    eni = _eni(node)
    node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=1)
    with pytest.raises(ClientError, match="InvalidNetworkInterface.InUse"):
        node.ec2.delete_network_interface(NetworkInterfaceId=eni)


def test_delete_on_termination_is_stored_on_the_attachment(node):
    eni = _eni(node)
    attachment = node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id,
                                                   DeviceIndex=1)["AttachmentId"]
    node.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Attachment={
        "AttachmentId": attachment, "DeleteOnTermination": True})
    (found,) = node.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"]
    assert found["Attachment"]["DeleteOnTermination"] is True


def test_delete_on_termination_needs_the_eni_own_attachment_id(node):
    eni = _eni(node)
    node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=1)
    with pytest.raises(ClientError, match="InvalidAttachmentID.NotFound"):
        node.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Attachment={
            "AttachmentId": "eni-attach-0000000000000000", "DeleteOnTermination": True})


def test_delegated_prefixes_never_overlap_within_a_subnet(node):
    subnet = node.multus_subnets[node.zone][0]
    prefixes = []
    for _ in range(3):
        eni = node.ec2.create_network_interface(SubnetId=subnet, Ipv4PrefixCount=2, Ipv6PrefixCount=1)
        prefixes += [p["Ipv4Prefix"] for p in eni["NetworkInterface"]["Ipv4Prefixes"]]
    assert len(set(prefixes)) == 6


def test_a_repeated_client_token_returns_the_first_interface(node):
    subnet = node.multus_subnets[node.zone][0]
    first = node.ec2.create_network_interface(SubnetId=subnet, ClientToken="tok-1")["NetworkInterface"]
    again = node.ec2.create_network_interface(SubnetId=subnet, ClientToken="tok-1")["NetworkInterface"]
    other = node.ec2.create_network_interface(SubnetId=subnet, ClientToken="tok-2")["NetworkInterface"]
    assert again["NetworkInterfaceId"] == first["NetworkInterfaceId"] != other["NetworkInterfaceId"]


def _lifecycle_state(node) -> str:
    (group,) = node.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[node.group])["AutoScalingGroups"]
    return next(i["LifecycleState"] for i in group["Instances"] if i["InstanceId"] == node.instance_id)


def test_an_instance_waiting_on_a_launch_hook_shows_pending_wait_then_in_service(node):
    token = node.start(node.launch_hook)
    assert _lifecycle_state(node) == "Pending:Wait"
    _complete(node, token)
    assert _lifecycle_state(node) == "InService"


def test_an_abandoned_launch_shows_terminating(node):
    _complete(node, node.start(node.launch_hook), "ABANDON")
    assert _lifecycle_state(node) == "Terminating"


def test_an_instance_waiting_on_a_terminate_hook_shows_terminating_wait_then_proceed(node):
    token = node.start(node.terminate_hook)
    assert _lifecycle_state(node) == "Terminating:Wait"
    _complete(node, token, hook=node.terminate_hook)
    assert _lifecycle_state(node) == "Terminating:Proceed"
