"""The demo's AWS: moto's server on 127.0.0.1 as EC2 and Auto Scaling, filled from the template's values.

moto's CloudFormation cannot deploy these templates (it lacks ``AWS::EC2::VPCCidrBlock`` and subnet
``Ipv6CidrBlocks``), so ``World.build`` creates the resources the Multus flow touches from the template's own
properties: the VPC and its IPv6 block, every subnet (CIDRs, zones, tags), the pod ranges' CIDR reservations, the
Multus security group, the node group's launch template (its user data) and Auto Scaling group (named as EKS names
them), and the lifecycle hooks, before any instance launches. moto's gaps are filled by the project's one
extension module, ``demo/moto_ext.py``.

The lifecycle Lambda runs in this process, loaded from the function's asset in the cloud assembly, with the
function's environment from the template (tokens resolved to moto's ids) plus ``AWS_ENDPOINT_URL``; every EC2 call
it makes is counted (botocore ``before-call``), so the demo reports EC2 calls per node launch.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import boto3

from .stack import StackView, TemplateError

ROOT = Path(__file__).resolve().parents[1]
ASG_ATTRIBUTE = "nodegroup.resources.autoScalingGroups.0.name"


def start_moto():
    """moto's server on loopback with the project's extensions (``moto_ext.py``)."""
    from . import moto_ext

    server, endpoint = moto_ext.serve()
    return server, endpoint, moto_ext


class _Records(logging.Handler):
    """What the handler logs during one invocation (Lambda sends it to CloudWatch; the demo prints it short)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("botocore", "boto3", "urllib3")):
            self.messages.append(record.getMessage())


def matches(pattern, value) -> bool:
    """EventBridge's matching for the pattern shapes the stack uses (lists of values, nested objects)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        return value in pattern
    return pattern == value


@dataclass
class Group:
    name: str
    zone: str
    subnet_id: str
    hooks: dict[str, str]  # transition (LAUNCHING/TERMINATING) -> hook name
    desired: int
    launch_template: str


@dataclass
class World:
    view: StackView
    endpoint: str
    moto_ext: object
    region: str
    account: str
    prefix: str
    ec2: object = None
    autoscaling: object = None
    group: Group | None = None
    function_logical: str = ""
    function_env: dict[str, str] = field(default_factory=dict)
    rule_pattern: dict = field(default_factory=dict)
    handler: object = None
    ec2_calls: Counter = field(default_factory=Counter)
    handler_log: list[str] = field(default_factory=list)
    size: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        session = boto3.session.Session(region_name=self.region)
        self.ec2 = session.client("ec2", endpoint_url=self.endpoint)
        self.autoscaling = session.client("autoscaling", endpoint_url=self.endpoint)

    # --- the resources ---------------------------------------------------------------------------------------------

    def build(self, log) -> None:
        v = self.view
        vpc_logical, vpc_props, ipv6 = v.vpc()
        vpc = self.ec2.create_vpc(CidrBlock=vpc_props["CidrBlock"], AmazonProvidedIpv6CidrBlock=ipv6)["Vpc"]
        vpc_id = vpc["VpcId"]
        v.physical[vpc_logical] = vpc_id
        blocks = self.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0].get("Ipv6CidrBlockAssociationSet", [])
        v.attributes[(vpc_logical, "Ipv6CidrBlocks")] = [b["Ipv6CidrBlock"] for b in blocks]
        v.attributes[(vpc_logical, "CidrBlock")] = vpc_props["CidrBlock"]
        log(f"VPC {vpc_id}: {vpc_props['CidrBlock']} + {', '.join(v.attributes[(vpc_logical, 'Ipv6CidrBlocks')])}")

        multus = []
        for s in v.subnets():
            args = {"VpcId": vpc_id, "CidrBlock": s.cidr, "AvailabilityZone": s.zone}
            if s.ipv6_cidr is not None:
                args["Ipv6CidrBlock"] = v.resolve(s.ipv6_cidr, f"subnet {s.logical_id}")
            if s.tags:
                args["TagSpecifications"] = [{"ResourceType": "subnet",
                                              "Tags": [{"Key": k, "Value": x} for k, x in s.tags.items()]}]
            subnet = self.ec2.create_subnet(**args)["Subnet"]
            v.physical[s.logical_id] = subnet["SubnetId"]
            v.attributes[(s.logical_id, "Ipv6CidrBlocks")] = [args["Ipv6CidrBlock"]] if "Ipv6CidrBlock" in args else []
            if s.multus:
                multus.append(f"{s.zone} {subnet['SubnetId']} {s.cidr} {args.get('Ipv6CidrBlock', '')}")
        log(f"{len(v.subnets())} subnets, Multus ({len(multus)}): " + "; ".join(multus))

        reservations, skipped = [], []
        for p in v.cidr_reservations().values():
            cidr = p["Cidr"]
            if ":" in cidr:
                # moto 5.2.5 walks every address of a reservation: an IPv6 /72 never ends. Not created, and said.
                skipped.append(cidr)
                continue
            self.ec2.create_subnet_cidr_reservation(**p)
            reservations.append(cidr)
        log(f"{len(reservations)} subnet CIDR reservations (pod ranges): {', '.join(reservations)}")
        if skipped:
            log(f"not created in moto: {len(skipped)} IPv6 reservations ({', '.join(skipped)}): moto enumerates "
                "each address of a reservation, which never ends for an IPv6 /72")

        sg_logical, sg = v.multus_security_group()
        group_id = self.ec2.create_security_group(
            GroupName=f"{self.prefix}-{sg_logical}", Description=sg["GroupDescription"], VpcId=vpc_id,
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": k, "Value": x} for k, x in v.tags(sg).items()]}])["GroupId"]
        v.physical[sg_logical] = group_id
        v.attributes[(sg_logical, "GroupId")] = group_id
        log(f"Multus security group {group_id} ({sg['GroupDescription']})")

        self._build_group(log)
        self._load_function(log)

    def _build_group(self, log) -> None:
        v = self.view
        ng_logical, ng = v.nodegroup()
        lt_logical, lt = v.launch_template(ng)
        data = lt["LaunchTemplateData"]
        user_data = v.resolve(data["UserData"], f"{lt_logical}.UserData")
        subnet_ids = [v.resolve(s, f"{ng_logical}.Subnets") for s in ng["Subnets"]]
        subnets = self.ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
        # One zone: the bridge stands for one Multus subnet, so both nodes must sit in the same zone.
        first = sorted(subnets, key=lambda s: s["AvailabilityZone"])[0]
        lt_name = f"{self.prefix}-{lt_logical}"
        image = "ami-12c6146b"  # any id: moto does not check it against its image list
        self.ec2.create_launch_template(LaunchTemplateName=lt_name, LaunchTemplateData={
            "ImageId": image, "InstanceType": ng["InstanceTypes"][0], "UserData": user_data,
            "MetadataOptions": data.get("MetadataOptions", {})})
        # The name EKS gives a managed node group's Auto Scaling group.
        name = f"eks-{ng['NodegroupName']}-{uuid.uuid4()}"
        scaling = ng["ScalingConfig"]
        if scaling.get("DesiredSize", 0):
            log(f"the node group starts with {scaling['DesiredSize']} nodes: in AWS they could launch before the "
                "lifecycle hooks exist; the demo creates the hooks first anyway")
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": lt_name, "Version": "$Latest"},
            MinSize=0, MaxSize=scaling["MaxSize"], DesiredCapacity=0, VPCZoneIdentifier=first["SubnetId"])
        # Custom resources that look the group's name up at deploy time answer with it.
        for k, r in v.resources.items():
            if r["Type"] == "Custom::AWS" and ASG_ATTRIBUTE in json.dumps(r.get("Properties", {})):
                v.attributes[(k, ASG_ATTRIBUTE)] = name
        hooks = {}
        for k, p in v.lifecycle_hooks().items():
            group = v.resolve(p["AutoScalingGroupName"], k)
            if group != name:
                continue
            self.autoscaling.put_lifecycle_hook(
                AutoScalingGroupName=name, LifecycleHookName=p["LifecycleHookName"],
                LifecycleTransition=p["LifecycleTransition"], HeartbeatTimeout=p.get("HeartbeatTimeout", 3600),
                DefaultResult=p.get("DefaultResult", "ABANDON"))
            hooks[p["LifecycleTransition"].rsplit("_", 1)[1]] = p["LifecycleHookName"]
        if set(hooks) != {"LAUNCHING", "TERMINATING"}:
            raise TemplateError(f"the node group's Auto Scaling group needs a launch and a terminate hook, "
                                f"the template gives {hooks}")
        self.size = v.nodegroup_size(ng_logical, ng)
        self.group = Group(name, first["AvailabilityZone"], first["SubnetId"], hooks, self.size["desiredSize"],
                           lt_name)
        log(f"launch template {lt_name} ({ng['InstanceTypes'][0]}, the stack's user data), Auto Scaling group {name} "
            f"in {first['AvailabilityZone']}, hooks {hooks['LAUNCHING']} / {hooks['TERMINATING']} "
            f"(before any instance); size {ng['ScalingConfig'].get('DesiredSize', 0)} in the template, then "
            f"min {self.size['minSize']} / desired {self.size['desiredSize']} / max {self.size['maxSize']}"
            + (f" from {self.size['set_by']} (after the hooks)" if "set_by" in self.size else ""))

    def _load_function(self, log) -> None:
        v = self.view
        rule_logical, rule = v.lifecycle_rule()
        self.rule_pattern = v.resolve(rule["EventPattern"], rule_logical)
        self.function_logical, fn = v.function_of_rule(rule)
        variables = fn.get("Environment", {}).get("Variables", {})
        self.function_env = {k: str(v.resolve(x, f"{self.function_logical}.Environment.{k}"))
                             for k, x in variables.items()}
        code = v.function_code_dir(fn)
        module, _, func = fn["Handler"].rpartition(".")
        sys.path.insert(0, str(code))
        try:
            mod = importlib.import_module(module)
        finally:
            sys.path.remove(str(code))
        self.handler = getattr(mod, func)
        session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
        session.events.register("before-call.ec2", self._count)
        log(f"Lambda {self.function_logical} ({fn['Handler']}, {fn['Runtime']} in the template, this Python here) "
            f"from {code.relative_to(v.assembly.parent)}, environment: "
            + ", ".join(f"{k}={x}" for k, x in self.function_env.items()))

    def _count(self, model, **_):
        self.ec2_calls[model.name] += 1

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def launch_instances(self) -> list[str]:
        g = self.group
        self.autoscaling.update_auto_scaling_group(AutoScalingGroupName=g.name, MinSize=0, DesiredCapacity=g.desired,
                                                   MaxSize=self.size["maxSize"])
        instances = self.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[g.name])["AutoScalingGroups"][0]["Instances"]
        return sorted(i["InstanceId"] for i in instances)

    def event(self, instance_id: str, token: str, transition: str) -> dict:
        """The event EventBridge delivers for a lifecycle action (EC2 Auto Scaling event reference)."""
        launch = transition == "LAUNCHING"
        kind = "launch" if launch else "terminate"
        return {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": f"EC2 Instance-{kind} Lifecycle Action",
            "source": "aws.autoscaling", "account": self.account,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": self.region,
            "resources": [f"arn:aws:autoscaling:{self.region}:{self.account}:autoScalingGroup:{uuid.uuid4()}:"
                          f"autoScalingGroupName/{self.group.name}"],
            "detail": {
                "LifecycleActionToken": token, "AutoScalingGroupName": self.group.name,
                "LifecycleHookName": self.group.hooks[transition], "EC2InstanceId": instance_id,
                "LifecycleTransition": f"autoscaling:EC2_INSTANCE_{transition}", "NotificationMetadata": "",
                "Origin": "EC2" if launch else "AutoScalingGroup", "Destination": "AutoScalingGroup" if launch else "EC2",
            },
        }

    @contextmanager
    def _lambda_env(self):
        saved = dict(os.environ)
        os.environ.update(self.function_env)
        os.environ.update({"AWS_ENDPOINT_URL": self.endpoint, "AWS_REGION": self.region,
                           "AWS_DEFAULT_REGION": self.region, "AWS_LAMBDA_FUNCTION_NAME": self.function_logical})
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def lifecycle(self, instance_id: str, transition: str) -> tuple[dict, int, str]:
        """Open the lifecycle action (what Auto Scaling does at Pending:Wait / Terminating:Wait), deliver its event
        to the handler if the stack's rule matches it; returns (outcome, EC2 calls, recorded result)."""
        g = self.group
        token = self.moto_ext.start_lifecycle_action(self.region, g.name, g.hooks[transition], instance_id,
                                                     account=self.account)
        event = self.event(instance_id, token, transition)
        if not matches(self.rule_pattern, event):
            raise RuntimeError(f"the stack's lifecycle rule does not match the {transition} event of {g.name}")
        before = sum(self.ec2_calls.values())
        context = SimpleNamespace(aws_request_id=str(uuid.uuid4()), function_name=self.function_logical,
                                  get_remaining_time_in_millis=lambda: 180_000)
        logs, records = io.StringIO(), _Records()
        root = logging.getLogger()
        root.addHandler(records)
        level = root.level
        root.setLevel(logging.INFO)
        try:
            with self._lambda_env(), redirect_stdout(logs):
                outcome = self.handler(event, context)
        finally:
            root.removeHandler(records)
            root.setLevel(level)
        # The handler logs through the logging module (the platform's JSON format) or as JSON lines on stdout.
        self.handler_log = records.messages + [json.loads(line).get("message", line)
                                               for line in logs.getvalue().splitlines() if line.startswith("{")]
        results = self.moto_ext.lifecycle_actions(self.region, self.account).results_for(instance_id)
        return outcome, sum(self.ec2_calls.values()) - before, results[-1] if results else ""

    def terminate(self, instance_id: str) -> None:
        """Scale-in of one instance: what Auto Scaling does once the terminate action is complete."""
        self.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance_id,
                                                                  ShouldDecrementDesiredCapacity=True)

    # --- what is left ----------------------------------------------------------------------------------------------

    def cluster_enis(self) -> list[dict]:
        cluster = self.function_env.get("CLUSTER_NAME", "")
        return self.ec2.describe_network_interfaces(
            Filters=[{"Name": "tag:cluster", "Values": [cluster]}])["NetworkInterfaces"]

    def instance_states(self, ids: list[str]) -> dict[str, str]:
        out = {}
        for r in self.ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for i in r["Instances"]:
                out[i["InstanceId"]] = i["State"]["Name"]
        return out
