"""Multus ENIs of one node: plain functions over boto3 clients, shared by the lifecycle handler and the sweeper.

Nothing here reads the environment or the event: ``index.py`` and ``sweeper.py`` do,
then call these functions with clients, a ``Settings`` and a ``JsonLog``. Every
function is safe to run twice: ENIs are found again by their tags (cluster, instance
id, device index), and ``CreateNetworkInterface`` carries a client token derived
from the lifecycle action, so two concurrent deliveries of one event create one ENI.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Tag keys. The first four are the seed's (aws-samples Multus) tags; the VPC CNI leaves
# an ENI tagged node.k8s.amazonaws.com/no_manage=true alone. The construct's IAM
# conditions use the same keys: keep eksnet.multus_eni in step.
TAG_MULTUS = "multus"
TAG_ZONE = "Zone"
TAG_CLUSTER = "cluster"
TAG_NO_MANAGE = "node.k8s.amazonaws.com/no_manage"
TAG_INSTANCE = "eksnet/instance-id"
TAG_DEVICE_INDEX = "eksnet/device-index"

GONE_STATES = frozenset({"shutting-down", "terminated"})
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"


class ConfigError(ValueError):
    """The function's environment is wrong: say which variable and what it should hold."""


class MultusEniError(RuntimeError):
    """A node's Multus ENIs cannot be made as configured (not an AWS error)."""


# --- logging -------------------------------------------------------------------------------------------------------

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class JsonLog:
    """One JSON object per line on stdout (CloudWatch keeps each line as one event), with bound fields."""

    def __init__(self, level: str = "INFO", stream=None, **fields) -> None:
        self.level = _LEVELS.get(level.upper(), 20)
        self.stream = stream
        self.fields = fields

    def bind(self, **fields) -> JsonLog:
        log = JsonLog(stream=self.stream, **{**self.fields, **fields})
        log.level = self.level
        return log

    def _emit(self, level: str, message: str, fields: dict) -> None:
        if _LEVELS[level] < self.level:
            return
        record = {"level": level, "message": message, **self.fields, **fields}
        print(json.dumps(record, default=str, sort_keys=True), file=self.stream or sys.stdout, flush=True)

    def debug(self, message: str, **fields) -> None:
        self._emit("DEBUG", message, fields)

    def info(self, message: str, **fields) -> None:
        self._emit("INFO", message, fields)

    def warning(self, message: str, **fields) -> None:
        self._emit("WARNING", message, fields)

    def error(self, message: str, **fields) -> None:
        self._emit("ERROR", message, fields)


# --- settings ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """What the construct writes into the function's environment (see lambda/README.md)."""

    cluster_name: str
    subnets: Mapping[str, Sequence[str]]  # zone -> Multus subnet ids, in device order
    security_group_ids: Sequence[str] = ()
    ipv4_prefix_count: int = 0  # delegated /28 prefixes per ENI
    ipv6_prefix_count: int = 0  # delegated /80 prefixes per ENI
    first_device_index: int = 1
    detach_timeout_seconds: int = 60
    log_level: str = "INFO"
    extra_tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        cluster = env.get("CLUSTER_NAME", "").strip()
        if not cluster:
            raise ConfigError("CLUSTER_NAME must name the EKS cluster whose nodes get Multus ENIs")
        try:
            subnets = json.loads(env.get("MULTUS_SUBNETS", "{}"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"MULTUS_SUBNETS must be JSON {{zone: [subnet ids]}}: {exc}") from None
        if not isinstance(subnets, dict) or not all(
            isinstance(v, list) and v and all(isinstance(s, str) and s for s in v) for v in subnets.values()
        ):
            raise ConfigError("MULTUS_SUBNETS must be JSON {zone: [subnet id, ...]} with at least one subnet per zone")
        groups = [g.strip() for g in env.get("MULTUS_SECURITY_GROUP_IDS", "").split(",") if g.strip()]

        def count(name: str, default: int, low: int, high: int) -> int:
            raw = env.get(name, "").strip() or str(default)
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
            return value

        return cls(
            cluster_name=cluster,
            subnets={az: tuple(ids) for az, ids in subnets.items()},
            security_group_ids=tuple(groups),
            ipv4_prefix_count=count("MULTUS_IPV4_PREFIX_COUNT", 0, 0, 16),
            ipv6_prefix_count=count("MULTUS_IPV6_PREFIX_COUNT", 0, 0, 16),
            first_device_index=count("MULTUS_FIRST_DEVICE_INDEX", 1, 1, 31),
            detach_timeout_seconds=count("MULTUS_DETACH_TIMEOUT_SECONDS", 60, 1, 600),
            log_level=env.get("LOG_LEVEL", "INFO"),
        )


# --- the lifecycle action ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LifecycleAction:
    """The ``detail`` of an EventBridge "EC2 Instance-launch/terminate Lifecycle Action" event."""

    instance_id: str
    group: str
    hook: str
    token: str
    transition: str
    origin: str = ""
    destination: str = ""

    @classmethod
    def from_detail(cls, detail: Mapping) -> LifecycleAction:
        missing = [k for k in ("EC2InstanceId", "AutoScalingGroupName", "LifecycleHookName",
                               "LifecycleActionToken", "LifecycleTransition") if not detail.get(k)]
        if missing:
            raise ValueError(f"lifecycle action event lacks {', '.join(missing)}")
        return cls(
            instance_id=detail["EC2InstanceId"], group=detail["AutoScalingGroupName"],
            hook=detail["LifecycleHookName"], token=detail["LifecycleActionToken"],
            transition=detail["LifecycleTransition"], origin=detail.get("Origin", ""),
            destination=detail.get("Destination", ""),
        )


def complete(autoscaling, action: LifecycleAction, result: str, log: JsonLog) -> bool:
    """Complete the action with CONTINUE or ABANDON; False if it was no longer waiting (done by a duplicate, timed out)."""
    try:
        autoscaling.complete_lifecycle_action(
            AutoScalingGroupName=action.group, LifecycleHookName=action.hook,
            LifecycleActionToken=action.token, LifecycleActionResult=result, InstanceId=action.instance_id,
        )
    except autoscaling.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "No active Lifecycle Action" in error.get("Message", ""):
            log.warning("lifecycle action no longer waiting", result=result, error=error.get("Message"))
            return False
        raise
    log.info("lifecycle action completed", result=result)
    return True


# --- ENIs ----------------------------------------------------------------------------------------------------------

def instance_placement(ec2, instance_id: str) -> tuple[str, str] | None:
    """(zone, state) of the instance, or None when EC2 no longer knows it."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ec2.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return None
        raise
    for reservation in reservations:
        for instance in reservation["Instances"]:
            return instance["Placement"]["AvailabilityZone"], instance["State"]["Name"]
    return None


def eni_tags(settings: Settings, zone: str, instance_id: str, device_index: int) -> dict[str, str]:
    return {
        TAG_MULTUS: "true", TAG_ZONE: zone, TAG_CLUSTER: settings.cluster_name, TAG_NO_MANAGE: "true",
        TAG_INSTANCE: instance_id, TAG_DEVICE_INDEX: str(device_index), **settings.extra_tags,
    }


def _tag(eni: Mapping, key: str) -> str | None:
    for t in eni.get("TagSet", []):
        if t["Key"] == key:
            return t["Value"]
    return None


def node_enis(ec2, cluster_name: str, instance_id: str) -> dict[int, dict]:
    """The instance's Multus ENIs of this cluster, by the device index they were made for (one API call)."""
    found = ec2.describe_network_interfaces(Filters=[
        {"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster_name]},
        {"Name": f"tag:{TAG_INSTANCE}", "Values": [instance_id]},
    ])["NetworkInterfaces"]
    by_index: dict[int, dict] = {}
    for eni in found:
        index = _tag(eni, TAG_DEVICE_INDEX)
        if index is not None and index.isdigit():
            by_index[int(index)] = eni
    return by_index


def client_token(action_token: str, instance_id: str, device_index: int) -> str:
    """CreateNetworkInterface's idempotency token (<= 64 ASCII): one per lifecycle action and device index."""
    return hashlib.sha256(f"{action_token}/{instance_id}/{device_index}".encode()).hexdigest()[:64]


def create_eni(ec2, settings: Settings, zone: str, subnet_id: str, instance_id: str, device_index: int,
               token: str) -> dict:
    """Create one Multus ENI with every tag set in the same call (never after: the VPC CNI could claim it first)."""
    tags = eni_tags(settings, zone, instance_id, device_index)
    request = {
        "SubnetId": subnet_id,
        "Description": f"Multus interface {device_index} of {instance_id} ({settings.cluster_name})",
        "TagSpecifications": [{"ResourceType": "network-interface",
                               "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        "ClientToken": token,
    }
    if settings.security_group_ids:
        request["Groups"] = list(settings.security_group_ids)
    if settings.ipv4_prefix_count:
        request["Ipv4PrefixCount"] = settings.ipv4_prefix_count
    if settings.ipv6_prefix_count:
        request["Ipv6PrefixCount"] = settings.ipv6_prefix_count
    return ec2.create_network_interface(**request)["NetworkInterface"]


def _attachment_of(ec2, eni_id: str) -> dict:
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    return eni.get("Attachment") or {}


def attach(ec2, eni: dict, instance_id: str, device_index: int) -> str:
    """Attach at ``device_index`` unless already there; returns the attachment id.

    A concurrent duplicate may have attached the same ENI between our describe and
    our attach: when AWS refuses, an ENI found attached to this instance at this index
    is success, anything else is the error it is.
    """
    current = eni.get("Attachment") or {}
    if current.get("InstanceId") == instance_id and current.get("DeviceIndex") == device_index:
        return current["AttachmentId"]
    if current.get("InstanceId"):
        raise MultusEniError(f"{eni['NetworkInterfaceId']} is attached to {current['InstanceId']}, not {instance_id}")
    try:
        return ec2.attach_network_interface(
            NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=instance_id, DeviceIndex=device_index,
        )["AttachmentId"]
    except ec2.exceptions.ClientError:
        now = _attachment_of(ec2, eni["NetworkInterfaceId"])
        if now.get("InstanceId") == instance_id and now.get("DeviceIndex") == device_index:
            return now["AttachmentId"]
        raise


def keep_with_instance(ec2, eni: dict, attachment_id: str) -> bool:
    """Set DeleteOnTermination on the attachment unless already set (AttachNetworkInterface cannot)."""
    if (eni.get("Attachment") or {}).get("DeleteOnTermination"):
        return False
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni["NetworkInterfaceId"],
        Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True},
    )
    return True


def remove_enis(ec2, enis: Sequence[dict], log: JsonLog, timeout_seconds: int = 60, force: bool = False) -> list[str]:
    """Detach (where attached), wait until available, delete; ENIs already gone count as removed.

    Detaching is asynchronous on EC2 ("detaching" for a few seconds): all detaches are
    sent first, then one waiter polls every ENI, then each is deleted.
    """
    ids = [e["NetworkInterfaceId"] for e in enis]
    detached = []
    for eni in enis:
        attachment = eni.get("Attachment") or {}
        if attachment.get("AttachmentId") and attachment.get("Status") != "detached":
            try:
                ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"], Force=force)
                detached.append(eni["NetworkInterfaceId"])
            except ec2.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] not in ("InvalidAttachmentID.NotFound",
                                                         "InvalidNetworkInterfaceID.NotFound"):
                    raise
    if detached:
        _wait_available(ec2, detached, timeout_seconds)
    removed = []
    for eni_id in ids:
        try:
            ec2.delete_network_interface(NetworkInterfaceId=eni_id)
        except ec2.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidNetworkInterfaceID.NotFound":
                raise
        removed.append(eni_id)
        log.info("multus eni deleted", eni_id=eni_id)
    return removed


def _wait_available(ec2, eni_ids: Sequence[str], timeout_seconds: int) -> None:
    deadline = time.monotonic() + timeout_seconds
    pending = list(eni_ids)
    while True:
        try:
            found = ec2.describe_network_interfaces(NetworkInterfaceIds=pending)["NetworkInterfaces"]
        except ec2.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidNetworkInterfaceID.NotFound":
                raise
            found = ec2.describe_network_interfaces(
                Filters=[{"Name": "network-interface-id", "Values": pending}])["NetworkInterfaces"]
        pending = [e["NetworkInterfaceId"] for e in found if e["Status"] != "available"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise MultusEniError(f"ENIs still not detached after {timeout_seconds}s: {', '.join(pending)}")
        time.sleep(1.0)


# --- the two transitions -------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one invocation did, returned by the handler (and asserted by tests)."""

    instance_id: str
    result: str | None = None  # CONTINUE / ABANDON sent, None when nothing was completed
    completed: bool = False
    enis: dict[int, str] = field(default_factory=dict)  # device index -> ENI id, on success
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None


def on_launch(ec2, autoscaling, settings: Settings, action: LifecycleAction, log: JsonLog) -> Outcome:
    """Give a launching node one attached, configured ENI per Multus subnet of its zone, then CONTINUE.

    On any failure the ENIs this invocation created are removed and the action is
    ABANDONed (the Auto Scaling group then replaces the instance); ENIs found from an
    earlier delivery are left to that delivery's outcome, DeleteOnTermination and
    the sweeper.
    """
    out = Outcome(action.instance_id)
    placement = instance_placement(ec2, action.instance_id)
    if placement is None or placement[1] in GONE_STATES:
        out.skipped = "instance gone"
        log.warning("instance is gone: nothing to attach", state=placement[1] if placement else None)
        return out
    zone = placement[0]
    log = log.bind(zone=zone)
    created: list[dict] = []
    try:
        subnet_ids = settings.subnets.get(zone)
        if not subnet_ids:
            raise MultusEniError(f"no Multus subnet configured for zone {zone} (MULTUS_SUBNETS has "
                                 f"{', '.join(sorted(settings.subnets)) or 'none'})")
        existing = node_enis(ec2, settings.cluster_name, action.instance_id)
        for offset, subnet_id in enumerate(subnet_ids):
            index = settings.first_device_index + offset
            eni = existing.get(index)
            if eni is not None:
                if eni["SubnetId"] != subnet_id:
                    raise MultusEniError(f"{eni['NetworkInterfaceId']} at device index {index} is in "
                                         f"{eni['SubnetId']}, configured subnet is {subnet_id}")
                log.info("multus eni found", eni_id=eni["NetworkInterfaceId"], device_index=index)
            else:
                eni = create_eni(ec2, settings, zone, subnet_id, action.instance_id, index,
                                 client_token(action.token, action.instance_id, index))
                created.append(eni)
                log.info("multus eni created", eni_id=eni["NetworkInterfaceId"], device_index=index,
                         subnet_id=subnet_id)
            if eni.get("SourceDestCheck", True):
                ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                                       SourceDestCheck={"Value": False})
                eni = {**eni, "SourceDestCheck": False}
            attachment_id = attach(ec2, eni, action.instance_id, index)
            keep_with_instance(ec2, eni, attachment_id)
            out.enis[index] = eni["NetworkInterfaceId"]
            log.info("multus eni attached", eni_id=eni["NetworkInterfaceId"], device_index=index,
                     attachment_id=attachment_id)
    except Exception as exc:  # noqa: BLE001 - every failure ends in cleanup and ABANDON
        out.error = f"{type(exc).__name__}: {exc}"
        out.enis = {}
        log.error("multus enis failed: cleaning up and abandoning", error=out.error,
                  created=[e["NetworkInterfaceId"] for e in created])
        if created:
            current = {e["NetworkInterfaceId"]: e for e in node_enis(ec2, settings.cluster_name,
                                                                     action.instance_id).values()}
            mine = [current.get(e["NetworkInterfaceId"], e) for e in created]
            out.deleted = remove_enis(ec2, mine, log, settings.detach_timeout_seconds, force=True)
        out.created = [e["NetworkInterfaceId"] for e in created]
        out.result = "ABANDON"
        out.completed = complete(autoscaling, action, "ABANDON", log)
        return out
    out.created = [e["NetworkInterfaceId"] for e in created]
    out.result = "CONTINUE"
    out.completed = complete(autoscaling, action, "CONTINUE", log)
    return out


def on_terminate(ec2, autoscaling, settings: Settings, action: LifecycleAction, log: JsonLog) -> Outcome:
    """Detach and delete a terminating node's Multus ENIs, then CONTINUE.

    An instance going back to a warm pool (Destination ``WarmPool``) keeps its ENIs:
    it is stopped, not terminated, and comes back with them attached.
    """
    out = Outcome(action.instance_id)
    if action.destination == "WarmPool":
        out.skipped = "returning to warm pool"
        log.info("instance returns to the warm pool: keeping its multus enis")
    else:
        try:
            enis = list(node_enis(ec2, settings.cluster_name, action.instance_id).values())
            out.deleted = remove_enis(ec2, enis, log, settings.detach_timeout_seconds)
        except Exception as exc:  # noqa: BLE001 - the instance terminates anyway; leftovers are swept
            out.error = f"{type(exc).__name__}: {exc}"
            log.error("removing multus enis failed: abandoning; the sweeper deletes what is left", error=out.error)
            out.result = "ABANDON"
            out.completed = complete(autoscaling, action, "ABANDON", log)
            return out
    out.result = "CONTINUE"
    out.completed = complete(autoscaling, action, "CONTINUE", log)
    return out


# --- the sweeper ---------------------------------------------------------------------------------------------------

def sweep(ec2, cluster_name: str, log: JsonLog) -> dict:
    """Delete available Multus ENIs of ``cluster_name`` whose instance is gone (not found, or terminating).

    An available ENI whose instance still runs is left alone: it may be between its
    creation and its attachment by a lifecycle invocation in progress.
    """
    paginator = ec2.get_paginator("describe_network_interfaces")
    candidates = [
        eni
        for page in paginator.paginate(Filters=[
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [cluster_name]},
            {"Name": f"tag:{TAG_MULTUS}", "Values": ["true"]},
            {"Name": "status", "Values": ["available"]},
        ])
        for eni in page["NetworkInterfaces"]
        if _tag(eni, TAG_INSTANCE)
    ]
    instance_ids = sorted({_tag(e, TAG_INSTANCE) for e in candidates})
    alive = _alive_instances(ec2, instance_ids)
    orphans = [e for e in candidates if _tag(e, TAG_INSTANCE) not in alive]
    deleted, failed = [], []
    for eni in orphans:
        try:
            ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
            deleted.append(eni["NetworkInterfaceId"])
            log.info("leaked multus eni deleted", eni_id=eni["NetworkInterfaceId"],
                     instance_id=_tag(eni, TAG_INSTANCE))
        except ec2.exceptions.ClientError as exc:  # attached meanwhile, or already gone: next sweep decides
            failed.append(eni["NetworkInterfaceId"])
            log.warning("leaked multus eni not deleted", eni_id=eni["NetworkInterfaceId"],
                        error=exc.response.get("Error", {}).get("Code"))
    summary = {"candidates": len(candidates), "deleted": deleted, "failed": failed,
               "kept": len(candidates) - len(orphans)}
    log.info("sweep done", **summary)
    return summary


def _alive_instances(ec2, instance_ids: Sequence[str]) -> set[str]:
    """Ids among ``instance_ids`` that EC2 knows in a state other than shutting-down/terminated."""
    alive: set[str] = set()
    for start in range(0, len(instance_ids), 200):
        chunk = list(instance_ids[start:start + 200])
        # A filter (not InstanceIds=) so that unknown ids are simply absent instead of failing the call.
        paginator = ec2.get_paginator("describe_instances")
        for page in paginator.paginate(Filters=[{"Name": "instance-id", "Values": chunk}]):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    if instance["State"]["Name"] not in GONE_STATES:
                        alive.add(instance["InstanceId"])
    return alive
