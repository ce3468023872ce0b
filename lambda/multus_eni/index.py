"""Lambda entry point: Auto Scaling lifecycle actions (via EventBridge) -> the node's Multus ENIs.

Thin on purpose: parse the event, build the clients, call ``multus_eni_ops``. The
event is EventBridge's "EC2 Instance-launch Lifecycle Action" or "EC2
Instance-terminate Lifecycle Action" (``detail`` carries LifecycleActionToken,
AutoScalingGroupName, LifecycleHookName, EC2InstanceId, LifecycleTransition,
NotificationMetadata, Origin, Destination). ``autoscaling:TEST_NOTIFICATION``
messages (sent when a hook gets an SNS/SQS target) are acknowledged and ignored.
"""

from __future__ import annotations

import dataclasses

import boto3
import multus_eni_ops as ops
from botocore.config import Config

# Adaptive retries: client-side rate limiting when EC2 throttles a burst of launches.
BOTO_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=20)

DETAIL_TYPES = {
    "EC2 Instance-launch Lifecycle Action": ops.LAUNCHING,
    "EC2 Instance-terminate Lifecycle Action": ops.TERMINATING,
}


def clients(endpoint_url: str | None = None) -> tuple[object, object]:
    """EC2 and Auto Scaling clients (``endpoint_url`` only for tests against a local AWS double)."""
    return (boto3.client("ec2", config=BOTO_CONFIG, endpoint_url=endpoint_url),
            boto3.client("autoscaling", config=BOTO_CONFIG, endpoint_url=endpoint_url))


def handle(event: dict, ec2, autoscaling, settings: ops.Settings, log: ops.JsonLog) -> dict:
    """Route one event to the launch or terminate transition; returns a JSON-able outcome."""
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else event
    if ops.TEST_NOTIFICATION in (event.get("Event"), detail.get("Event"), detail.get("LifecycleTransition")):
        log.info("test notification ignored", group=detail.get("AutoScalingGroupName"))
        return {"skipped": "test notification"}
    detail_type = event.get("detail-type")
    if detail_type is not None and detail_type not in DETAIL_TYPES:
        log.warning("event ignored: not a lifecycle action", detail_type=detail_type)
        return {"skipped": f"detail-type {detail_type!r}"}
    action = ops.LifecycleAction.from_detail(detail)
    log = log.bind(instance_id=action.instance_id, group=action.group, hook=action.hook,
                   transition=action.transition, event_id=event.get("id"))
    if detail_type is not None and DETAIL_TYPES[detail_type] != action.transition:
        raise ValueError(f"detail-type {detail_type!r} does not match LifecycleTransition {action.transition!r}")
    log.info("lifecycle action received", origin=action.origin, destination=action.destination)
    if action.transition == ops.LAUNCHING:
        outcome = ops.on_launch(ec2, autoscaling, settings, action, log)
    elif action.transition == ops.TERMINATING:
        outcome = ops.on_terminate(ec2, autoscaling, settings, action, log)
    else:
        log.warning("event ignored: unknown lifecycle transition")
        return {"skipped": f"transition {action.transition!r}"}
    return dataclasses.asdict(outcome)


def handler(event, context):
    settings = ops.Settings.from_env()
    log = ops.JsonLog(settings.log_level, request_id=getattr(context, "aws_request_id", None))
    ec2, autoscaling = clients()
    return handle(event, ec2, autoscaling, settings, log)
