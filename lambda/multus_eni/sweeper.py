"""Lambda entry point, on a schedule: delete leaked Multus ENIs (available, ours, instance gone).

Leaks happen when a cleanup itself fails, when a launch invocation times out between
create and attach, or when an ENI outlives its instance some other way (EventBridge
delivers on a best-effort basis). Thin: read the environment, call ``multus_eni_ops.sweep``.
The EC2 client shares the lifecycle handler's retry budget and stops starting calls
when the function's time runs short (the next run picks up the rest).
"""

from __future__ import annotations

import boto3
import multus_eni_budget as budget
import multus_eni_ops as ops

BOTO_CONFIG = budget.BOTO_CONFIG
RESERVE = budget.worst_call_seconds() + budget.MARGIN


def handle(ec2, settings: ops.Settings, log: ops.Log) -> dict:
    return ops.sweep(ec2, settings.cluster_name, log.bind(cluster=settings.cluster_name))


def handler(event, context):
    settings = ops.Settings.from_env()
    ec2 = boto3.client("ec2", config=BOTO_CONFIG)
    budget.Deadline.from_context(context, RESERVE).guard(ec2)
    return handle(ec2, settings, ops.logger())
