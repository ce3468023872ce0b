"""The handler acts only on its own hooks of its own groups; everything else is logged and left alone."""

from __future__ import annotations

import logging

import pytest
from multus_eni_world import lifecycle_event


@pytest.fixture
def ignored(node, run, caplog):
    """Deliver an event; assert it was ignored without any call and logged as such; return the outcome."""

    def deliver(event: dict) -> dict:
        caplog.set_level(logging.WARNING, logger="multus_eni")
        outcome = run(event)
        assert set(outcome) == {"skipped"}
        assert node.calls.names() == []
        assert any(r.getMessage().startswith("event ignored") for r in caplog.records)
        return outcome

    return deliver


def test_another_hook_on_our_group_is_not_ours_to_complete(node, ignored):
    node.autoscaling.put_lifecycle_hook(AutoScalingGroupName=node.group, LifecycleHookName="drain",
                                        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING")
    event = lifecycle_event(node, node.start("drain"), launch=False)
    event["detail"]["LifecycleHookName"] = "drain"
    assert ignored(event)["skipped"] == "not this function's hook or group"
    assert node.results() == []


def test_our_hook_name_on_another_group_is_ignored(node, ignored):
    event = lifecycle_event(node, "token")
    event["detail"]["AutoScalingGroupName"] = "someone-elses-group"
    ignored(event)


def test_the_launch_hook_name_on_a_terminate_event_is_ignored(node, ignored):
    event = lifecycle_event(node, "token", launch=False)
    event["detail"]["LifecycleHookName"] = node.launch_hook
    ignored(event)


def test_a_transition_that_contradicts_the_detail_type_is_ignored(node, ignored):
    event = lifecycle_event(node, "token")
    event["detail"]["LifecycleTransition"] = "autoscaling:EC2_INSTANCE_TERMINATING"
    ignored(event)


def test_other_detail_types_are_ignored(node, ignored):
    event = lifecycle_event(node, "t")
    event["detail-type"] = "EC2 Instance Launch Successful"
    ignored(event)


def test_another_source_is_ignored(node, ignored):
    event = lifecycle_event(node, "t")
    event["source"] = "custom.app"
    ignored(event)


def test_an_auto_scaling_test_notification_is_ignored(node, ignored):
    ignored({"AccountId": "123456789012", "RequestId": "r-1", "AutoScalingGroupARN": "arn:aws:autoscaling:x",
             "AutoScalingGroupName": node.group, "Service": "AWS Auto Scaling",
             "Event": "autoscaling:TEST_NOTIFICATION", "Time": "2026-11-23T22:40:00Z"})
