"""One small app with a MultusEniAttacher, synthesized once per module with the cdk-nag gate on."""

from __future__ import annotations

import json
import py_compile
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from eksnet import nag
from eksnet.environment import EksnetStack
from eksnet.multus.eni import LAMBDA_ASSET, MultusEniAttacher, NodegroupRef
from support.envs import deploy_env

CLUSTER = "mycluster"


def build_stack(app: cdk.App, *, with_nodegroup: bool = True) -> tuple[EksnetStack, MultusEniAttacher, dict]:
    """A dual-stack VPC whose two isolated subnet groups stand in for the Multus subnets, one ASG, one managed group."""
    stack = EksnetStack(app, "MultusEniTest", deploy_env=deploy_env(azs=("eu-central-1a", "eu-central-1b")))
    vpc = ec2.Vpc(stack, "Vpc", ip_protocol=ec2.IpProtocol.DUAL_STACK, max_azs=2, nat_gateways=1,
                  subnet_configuration=[
                      ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                      ec2.SubnetConfiguration(name="Nodes", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                              cidr_mask=22),
                      ec2.SubnetConfiguration(name="Multus1", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                              cidr_mask=24),
                      ec2.SubnetConfiguration(name="Multus2", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                              cidr_mask=24),
                  ])
    nag.acknowledge(vpc, "AwsSolutions-VPC7", "test VPC standing in for eksnet's VPC construct, which owns flow logs")
    sg = ec2.SecurityGroup(stack, "MultusSg", vpc=vpc, description="Multus")
    multus1 = vpc.select_subnets(subnet_group_name="Multus1").subnets
    multus2 = vpc.select_subnets(subnet_group_name="Multus2").subnets
    subnets = {s1.availability_zone: [s1, s2] for s1, s2 in zip(multus1, multus2, strict=True)}
    asg = autoscaling.AutoScalingGroup(
        stack, "Nodes", vpc=vpc, vpc_subnets=ec2.SubnetSelection(subnet_group_name="Nodes"),
        instance_type=ec2.InstanceType("m5.large"), machine_image=ec2.MachineImage.latest_amazon_linux2023(),
        min_capacity=1, max_capacity=3,
        block_devices=[autoscaling.BlockDevice(device_name="/dev/xvda", volume=autoscaling.BlockDeviceVolume.ebs(
            20, encrypted=True))],
    )
    for rule, why in (("AwsSolutions-AS3", "test node group: scaling notifications are the cluster stack's concern"),
                      ("AwsSolutions-EC26", "test node group: the root volume is encrypted through the block device"),
                      ("AwsSolutions-EC28", "test node group: detailed monitoring is not what this test is about"),
                      ("AwsSolutions-EC29", "test node group: ASG instances are replaced, not protected")):
        nag.acknowledge(asg, rule, why)
    attacher = MultusEniAttacher(
        stack, "MultusEnis", cluster_name=CLUSTER, subnets=subnets, security_group=sg,
        auto_scaling_groups=[asg], nodegroups=[NodegroupRef(CLUSTER, "managed-multus")] if with_nodegroup else (),
        ipv6_prefix_count=1,
    )
    return stack, attacher, {"vpc": vpc, "sg": sg, "asg": asg, "subnets": subnets}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("multus-eni-cdk-out")
    # Bytecode next to the handler, as importing it in tests leaves: the asset must leave it out.
    py_compile.compile(str(LAMBDA_ASSET / "multus_eni_ops.py"), doraise=True)
    app = cdk.App(outdir=str(outdir))
    stack, attacher, parts = build_stack(app)
    nag.add_checks(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    path = Path(outdir) / artifact.template_file
    return {"template": json.loads(path.read_text()), "path": path, "outdir": Path(outdir),
            "stack": stack, "attacher": attacher, **parts}


@pytest.fixture(scope="module")
def template(synthesized) -> dict:
    return synthesized["template"]
