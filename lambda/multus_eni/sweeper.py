"""Lambda entry point, on a schedule: delete leaked Multus ENIs (available, ours, instance gone).

Leaks happen when a cleanup itself fails, when a launch invocation times out between
create and attach, or when a terminate event is lost (EventBridge delivers on a
best-effort basis). Thin: read the environment, call ``multus_eni_ops.sweep``.
"""

from __future__ import annotations

import boto3
import multus_eni_ops as ops
from botocore.config import Config

BOTO_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=20)


def handle(ec2, settings: ops.Settings, log: ops.JsonLog) -> dict:
    return ops.sweep(ec2, settings.cluster_name, log.bind(cluster=settings.cluster_name))


def handler(event, context):
    settings = ops.Settings.from_env()
    log = ops.JsonLog(settings.log_level, request_id=getattr(context, "aws_request_id", None))
    return handle(boto3.client("ec2", config=BOTO_CONFIG), settings, log)
