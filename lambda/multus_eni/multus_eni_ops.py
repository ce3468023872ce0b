"""Multus ENIs of one node: plain functions over boto3 clients, shared by the lifecycle handler and the sweeper.

Nothing here reads the environment or the event: ``index.py`` and ``sweeper.py`` do,
then call these functions with clients, a ``Settings`` and a logger. Every function
is safe to run twice, and two deliveries of one event may run at once:

- the node's ENIs are seen in the one ``DescribeInstances`` that also gives its
  zone (attached ENIs with their subnet, description, source/dest check and
  delete-on-termination), so an event delivered again finds the work done and
  makes no other EC2 call;
- ``CreateNetworkInterface`` carries a client token derived from the lifecycle
  action and the device index, so a concurrent or repeated delivery gets the same
  ENI, never a second one; an attach refused because a twin already attached that
  ENI at that index is success.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Tag keys. The first four are the seed's (aws-samples Multus) tags; the VPC CNI leaves an ENI tagged
# node.k8s.amazonaws.com/no_manage=true alone. The eksnet.io/ keys say which instance and device index an ENI
# was made for: the sweeper reads them, and per-IP mode's IAM matches eksnet.io/instance-arn against
# ec2:SourceInstanceARN. The construct's IAM conditions use the same keys: keep eksnet.multus.eni in step.
TAG_MULTUS = "multus"
TAG_ZONE = "Zone"
TAG_CLUSTER = "cluster"
TAG_NO_MANAGE = "node.k8s.amazonaws.com/no_manage"
TAG_INSTANCE_ARN = "eksnet.io/instance-arn"
TAG_DEVICE_INDEX = "eksnet.io/device-index"

GONE_STATES = frozenset({"shutting-down", "terminated"})
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
CONTINUE = "CONTINUE"
ABANDON = "ABANDON"

LOG = logging.getLogger("multus_eni")


class ConfigError(ValueError):
    """The function's environment is wrong: say which variable and what it should hold."""


class MultusEniError(RuntimeError):
    """A node's Multus ENIs cannot be made as configured (not an AWS error)."""


class Log(logging.LoggerAdapter):
    """A logger with bound fields, merged with each call's ``extra`` (Lambda's JSON log format prints both as keys)."""

    def bind(self, **fields) -> Log:
        return Log(self.logger, {**self.extra, **fields})

    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs


def logger(**fields) -> Log:
    return Log(LOG, fields)


# --- settings ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """What the construct writes into the function's environment (see lambda/README.md)."""

    cluster_name: str
    subnets: Mapping[str, Sequence[str]]  # zone -> Multus subnet ids, in device order
    group_names: frozenset[str] = frozenset()  # the Auto Scaling groups whose hooks are ours
    launch_hook: str = "eksnet-multus-eni-launch"
    terminate_hook: str = "eksnet-multus-eni-terminate"
    security_group_ids: Sequence[str] = ()
    ipv4_prefix_count: int = 0  # delegated /28 prefixes per ENI
    ipv6_prefix_count: int = 0  # delegated /80 prefixes per ENI
    first_device_index: int = 1
    detach_timeout_seconds: int = 60

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
        try:
            groups = json.loads(env.get("MULTUS_GROUP_NAMES", "[]"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"MULTUS_GROUP_NAMES must be a JSON list of Auto Scaling group names: {exc}") from None
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise ConfigError("MULTUS_GROUP_NAMES must be a JSON list of Auto Scaling group names")
        hooks = {}
        for name, default in (("MULTUS_LAUNCH_HOOK", cls.launch_hook), ("MULTUS_TERMINATE_HOOK", cls.terminate_hook)):
            hooks[name] = env.get(name, "").strip() or default
        security_groups = [g.strip() for g in env.get("MULTUS_SECURITY_GROUP_IDS", "").split(",") if g.strip()]

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
            group_names=frozenset(groups),
            launch_hook=hooks["MULTUS_LAUNCH_HOOK"],
            terminate_hook=hooks["MULTUS_TERMINATE_HOOK"],
            security_group_ids=tuple(security_groups),
            ipv4_prefix_count=count("MULTUS_IPV4_PREFIX_COUNT", 0, 0, 16),
            ipv6_prefix_count=count("MULTUS_IPV6_PREFIX_COUNT", 0, 0, 16),
            first_device_index=count("MULTUS_FIRST_DEVICE_INDEX", 1, 1, 31),
            detach_timeout_seconds=count("MULTUS_DETACH_TIMEOUT_SECONDS", 60, 2, 600),
        )


# --- the lifecycle action ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LifecycleAction:
    """The ``detail`` of an EventBridge "EC2 Instance-launch/terminate Lifecycle Action" event.

    ``token`` is empty for an action found waiting by the deploy-time reconciliation, which
    has no event: it is then completed by instance id.
    """

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


def complete(autoscaling, action: LifecycleAction, result: str, log: Log) -> bool:
    """Complete the action with CONTINUE or ABANDON; False if it was no longer waiting (done by a duplicate, timed out)."""
    request = {"AutoScalingGroupName": action.group, "LifecycleHookName": action.hook,
               "LifecycleActionResult": result, "InstanceId": action.instance_id}
    if action.token:
        request["LifecycleActionToken"] = action.token
    try:
        autoscaling.complete_lifecycle_action(**request)
    except autoscaling.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "No active Lifecycle Action" in error.get("Message", ""):
            log.warning("lifecycle action no longer waiting", extra={"result": result, "error": error.get("Message")})
            return False
        raise
    log.info("lifecycle action completed", extra={"result": result})
    return True


# --- the node as EC2 sees it ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instance:
    """One ``DescribeInstances`` answer: where the node is and which interfaces it has, by device index."""

    instance_id: str
    arn: str
    zone: str
    state: str
    interfaces: Mapping[int, Mapping]  # device index -> InstanceNetworkInterface

    @property
    def gone(self) -> bool:
        return self.state in GONE_STATES


def describe_instance(ec2, instance_id: str) -> Instance | None:
    """The instance, or None when EC2 no longer knows it."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ec2.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
            return None
        raise
    for reservation in reservations:
        for found in reservation["Instances"]:
            arn = f"arn:{ec2.meta.partition}:ec2:{ec2.meta.region_name}:{reservation['OwnerId']}:instance/{instance_id}"
            interfaces = {i["Attachment"]["DeviceIndex"]: i for i in found.get("NetworkInterfaces", [])
                          if i.get("Attachment") and i["Attachment"].get("Status") in ("attaching", "attached")}
            return Instance(instance_id, arn, found["Placement"]["AvailabilityZone"], found["State"]["Name"],
                            interfaces)
    return None


def description(settings: Settings, instance_id: str, device_index: int) -> str:
    """Written on each ENI at creation; with its subnet it tells our ENI apart in ``DescribeInstances``."""
    return f"Multus interface {device_index} of {instance_id} ({settings.cluster_name})"


def eni_tags(settings: Settings, zone: str, instance_arn: str, device_index: int) -> dict[str, str]:
    return {
        TAG_MULTUS: "true", TAG_ZONE: zone, TAG_CLUSTER: settings.cluster_name, TAG_NO_MANAGE: "true",
        TAG_INSTANCE_ARN: instance_arn, TAG_DEVICE_INDEX: str(device_index),
    }


def tag(eni: Mapping, key: str) -> str | None:
    for t in eni.get("TagSet", []):
        if t["Key"] == key:
            return t["Value"]
    return None


def client_token(seed: str, instance_id: str, device_index: int) -> str:
    """CreateNetworkInterface's idempotency token (<= 64 ASCII): one per action (or reconciliation) and device index."""
    return hashlib.sha256(f"{seed}/{instance_id}/{device_index}".encode()).hexdigest()[:64]


def create_eni(ec2, settings: Settings, instance: Instance, subnet_id: str, device_index: int, token: str) -> dict:
    """Create one Multus ENI with every tag set in the same call (never after: the VPC CNI could claim it first)."""
    tags = eni_tags(settings, instance.zone, instance.arn, device_index)
    request = {
        "SubnetId": subnet_id,
        "Description": description(settings, instance.instance_id, device_index),
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


def attach(ec2, eni_id: str, instance_id: str, device_index: int) -> str:
    """Attach at ``device_index``; returns the attachment id.

    A concurrent duplicate may have attached the same ENI first: when EC2 refuses, an
    ENI found attached to this instance at this index is success, anything else is
    the error it is.
    """
    try:
        return ec2.attach_network_interface(
            NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=device_index)["AttachmentId"]
    except ec2.exceptions.ClientError:
        (now,) = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]
        attachment = now.get("Attachment") or {}
        if attachment.get("InstanceId") == instance_id and attachment.get("DeviceIndex") == device_index:
            return attachment["AttachmentId"]
        raise


def delete_on_termination(ec2, eni_id: str, attachment_id: str) -> None:
    """The ENI goes with its instance (AttachNetworkInterface cannot say so itself)."""
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni_id, Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True})


def source_dest_check_off(ec2, eni_id: str) -> None:
    """Pods' addresses are not the ENI's own: EC2 must forward them."""
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False})


@dataclass
class Progress:
    """What ``ensure_enis`` did so far: kept when it fails midway, so the caller knows what to clean up."""

    enis: dict[int, str] = field(default_factory=dict)  # device index -> ENI id, attached and configured
    created: list[str] = field(default_factory=list)


def ensure_enis(ec2, settings: Settings, instance: Instance, token_seed: str, log: Log, progress: Progress) -> None:
    """Give the node one attached, configured ENI per Multus subnet of its zone; what is already in place stays.

    EC2 calls: none for an ENI already attached and configured; create, source/dest
    check, attach and delete-on-termination for a new one (4 per ENI).
    """
    subnet_ids = settings.subnets.get(instance.zone)
    if not subnet_ids:
        raise MultusEniError(f"no Multus subnet configured for zone {instance.zone} (MULTUS_SUBNETS has "
                             f"{', '.join(sorted(settings.subnets)) or 'none'})")
    for offset, subnet_id in enumerate(subnet_ids):
        index = settings.first_device_index + offset
        there = instance.interfaces.get(index)
        if there is not None:
            ours = (there.get("SubnetId") == subnet_id
                    and there.get("Description") == description(settings, instance.instance_id, index))
            if not ours:
                raise MultusEniError(f"device index {index} of {instance.instance_id} holds "
                                     f"{there['NetworkInterfaceId']} (subnet {there.get('SubnetId')}), not its Multus "
                                     f"ENI in {subnet_id}: free the index or change first_device_index")
            eni_id = there["NetworkInterfaceId"]
            if there.get("SourceDestCheck", True):
                source_dest_check_off(ec2, eni_id)
            if not there["Attachment"].get("DeleteOnTermination"):
                delete_on_termination(ec2, eni_id, there["Attachment"]["AttachmentId"])
            progress.enis[index] = eni_id
            log.info("multus eni in place", extra={"eni_id": eni_id, "device_index": index})
            continue
        eni = create_eni(ec2, settings, instance, subnet_id, index, client_token(token_seed, instance.instance_id,
                                                                                 index))
        eni_id = eni["NetworkInterfaceId"]
        progress.created.append(eni_id)
        log.info("multus eni created", extra={"eni_id": eni_id, "device_index": index, "subnet_id": subnet_id})
        if eni.get("SourceDestCheck", True):
            source_dest_check_off(ec2, eni_id)
        attachment_id = attach(ec2, eni_id, instance.instance_id, index)
        delete_on_termination(ec2, eni_id, attachment_id)
        progress.enis[index] = eni_id
        log.info("multus eni attached", extra={"eni_id": eni_id, "device_index": index,
                                               "attachment_id": attachment_id})


def remove_enis(ec2, eni_ids: Sequence[str], log: Log, timeout_seconds: int, waiter_delay: int) -> list[str]:
    """Detach (forced) where attached, wait with boto3's ``network_interface_available`` waiter, delete.

    Used only to clean up after a launch that failed. ENIs already gone count as removed.
    """
    if not eni_ids:
        return []
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": list(eni_ids)}])["NetworkInterfaces"]
    detached = []
    for eni in found:
        attachment = eni.get("Attachment") or {}
        if attachment.get("AttachmentId") and attachment.get("Status") != "detached":
            ec2.detach_network_interface(AttachmentId=attachment["AttachmentId"], Force=True)
            detached.append(eni["NetworkInterfaceId"])
    if detached:
        ec2.get_waiter("network_interface_available").wait(
            NetworkInterfaceIds=detached,
            WaiterConfig={"Delay": waiter_delay, "MaxAttempts": max(1, timeout_seconds // waiter_delay)})
    removed = []
    for eni in found:
        try:
            ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
        except ec2.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "InvalidNetworkInterfaceID.NotFound":
                raise
        removed.append(eni["NetworkInterfaceId"])
        log.info("multus eni deleted", extra={"eni_id": eni["NetworkInterfaceId"]})
    gone = set(eni_ids) - {e["NetworkInterfaceId"] for e in found}
    return removed + sorted(gone)


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
    cleanup_error: str | None = None


def on_launch(ec2, autoscaling, settings: Settings, action: LifecycleAction, log: Log, *,
              waiter_delay: int = 2) -> Outcome:
    """Give a launching node its Multus ENIs, then CONTINUE; whatever stops it ends in ABANDON.

    On failure the ENIs this invocation created are removed (a failed cleanup is
    logged; the ENIs then go with the instance, which ABANDON terminates, or to the
    sweeper) and the action is ABANDONed, always: the group replaces the node.
    ENIs found from an earlier delivery are left to that delivery's outcome,
    delete-on-termination and the sweeper.
    """
    out = Outcome(action.instance_id)
    progress = Progress()
    try:
        instance = describe_instance(ec2, action.instance_id)
        if instance is None or instance.gone:
            out.skipped = "instance gone"
            log.warning("instance is gone: nothing to attach", extra={"state": instance.state if instance else None})
            return out
        log = log.bind(zone=instance.zone)
        ensure_enis(ec2, settings, instance, action.token or f"reconcile/{action.instance_id}", log, progress)
    except Exception as exc:  # noqa: BLE001 - every failure ends in cleanup and ABANDON
        out.error = f"{type(exc).__name__}: {exc}"
        out.created = list(progress.created)
        log.error("multus enis failed: cleaning up and abandoning",
                  extra={"error": out.error, "created_enis": out.created})
        try:
            out.deleted = remove_enis(ec2, progress.created, log, settings.detach_timeout_seconds, waiter_delay)
        except Exception as cleanup:  # noqa: BLE001 - the ABANDON below must still be sent
            out.cleanup_error = f"{type(cleanup).__name__}: {cleanup}"
            log.error("cleanup failed: the instance's termination and the sweeper remove what is left",
                      extra={"error": out.cleanup_error, "created_enis": out.created})
        out.result = ABANDON
        out.completed = complete(autoscaling, action, ABANDON, log)
        return out
    out.enis = dict(progress.enis)
    out.created = list(progress.created)
    out.result = CONTINUE
    out.completed = complete(autoscaling, action, CONTINUE, log)
    return out


def on_terminate(ec2, autoscaling, settings: Settings, action: LifecycleAction, log: Log) -> Outcome:
    """Let the node go with its ENIs: never detach or delete them, always CONTINUE.

    Pods keep their Multus network until the instance is gone; the ENIs carry
    delete-on-termination, so they go with it. The one EC2 call makes sure of that
    (an ENI attached by hand or by an older version may lack it); anything that fails
    is logged and left to the sweeper. An instance returning to a warm pool (stopped,
    not terminated) keeps its ENIs and needs no call at all.
    """
    out = Outcome(action.instance_id)
    if action.destination == "WarmPool":
        out.skipped = "returning to warm pool"
        log.info("instance returns to the warm pool: keeping its multus enis")
    else:
        try:
            instance = describe_instance(ec2, action.instance_id)
            for index, there in sorted((instance.interfaces if instance else {}).items()):
                if there.get("Description") != description(settings, action.instance_id, index):
                    continue
                out.enis[index] = there["NetworkInterfaceId"]
                if not there["Attachment"].get("DeleteOnTermination"):
                    delete_on_termination(ec2, there["NetworkInterfaceId"], there["Attachment"]["AttachmentId"])
                    log.info("multus eni marked delete-on-termination",
                             extra={"eni_id": there["NetworkInterfaceId"], "device_index": index})
        except Exception as exc:  # noqa: BLE001 - the instance terminates anyway; leftovers are swept
            out.error = f"{type(exc).__name__}: {exc}"
            log.error("checking the multus enis failed: continuing; the sweeper deletes what is left",
                      extra={"error": out.error})
    out.result = CONTINUE
    out.completed = complete(autoscaling, action, CONTINUE, log)
    return out


# --- the sweeper ---------------------------------------------------------------------------------------------------

def instance_id_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def sweep(ec2, cluster_name: str, log: Log) -> dict:
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
        if tag(eni, TAG_INSTANCE_ARN)
    ]
    instance_ids = sorted({instance_id_of(tag(e, TAG_INSTANCE_ARN)) for e in candidates})
    alive = _alive_instances(ec2, instance_ids)
    orphans = [e for e in candidates if instance_id_of(tag(e, TAG_INSTANCE_ARN)) not in alive]
    deleted, failed = [], []
    for eni in orphans:
        try:
            ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
            deleted.append(eni["NetworkInterfaceId"])
            log.info("leaked multus eni deleted", extra={"eni_id": eni["NetworkInterfaceId"],
                                                         "instance_arn": tag(eni, TAG_INSTANCE_ARN)})
        except ec2.exceptions.ClientError as exc:  # attached meanwhile, or already gone: next sweep decides
            failed.append(eni["NetworkInterfaceId"])
            log.warning("leaked multus eni not deleted", extra={"eni_id": eni["NetworkInterfaceId"],
                                                                "error": exc.response.get("Error", {}).get("Code")})
    summary = {"candidates": len(candidates), "deleted": deleted, "failed": failed,
               "kept": len(candidates) - len(orphans)}
    log.info("sweep done", extra=summary)
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
