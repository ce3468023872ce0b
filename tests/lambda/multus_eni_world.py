"""Helpers of the Multus ENI Lambda tests: the handlers loaded, a fresh VPC/node per test, EventBridge events.

The Lambda folders are asset roots, not packages (``lambda`` is a keyword): their
modules are loaded from their files under unique names, and their sibling imports
are served from ``sys.modules``, so no folder goes on ``sys.path`` (where its
``index`` would shadow another function's).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import boto3
from support.paths import ROOT

from demo import moto_ext

REGION = "eu-central-1"
LAMBDA_DIR = ROOT / "lambda"


def load_lambda_module(folder: str, module: str, alias: str, deps: tuple[str, ...] = ()) -> ModuleType:
    """Import ``lambda/<folder>/<module>.py`` as ``alias``; ``deps`` are sibling modules it imports by name."""
    if alias in sys.modules:
        return sys.modules[alias]
    for dep in deps:
        load_lambda_module(folder, dep, dep)
    path: Path = LAMBDA_DIR / folder / f"{module}.py"
    spec = importlib.util.spec_from_file_location(alias, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[alias] = mod
    spec.loader.exec_module(mod)
    return mod




class CallLog:
    """Operations a boto3 client called, with their API parameters (botocore's before-parameter-build event)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, model, params, **_):
        self.calls.append((model.name, params))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def of(self, name: str) -> list[dict]:
        return [p for n, p in self.calls if n == name]


def make_client(service: str, endpoint: str, calls: CallLog | None = None, config=None):
    client = boto3.client(service, region_name=REGION, endpoint_url=endpoint, config=config)
    if calls is not None:
        client.meta.events.register(f"before-parameter-build.{client.meta.service_model.service_name}.*", calls)
    return client


@dataclass
class Node:
    """One test's world: a dual-stack VPC, node and Multus subnets in two zones, an ASG with hooks, one instance."""

    ec2: object
    autoscaling: object
    vpc_id: str
    cluster: str
    multus_subnets: dict[str, list[str]]
    security_group_id: str
    group: str
    launch_hook: str
    terminate_hook: str
    instance_id: str
    zone: str
    calls: CallLog = field(default_factory=CallLog)

    def start(self, hook: str) -> str:
        return moto_ext.start_lifecycle_action(REGION, self.group, hook, self.instance_id)

    def results(self) -> list[str]:
        return moto_ext.lifecycle_actions(REGION).results_for(self.instance_id)

    @property
    def instance_arn(self) -> str:
        return f"arn:aws:ec2:{REGION}:{moto_ext.DEFAULT_ACCOUNT}:instance/{self.instance_id}"

    def our_enis(self) -> list[dict]:
        return self.ec2.describe_network_interfaces(Filters=[
            {"Name": "tag:cluster", "Values": [self.cluster]},
            {"Name": "tag:eksnet.io/instance-arn", "Values": [self.instance_arn]},
        ])["NetworkInterfaces"]


_IMAGES: dict[str, str] = {}


def _image_id(ec2) -> str:
    """Any image moto knows (listing them costs seconds: once per session)."""
    if "id" not in _IMAGES:
        _IMAGES["id"] = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    return _IMAGES["id"]


def build_node(endpoint: str, zones: tuple[str, ...] = ("a", "b"), subnets_per_zone: int = 2) -> Node:
    ec2 = make_client("ec2", endpoint)
    autoscaling = make_client("autoscaling", endpoint)
    suffix = uuid.uuid4().hex[:8]
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    vpc_id = vpc["VpcId"]
    v6 = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    v6_subnets = ipaddress.ip_network(v6).subnets(new_prefix=64)
    node_subnets, multus = {}, {}
    n = 0
    for z in zones:
        zone = f"{REGION}{z}"
        node_subnets[zone] = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"192.168.{n}.0/24", AvailabilityZone=zone,
                                               Ipv6CidrBlock=str(next(v6_subnets)))["Subnet"]["SubnetId"]
        n += 1
        multus[zone] = []
        for _ in range(subnets_per_zone):
            multus[zone].append(ec2.create_subnet(
                VpcId=vpc_id, CidrBlock=f"192.168.{96 + n}.0/24", AvailabilityZone=zone,
                Ipv6CidrBlock=str(next(v6_subnets)))["Subnet"]["SubnetId"])
            n += 1
    sg = ec2.create_security_group(GroupName=f"multus-{suffix}", Description="Multus", VpcId=vpc_id)["GroupId"]
    image = _image_id(ec2)
    lt = f"lt-{suffix}"
    ec2.create_launch_template(LaunchTemplateName=lt, LaunchTemplateData={"ImageId": image,
                                                                             "InstanceType": "m5.large"})
    group = f"nodes-{suffix}"
    first_zone = f"{REGION}{zones[0]}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateName": lt}, MinSize=1, MaxSize=1,
        DesiredCapacity=1, VPCZoneIdentifier=node_subnets[first_zone],
    )
    for hook, transition in (("multus-launch", "LAUNCHING"), ("multus-terminate", "TERMINATING")):
        autoscaling.put_lifecycle_hook(AutoScalingGroupName=group, LifecycleHookName=hook,
                                       LifecycleTransition=f"autoscaling:EC2_INSTANCE_{transition}",
                                       HeartbeatTimeout=300, DefaultResult="ABANDON")
    instance_id = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    return Node(ec2=ec2, autoscaling=autoscaling, vpc_id=vpc_id, cluster=f"cluster-{suffix}",
                multus_subnets=multus, security_group_id=sg, group=group, launch_hook="multus-launch",
                terminate_hook="multus-terminate", instance_id=instance_id, zone=first_zone)


def lifecycle_event(node: Node, token: str, *, launch: bool = True, origin: str | None = None,
                    destination: str | None = None, event_id: str | None = None) -> dict:
    """An event exactly as EventBridge delivers Auto Scaling lifecycle actions (see the EC2 Auto Scaling
    event reference: "Scale-out lifecycle action" / "Scale-in lifecycle action")."""
    kind = "launch" if launch else "terminate"
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": f"EC2 Instance-{kind} Lifecycle Action",
        "source": "aws.autoscaling",
        "account": "123456789012",
        "time": "2026-11-23T22:40:00Z",
        "region": REGION,
        "resources": [f"arn:aws:autoscaling:{REGION}:123456789012:autoScalingGroup:"
                      f"{uuid.uuid4()}:autoScalingGroupName/{node.group}"],
        "detail": {
            "LifecycleActionToken": token,
            "AutoScalingGroupName": node.group,
            "LifecycleHookName": node.launch_hook if launch else node.terminate_hook,
            "EC2InstanceId": node.instance_id,
            "LifecycleTransition": f"autoscaling:EC2_INSTANCE_{'LAUNCHING' if launch else 'TERMINATING'}",
            "NotificationMetadata": "",
            "Origin": origin or ("EC2" if launch else "AutoScalingGroup"),
            "Destination": destination or ("AutoScalingGroup" if launch else "EC2"),
        },
    }
