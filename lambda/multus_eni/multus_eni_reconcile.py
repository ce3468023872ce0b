"""Deploy-time reconciliation: nodes that were already there when the hooks appeared get their Multus ENIs.

A managed node group's first nodes launch before CloudFormation can put the hooks on
its Auto Scaling group (EKS names the group), and a self-managed group's first
nodes may wait on a hook whose event went out before the EventBridge rule existed.
The construct therefore adds a custom resource, created after the hooks and the
rule, whose request this module answers (on Create and Update; Delete has nothing
to undo). For every instance of the function's groups:

- ``InService``: the same ``ensure_enis`` as a launch (ENIs already in place cost
  nothing). A node that cannot get them is cleaned up and marked Unhealthy
  (``SetInstanceHealth``), so the group replaces it and the replacement comes
  through the launch hook: the deploy-time counterpart of ABANDON.
- ``Pending:Wait``: handled as a launch whose action is completed by instance id.
- anything else (terminating, warm pool, pending before the hook): left to the hooks.

The response goes to CloudFormation's pre-signed ``ResponseURL`` whatever happens,
so a deployment never hangs on this resource.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import multus_eni_budget as budget
import multus_eni_ops as ops

WORKERS = 8  # instances reconciled at once (boto3 clients are thread-safe)


def is_custom_resource_request(event) -> bool:
    return isinstance(event, dict) and "RequestType" in event and "ResponseURL" in event


def group_instances(autoscaling, group_names) -> list[tuple[str, dict]]:
    """(group name, instance) for every instance of ``group_names`` (a missing group has none)."""
    found = []
    paginator = autoscaling.get_paginator("describe_auto_scaling_groups")
    for page in paginator.paginate(AutoScalingGroupNames=sorted(group_names)):
        for group in page["AutoScalingGroups"]:
            found += [(group["AutoScalingGroupName"], i) for i in group.get("Instances", [])]
    return found


def reconcile_instance(ec2, autoscaling, settings: ops.Settings, group: str, member: dict, seed: str,
                       log: ops.Log) -> tuple[str, dict]:
    """One instance of a group: returns (what happened, details)."""
    instance_id, state = member["InstanceId"], member["LifecycleState"]
    log = log.bind(instance_id=instance_id, group=group, lifecycle_state=state)
    if state == "Pending:Wait":
        action = ops.LifecycleAction(instance_id=instance_id, group=group, hook=settings.launch_hook, token="",
                                     transition=ops.LAUNCHING)
        out = ops.on_launch(ec2, autoscaling, settings, action, log, waiter_delay=budget.WAITER_DELAY)
        return ("completed" if out.completed else "attempted"), dataclasses_dict(out)
    if state != "InService":
        return "skipped", {"instance_id": instance_id, "state": state}
    progress = ops.Progress()
    try:
        instance = ops.describe_instance(ec2, instance_id)
        if instance is None or instance.gone:
            return "skipped", {"instance_id": instance_id, "state": "gone"}
        ops.ensure_enis(ec2, settings, instance, f"{seed}/{instance_id}", log.bind(zone=instance.zone), progress)
        return "reconciled", {"instance_id": instance_id, "enis": progress.enis, "created": progress.created}
    except budget.DeadlineReached as exc:  # out of time, not the node's fault: the next deployment continues
        log.warning("out of time before this node's multus enis", extra={"error": str(exc)})
        return "unfinished", {"instance_id": instance_id, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a node without its ENIs must not stay in service
        error = f"{type(exc).__name__}: {exc}"
        log.error("multus enis failed on a running node: cleaning up and replacing it", extra={"error": error})
        try:
            ops.remove_enis(ec2, progress.created, log, settings.detach_timeout_seconds, budget.WAITER_DELAY)
        except Exception as cleanup:  # noqa: BLE001 - the replacement below matters more
            log.error("cleanup failed: the instance's termination and the sweeper remove what is left",
                      extra={"error": f"{type(cleanup).__name__}: {cleanup}"})
        autoscaling.set_instance_health(InstanceId=instance_id, HealthStatus="Unhealthy",
                                        ShouldRespectGracePeriod=False)
        return "replaced", {"instance_id": instance_id, "error": error}


def dataclasses_dict(out: ops.Outcome) -> dict:
    return {"instance_id": out.instance_id, "result": out.result, "enis": out.enis, "error": out.error}


def reconcile(ec2, autoscaling, settings: ops.Settings, seed: str, log: ops.Log) -> dict:
    """Every instance of the function's groups, WORKERS at a time; returns {what happened: [details]}."""
    members = group_instances(autoscaling, settings.group_names)
    summary: dict[str, list] = {"reconciled": [], "replaced": [], "completed": [], "attempted": [], "skipped": [],
                                "unfinished": []}
    with ThreadPoolExecutor(WORKERS) as pool:
        for kind, details in pool.map(
                lambda gm: reconcile_instance(ec2, autoscaling, settings, gm[0], gm[1], seed, log), members):
            summary[kind].append(details)
    log.info("reconciliation done", extra={k: len(v) for k, v in summary.items()})
    return summary


def respond(event: dict, status: str, reason: str, data: dict, physical_id: str) -> dict:
    """PUT the custom resource response to CloudFormation's pre-signed URL (content type empty, as it is signed)."""
    body = {"Status": status, "Reason": reason[:3000], "PhysicalResourceId": physical_id,
            "StackId": event["StackId"], "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"], "Data": data}
    request = urllib.request.Request(event["ResponseURL"], data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=budget.RESPONSE_TIMEOUT) as answer:  # noqa: S310 - CloudFormation's URL
        answer.read()
    return body


def handle_request(event: dict, ec2, autoscaling, settings: ops.Settings, log: ops.Log) -> dict:
    """Answer one CloudFormation request: reconcile on Create/Update, nothing on Delete; always respond."""
    log = log.bind(request_type=event.get("RequestType"), request_id=event.get("RequestId"))
    physical_id = event.get("PhysicalResourceId") or f"{settings.cluster_name}-multus-eni-reconciliation"
    status, reason, data = "SUCCESS", "", {}
    try:
        if event["RequestType"] in ("Create", "Update"):
            summary = reconcile(ec2, autoscaling, settings, f"reconcile/{event['RequestId']}", log)
            data = {k: len(v) for k, v in summary.items()}
            reason = json.dumps({k: [d["instance_id"] for d in v] for k, v in summary.items() if v})
            if summary["unfinished"]:
                status = "FAILED"
                reason = (f"{len(summary['unfinished'])} running nodes not reached before the function's deadline; "
                          f"deploy again to continue (done so far is kept): {reason}")
    except Exception as exc:  # noqa: BLE001 - CloudFormation must hear back, or the deployment hangs for an hour
        status, reason = "FAILED", f"reconciling the Multus ENIs of running nodes failed: {type(exc).__name__}: {exc}"
        log.error("reconciliation failed", extra={"error": reason})
    return respond(event, status, reason, data, physical_id)
