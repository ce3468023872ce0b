"""Lambda entry point: Auto Scaling lifecycle actions (via EventBridge) and the deploy-time reconciliation.

Thin on purpose: parse the event, build the clients, call ``multus_eni_ops`` or
``multus_eni_reconcile``. Two kinds of event reach this function:

- EventBridge's "EC2 Instance-launch Lifecycle Action" / "EC2 Instance-terminate
  Lifecycle Action" (``detail``: LifecycleActionToken, AutoScalingGroupName,
  LifecycleHookName, EC2InstanceId, LifecycleTransition, NotificationMetadata,
  Origin, Destination). Only this function's own hooks on its own groups are acted
  on (names from the environment); anything else is logged and ignored, never
  completed: another hook's action is its owner's to complete.
- A CloudFormation custom resource request (``RequestType``, ``ResponseURL``): the
  construct's reconciliation, run at deploy time for the nodes that are already there.

Logs go through the ``logging`` module; the function's log format is Lambda's JSON
(``LoggingConfig.LogFormat: JSON``), which prints each record's ``extra`` fields
as keys. Every client shares ``multus_eni_budget.BOTO_CONFIG`` and a deadline that
keeps time for the final answer.
"""

from __future__ import annotations

import dataclasses

import boto3
import multus_eni_budget as budget
import multus_eni_ops as ops
import multus_eni_reconcile as reconcile

BOTO_CONFIG = budget.BOTO_CONFIG

DETAIL_TYPES = {
    "EC2 Instance-launch Lifecycle Action": ops.LAUNCHING,
    "EC2 Instance-terminate Lifecycle Action": ops.TERMINATING,
}


def clients(deadline: budget.Deadline) -> tuple[object, object]:
    """EC2 (each call checked against ``deadline``) and Auto Scaling (its answer must always go out)."""
    ec2 = boto3.client("ec2", config=BOTO_CONFIG)
    deadline.guard(ec2)
    return ec2, boto3.client("autoscaling", config=BOTO_CONFIG)


def ignored(log: ops.Log, why: str, **fields) -> dict:
    log.warning("event ignored: %s", why, extra=fields)
    return {"skipped": why}


def handle(event: dict, ec2, autoscaling, settings: ops.Settings, log: ops.Log) -> dict:
    """Route one EventBridge event to the launch or terminate transition; returns a JSON-able outcome."""
    detail = event.get("detail")
    detail_type = event.get("detail-type")
    if event.get("source") != "aws.autoscaling" or detail_type not in DETAIL_TYPES or not isinstance(detail, dict):
        return ignored(log, "not an Auto Scaling lifecycle action", source=event.get("source"),
                       detail_type=detail_type, event_name=event.get("Event"))
    group, hook = detail.get("AutoScalingGroupName"), detail.get("LifecycleHookName")
    transition = detail.get("LifecycleTransition")
    expected_hook = settings.launch_hook if DETAIL_TYPES[detail_type] == ops.LAUNCHING else settings.terminate_hook
    if group not in settings.group_names or hook != expected_hook or transition != DETAIL_TYPES[detail_type]:
        return ignored(log, "not this function's hook or group", group=group, hook=hook, transition=transition,
                       detail_type=detail_type, instance_id=detail.get("EC2InstanceId"))
    action = ops.LifecycleAction.from_detail(detail)
    log = log.bind(instance_id=action.instance_id, group=action.group, hook=action.hook,
                   transition=action.transition, event_id=event.get("id"))
    log.info("lifecycle action received", extra={"origin": action.origin, "destination": action.destination})
    if action.transition == ops.LAUNCHING:
        outcome = ops.on_launch(ec2, autoscaling, settings, action, log, waiter_delay=budget.WAITER_DELAY)
    else:
        outcome = ops.on_terminate(ec2, autoscaling, settings, action, log)
    return dataclasses.asdict(outcome)


def handler(event, context):
    settings = ops.Settings.from_env()
    log = ops.logger()
    if reconcile.is_custom_resource_request(event):
        deadline = budget.Deadline.from_context(context, budget.RECONCILE_RESERVE)
        ec2, autoscaling = clients(deadline)
        return reconcile.handle_request(event, ec2, autoscaling, settings, log)
    ec2, autoscaling = clients(budget.Deadline.from_context(context, budget.LIFECYCLE_RESERVE))
    return handle(event, ec2, autoscaling, settings, log)
