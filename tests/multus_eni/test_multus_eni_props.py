"""MultusEniAttacher refuses bad props at synth time with a message that says what to change (construct only)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from eksnet.environment import EksnetStack
from eksnet.multus import eni as multus_eni
from eksnet.multus.eni import MultusEniAttacher, NodegroupRef
from support.envs import deploy_env
from support.paths import ROOT


@pytest.fixture(scope="module")
def parts():
    app = cdk.App()
    stack = EksnetStack(app, "Props", deploy_env=deploy_env(azs=("eu-central-1a", "eu-central-1b")))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
        ec2.SubnetConfiguration(name="Nodes", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        ec2.SubnetConfiguration(name="Multus", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])
    multus = vpc.select_subnets(subnet_group_name="Multus").subnets
    sg = ec2.SecurityGroup(stack, "Sg", vpc=vpc)
    return {"stack": stack, "vpc": vpc, "sg": sg, "a": multus[0], "b": multus[1], "n": [0]}


def _make(parts, **overrides):
    parts["n"][0] += 1
    kwargs = dict(cluster_name="c1", subnets={"eu-central-1a": [parts["a"]]}, security_group=parts["sg"],
                  nodegroups=[NodegroupRef("c1", "ng")])
    kwargs.update(overrides)
    return MultusEniAttacher(parts["stack"], f"A{parts['n'][0]}", **kwargs)


@pytest.mark.parametrize("overrides, message", [
    ({"cluster_name": "bad name!"}, "cluster_name must be an EKS cluster name"),
    ({"subnets": {}}, "subnets must map at least one availability zone"),
    ({"subnets": {"eu-central-1a": []}}, r"subnets\['eu-central-1a'\] is empty"),
    ({"nodegroups": ()}, "give auto_scaling_groups and/or nodegroups"),
    ({"ipv4_prefix_count": 17}, "ipv4_prefix_count must be between 0 and 16"),
    ({"ipv6_prefix_count": -1}, "ipv6_prefix_count must be between 0 and 16"),
    ({"first_device_index": 0}, "first_device_index must be between 1 and 31"),
    ({"heartbeat_timeout": cdk.Duration.seconds(10)}, r"heartbeat_timeout must be between 240 seconds \(the function's"),
    ({"heartbeat_timeout": cdk.Duration.hours(3)}, "and 2 hours, got 10800 s"),
])
def test_bad_props_are_refused_with_what_to_change(parts, overrides, message):
    with pytest.raises(ValueError, match=message):
        _make(parts, **overrides)


def test_a_subnet_listed_under_another_zone_is_refused(parts):
    with pytest.raises(ValueError, match="is in eu-central-1b, listed under eu-central-1a"):
        _make(parts, subnets={"eu-central-1a": [parts["b"]]})


def test_a_group_given_to_two_attachers_is_refused(parts):
    asg = autoscaling.AutoScalingGroup(parts["stack"], "Asg", vpc=parts["vpc"],
                                       instance_type=ec2.InstanceType("m5.large"),
                                       machine_image=ec2.MachineImage.latest_amazon_linux2023())
    _make(parts, auto_scaling_groups=[asg], nodegroups=())
    with pytest.raises(ValueError, match="already has Multus ENI hooks"):
        _make(parts, auto_scaling_groups=[asg], nodegroups=())


def test_the_asset_path_does_not_depend_on_the_working_directory():
    assert multus_eni.LAMBDA_ASSET == ROOT / "lambda" / "multus_eni"
    assert (multus_eni.LAMBDA_ASSET / "index.py").is_file()


def test_the_iam_conditions_use_the_tag_keys_the_lambda_writes():
    text = (ROOT / "lambda" / "multus_eni" / "multus_eni_ops.py").read_text()
    for const in ("TAG_MULTUS", "TAG_CLUSTER", "TAG_NO_MANAGE", "TAG_INSTANCE_ARN", "TAG_DEVICE_INDEX"):
        assert f'{const} = "{getattr(multus_eni, const)}"' in text


@pytest.mark.parametrize("minutes, retries, age", [(4, 0, 60), (5, 0, 120), (8, 1, 300), (12, 2, 540), (120, 2, 7020)])
def test_asynchronous_retries_and_event_age_follow_from_the_heartbeat(minutes, retries, age):
    attempts, max_age = multus_eni.async_limits(cdk.Duration.minutes(minutes))
    assert (attempts, max_age.to_seconds()) == (retries, age)
