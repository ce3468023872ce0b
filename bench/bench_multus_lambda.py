"""Multus ENI lifecycle Lambda: EC2 API calls per node launch/termination and handler time, against moto.

Ours: ``lambda/multus_eni`` (tags in the create call, the node's zone and ENIs from one
``DescribeInstances``, calls skipped when already in place; on termination the ENIs go
with the instance: one describe to make sure they carry delete-on-termination).
Reference: the seed's approach written as a script would do it per subnet (describe
the subnet, create the ENI, tag it after creation, attach, turn the source/dest check
off, set delete-on-termination), and on termination one describe, then detach, wait
and delete per ENI. Goal (issue 11): at most 4 EC2 calls per Multus ENI + 1 per launch,
and no sleep; ``time.sleep`` is counted while our handler runs. Both run against the
same moto server (with demo/moto_ext.py) on loopback, for the same nodes
(2 Multus subnets in the node's zone). API calls are counted client side with
botocore's ``before-call`` event; times are wall clock of the whole handler, so
they measure moto's cost per call more than AWS's, hence the call counts are the
figure that carries over to AWS.
"""

from __future__ import annotations

import importlib.util
import logging
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-central-1"
ZONE = f"{REGION}a"
NODES = 8
MULTUS_SUBNETS = 2


def _load_lambda():
    folder = ROOT / "lambda" / "multus_eni"
    mods = {}
    for name, alias in (("multus_eni_budget", "multus_eni_budget"), ("multus_eni_ops", "multus_eni_ops"),
                        ("multus_eni_reconcile", "multus_eni_reconcile"), ("index", "multus_eni_index")):
        if alias not in sys.modules:
            spec = importlib.util.spec_from_file_location(alias, folder / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[alias] = mod
            spec.loader.exec_module(mod)
        mods[name] = sys.modules[alias]
    return mods["multus_eni_ops"], mods["index"]


def _moto_ext():
    from demo import moto_ext  # moto: a dev dependency, imported when the benchmark runs

    return moto_ext


class _Counter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model, **_):
        self.calls[model.name] += 1

    def total(self) -> int:
        return sum(self.calls.values())


def _client(service: str, endpoint: str, counter: _Counter | None = None, config=None):
    c = boto3.client(service, region_name=REGION, endpoint_url=endpoint, config=config,
                     aws_access_key_id="bench", aws_secret_access_key="bench")
    if counter is not None:
        c.meta.events.register(f"before-call.{c.meta.service_model.service_name}.*", counter)
    return c


def _world(endpoint: str, instances: int) -> dict[str, Any]:
    ec2, asg = _client("ec2", endpoint), _client("autoscaling", endpoint)
    suffix = uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    nodes = ec2.create_subnet(VpcId=vpc, CidrBlock="192.168.0.0/20", AvailabilityZone=ZONE)["Subnet"]["SubnetId"]
    multus = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"192.168.{96 + 16 * i}.0/20",
                                AvailabilityZone=ZONE)["Subnet"]["SubnetId"] for i in range(MULTUS_SUBNETS)]
    sg = ec2.create_security_group(GroupName=f"multus-{suffix}", Description="Multus", VpcId=vpc)["GroupId"]
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName=f"lt-{suffix}",
                               LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"})
    group = f"bench-{suffix}"
    asg.create_auto_scaling_group(AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateName": f"lt-{suffix}"},
                                  MinSize=instances, MaxSize=instances, DesiredCapacity=instances,
                                  VPCZoneIdentifier=nodes)
    for hook, transition in (("launch", "LAUNCHING"), ("terminate", "TERMINATING")):
        asg.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName=hook,
                               LifecycleTransition=f"autoscaling:EC2_INSTANCE_{transition}",
                               DefaultResult="ABANDON" if transition == "LAUNCHING" else "CONTINUE")
    ids = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]]
    return {"group": group, "subnets": multus, "sg": sg, "instances": ids, "cluster": f"bench-{suffix}"}


def _event(group: str, hook: str, instance_id: str, token: str, launch: bool) -> dict:
    kind, transition = ("launch", "LAUNCHING") if launch else ("terminate", "TERMINATING")
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": f"EC2 Instance-{kind} Lifecycle Action",
        "source": "aws.autoscaling", "account": "123456789012", "time": "2026-11-23T23:00:00Z", "region": REGION,
        "resources": [f"arn:aws:autoscaling:{REGION}:123456789012:autoScalingGroup:x:autoScalingGroupName/{group}"],
        "detail": {"LifecycleActionToken": token, "AutoScalingGroupName": group, "LifecycleHookName": hook,
                   "EC2InstanceId": instance_id, "LifecycleTransition": f"autoscaling:EC2_INSTANCE_{transition}",
                   "NotificationMetadata": "", "Origin": "EC2" if launch else "AutoScalingGroup",
                   "Destination": "AutoScalingGroup" if launch else "EC2"},
    }


def _naive_launch(ec2, autoscaling, world: dict, detail: dict) -> None:
    """The seed's steps, scripted one subnet at a time."""
    iid = detail["EC2InstanceId"]
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"][
        "AvailabilityZone"]
    for index, subnet_id in enumerate(world["subnets"], start=1):
        ec2.describe_subnets(SubnetIds=[subnet_id])
        eni = ec2.create_network_interface(SubnetId=subnet_id, Groups=[world["sg"]])["NetworkInterface"][
            "NetworkInterfaceId"]
        ec2.create_tags(Resources=[eni], Tags=[
            {"Key": "multus", "Value": "true"}, {"Key": "Zone", "Value": zone},
            {"Key": "node.k8s.amazonaws.com/no_manage", "Value": "true"}, {"Key": "cluster", "Value": world["cluster"]},
            {"Key": "eksnet.io/instance-arn", "Value": f"arn:aws:ec2:{REGION}:123456789012:instance/{iid}"},
            {"Key": "eksnet.io/device-index", "Value": str(index)}])
        attachment = ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=index)[
            "AttachmentId"]
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, SourceDestCheck={"Value": False})
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eni, Attachment={
            "AttachmentId": attachment, "DeleteOnTermination": True})
    autoscaling.complete_lifecycle_action(AutoScalingGroupName=detail["AutoScalingGroupName"],
                                          LifecycleHookName=detail["LifecycleHookName"],
                                          LifecycleActionToken=detail["LifecycleActionToken"],
                                          LifecycleActionResult="CONTINUE")


def _naive_terminate(ec2, autoscaling, world: dict, detail: dict) -> None:
    enis = ec2.describe_network_interfaces(Filters=[
        {"Name": "attachment.instance-id", "Values": [detail["EC2InstanceId"]]},
        {"Name": "tag:multus", "Values": ["true"]}])["NetworkInterfaces"]
    for eni in enis:
        ec2.detach_network_interface(AttachmentId=eni["Attachment"]["AttachmentId"])
        ec2.get_waiter("network_interface_available").wait(NetworkInterfaceIds=[eni["NetworkInterfaceId"]],
                                                           WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    autoscaling.complete_lifecycle_action(AutoScalingGroupName=detail["AutoScalingGroupName"],
                                          LifecycleHookName=detail["LifecycleHookName"],
                                          LifecycleActionToken=detail["LifecycleActionToken"],
                                          LifecycleActionResult="CONTINUE")


def _measure(endpoint: str, moto_ext, runner, instances: list[str], world: dict, launch: bool) -> dict:
    ec2_calls, asg_calls, times = [], [], []
    hook = "launch" if launch else "terminate"
    for iid in instances:
        token = moto_ext.start_lifecycle_action(REGION, world["group"], hook, iid)
        event = _event(world["group"], hook, iid, token, launch)
        ec2_count, asg_count = _Counter(), _Counter()
        ec2 = _client("ec2", endpoint, ec2_count)
        autoscaling = _client("autoscaling", endpoint, asg_count)
        started = time.perf_counter()
        runner(ec2, autoscaling, event)
        times.append((time.perf_counter() - started) * 1000)
        ec2_calls.append(ec2_count.total())
        asg_calls.append(asg_count.total())
        if moto_ext.lifecycle_actions(REGION).results_for(iid)[-1:] != ["CONTINUE"]:
            raise RuntimeError(f"{iid}: the {hook} did not complete with CONTINUE")
    return {"ec2_calls": ec2_calls, "autoscaling_calls": asg_calls, "ms": [round(t, 2) for t in times]}


def run() -> dict:
    moto_ext = _moto_ext()
    ops, index = _load_lambda()
    server, endpoint = moto_ext.serve()
    try:
        world = _world(endpoint, 2 * NODES)
        settings = ops.Settings(cluster_name=world["cluster"], subnets={ZONE: world["subnets"]},
                                group_names=frozenset({world["group"]}), launch_hook="launch",
                                terminate_hook="terminate", security_group_ids=(world["sg"],))
        logging.getLogger("multus_eni").setLevel(logging.ERROR)
        quiet = ops.logger()
        sleeps = []

        def ours(ec2, autoscaling, event):
            real_sleep = time.sleep
            time.sleep = lambda seconds: (sleeps.append(seconds), real_sleep(seconds))
            try:
                out = index.handle(event, ec2, autoscaling, settings, quiet)
            finally:
                time.sleep = real_sleep
            if out.get("error"):
                raise RuntimeError(out["error"])

        def naive_launch(ec2, autoscaling, event):
            _naive_launch(ec2, autoscaling, world, event["detail"])

        def naive_terminate(ec2, autoscaling, event):
            _naive_terminate(ec2, autoscaling, world, event["detail"])

        mine, theirs = world["instances"][:NODES], world["instances"][NODES:]
        ours_launch = _measure(endpoint, moto_ext, ours, mine, world, True)
        ref_launch = _measure(endpoint, moto_ext, naive_launch, theirs, world, True)
        # A duplicated delivery of each launch event: what idempotency costs.
        dup = {"ec2_calls": []}
        for iid in mine:
            count = _Counter()
            token = moto_ext.start_lifecycle_action(REGION, world["group"], "launch", iid)
            ours(_client("ec2", endpoint, count), _client("autoscaling", endpoint),
                 _event(world["group"], "launch", iid, token, True))
            dup["ec2_calls"].append(count.total())
        ours_term = _measure(endpoint, moto_ext, ours, mine, world, False)
        ref_term = _measure(endpoint, moto_ext, naive_terminate, theirs, world, False)
    finally:
        server.stop()

    def med(xs):
        return statistics.median(xs)

    def ratio(a, b):
        return round(a / b, 3) if b else None

    metrics = [
        {"metric": f"EC2 calls per node launch ({MULTUS_SUBNETS} Multus subnets)", "unit": "calls",
         "ours": med(ours_launch["ec2_calls"]), "reference": med(ref_launch["ec2_calls"]),
         "ratio": ratio(med(ours_launch["ec2_calls"]), med(ref_launch["ec2_calls"])),
         "goal": 4 * MULTUS_SUBNETS + 1},
        {"metric": "sleeps in our handler (launch, duplicate, termination)", "unit": "sleeps",
         "ours": len(sleeps), "reference": None, "ratio": None},
        {"metric": "handler time per launch vs moto (median)", "unit": "ms",
         "ours": round(med(ours_launch["ms"]), 1), "reference": round(med(ref_launch["ms"]), 1),
         "ratio": ratio(med(ours_launch["ms"]), med(ref_launch["ms"]))},
        {"metric": "EC2 calls per duplicated launch event", "unit": "calls",
         "ours": med(dup["ec2_calls"]), "reference": None, "ratio": None},
        {"metric": f"EC2 calls per node termination ({MULTUS_SUBNETS} ENIs)", "unit": "calls",
         "ours": med(ours_term["ec2_calls"]), "reference": med(ref_term["ec2_calls"]),
         "ratio": ratio(med(ours_term["ec2_calls"]), med(ref_term["ec2_calls"]))},
        {"metric": "handler time per termination vs moto (median)", "unit": "ms",
         "ours": round(med(ours_term["ms"]), 1), "reference": round(med(ref_term["ms"]), 1),
         "ratio": ratio(med(ours_term["ms"]), med(ref_term["ms"]))},
    ]
    return {"metrics": metrics, "nodes": NODES, "multus_subnets": MULTUS_SUBNETS,
            "ours": {"launch": ours_launch, "terminate": ours_term, "duplicate_launch": dup},
            "reference": {"launch": ref_launch, "terminate": ref_term},
            "notes": "reference = the seed's steps scripted per subnet (describe subnet, create, tag after create, "
                     "attach, source/dest off, delete-on-termination); autoscaling calls: 1 per action on both sides; at "
                     "termination ours leaves the ENIs to go with the instance (delete-on-termination), the "
                     "reference detaches and deletes them while the node still runs"}
