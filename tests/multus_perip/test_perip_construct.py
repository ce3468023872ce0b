"""Per-IP mode in the template, through ``MultusNetworking``: explicit reservations of each zone's range,
the node role's EC2 right bound to the node's own Multus ENIs, the IMDS hop closed to pods, and a node
config whose ranges the node setup narrows to its own subnet. One app, synthesized once for the module
with the cdk-nag gate on, then linted by cfn-lint in its own region."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_eks_v2 as eks
from eksnet import nag
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import EksnetStack
from eksnet.multus import AddressMode, MultusInterface, MultusNetworking, PerIpSettings
from eksnet.multus.perip import ASSIGN_ACTIONS, INSTANCE_ARN_TAG, PER_IP_NODE_PACKAGES, PerIpRanges, plan_ranges
from eksnet.vpc import EksVpc
from support.cfn import cidr_reservations, props, resources
from support.envs import deploy_env
from support.gates import cfn_lint
from support.paths import ROOT

from node_runtime.ipamd.config import DaemonConfig
from node_runtime.perip import ranges_in_subnet

ZONES = ("eu-central-1a", "eu-central-1b")
# Two interfaces x two zones split 192.168.192.0/19 in /21s: interface 2 has 192.168.200.0/21 (zone a) and
# 192.168.216.0/21 (zone b), whose upper halves are the prefix reservations.
RANGES = {"eu-central-1a": "192.168.200.32/27", "eu-central-1b": "192.168.216.32/27"}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("perip-cdk-out")
    app = cdk.App(outdir=str(outdir))
    stack = EksnetStack(app, "PerIpTest", deploy_env=deploy_env(azs=ZONES))
    vpc = EksVpc(stack, "EksVpc", ipv4_cidr="192.168.0.0/16", cluster_names=["perip"])
    cluster = EksCluster(stack, "EksCluster", vpc=vpc, cluster_name="perip", ip_family=eks.IpFamily.IP_V4,
                         nodegroups=[NodeGroupSpec("multus", instance_types=("t3.large",)),
                                     NodeGroupSpec("other", instance_types=("t3.large",))])
    networking = MultusNetworking(
        stack, "Multus", vpc=vpc, cluster=cluster, node_groups=["multus"],
        interfaces=[MultusInterface(), MultusInterface(mode=AddressMode.PER_IP, per_ip=PerIpSettings(ranges=RANGES))])
    nag.add_checks(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    path = Path(outdir) / assembly.get_stack_artifact(stack.artifact_id).template_file
    return {"template": json.loads(path.read_text()), "path": path, "networking": networking,
            "subnets": {z: stack.resolve(networking.subnets[2][z].subnet_id) for z in ZONES}}


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized["template"]


def test_each_zone_range_is_an_explicit_reservation_of_its_multus_subnet(synthesized, template):
    # eu-central-1's CloudFormation lacks the type: eksnet.cidr_reservation makes them through EC2's API there.
    explicit = {r["Cidr"]: r["SubnetId"] for r in cidr_reservations(template) if r["ReservationType"] == "explicit"}
    assert explicit == {RANGES[z]: synthesized["subnets"][z] for z in ZONES}


def _statements(template):
    for lid, policy in resources(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            yield lid, policy, statement, actions


def test_every_grant_of_the_assign_actions_is_bound_to_the_callers_own_enis(template):
    granting = [(lid, policy, s) for lid, policy, s, actions in _statements(template)
                if set(actions) & set(ASSIGN_ACTIONS) or "ec2:*" in actions]
    assert len(granting) == 1, granting
    lid, policy, statement = granting[0]
    assert sorted(statement["Action"]) == sorted(ASSIGN_ACTIONS)
    assert statement["Effect"] == "Allow"
    assert statement["Condition"] == {
        "StringEquals": {"aws:ResourceTag/eksnet.io/instance-arn": "${ec2:SourceInstanceARN}"}}
    resource = json.dumps(statement["Resource"])
    assert ":network-interface/*" in resource and '"*"' not in resource
    # On the node role, the one every node of the cluster assumes.
    roles = policy["Properties"]["Roles"]
    node_roles = {lid for lid, r in resources(template, "AWS::IAM::Role").items()
                  if "ec2.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])}
    assert roles and {r["Ref"] for r in roles} <= node_roles


def test_the_eni_lambda_tags_each_eni_with_the_arn_the_bound_compares():
    """SEAMS 3: the Multus ENI Lambda writes the tag; the bound above matches it to ec2:SourceInstanceARN."""
    spec = importlib.util.spec_from_file_location("perip_multus_eni_ops", ROOT / "lambda/multus_eni/multus_eni_ops.py")
    ops = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(ops)
    arn = "arn:aws:ec2:eu-central-1:123456789012:instance/i-0abc"
    tags = ops.eni_tags(ops.Settings(cluster_name="perip", subnets={}), "eu-central-1a", arn, 2)
    assert tags[INSTANCE_ARN_TAG] == arn


def test_pods_cannot_reach_the_node_role_through_imds(template):
    launch_templates = list(props(template, "AWS::EC2::LaunchTemplate"))
    assert len(launch_templates) == 2  # the role is shared: both groups close the hop
    for _, p in launch_templates:
        options = p["LaunchTemplateData"]["MetadataOptions"]
        assert options["HttpTokens"] == "required"
        assert options["HttpPutResponseHopLimit"] == 1


def test_nodes_with_a_per_ip_interface_install_botocore_with_dnf_on_a_line_of_its_own(template):
    user_data = {lid: json.dumps(p["LaunchTemplateData"]["UserData"])
                 for lid, p in props(template, "AWS::EC2::LaunchTemplate")}
    (multus,) = [u for lid, u in user_data.items() if "LaunchTemplatemultus" in lid]
    (other,) = [u for lid, u in user_data.items() if "LaunchTemplateother" in lid]
    assert f"\\n{PER_IP_NODE_PACKAGES}\\n" in multus
    assert multus.index(PER_IP_NODE_PACKAGES) < multus.index("multus.json")  # before the node setup runs
    assert PER_IP_NODE_PACKAGES not in other


def test_the_template_passes_cfn_lint_in_its_region(synthesized):
    assert [str(f) for f in cfn_lint([synthesized["path"]]) if f.level == "Error"] == []


def test_the_nad_of_a_per_ip_interface_names_the_pool_of_its_range(synthesized):
    networking = synthesized["networking"]
    ipam = networking.nad("ipvlan-perip", interface=2).cni_config()["ipam"]
    assert ipam["type"] == "eksnet-ipam" and ipam["pool"] == "multus2" == networking.per_ip[2].pool


def test_the_node_keeps_the_range_of_its_own_subnet_and_the_daemon_accepts_it(synthesized):
    node_config = json.loads(json.dumps(synthesized["networking"].node_config))  # as the node reads it
    (entry,) = [i for i in node_config["interfaces"] if i["mode"] == "per-ip"]
    assert entry["pool"] == "multus2" and entry["deviceIndex"] == 2
    ranges = ranges_in_subnet(entry["ranges"], ["192.168.216.0/21"])  # a node in zone b (IMDS says so)
    assert ranges == [[{"subnet": "192.168.216.0/21", "rangeStart": "192.168.216.32", "rangeEnd": "192.168.216.63"}]]
    pool = {"mode": "per-ip", "eniId": "eni-0123456789abcdef0", "ranges": ranges}
    assert DaemonConfig(pools={"multus2": pool}).validate().pools["multus2"]["eniId"] == "eni-0123456789abcdef0"
    assert ranges_in_subnet(entry["ranges"], ["10.0.0.0/24"]) == []


# -- bad input fails at synth, saying what to change ---------------------------------------------------

SUBNETS = {"a": ipaddress.IPv4Network("192.168.192.0/20"), "b": ipaddress.IPv4Network("192.168.208.0/20")}
PREFIX = {"a": [ipaddress.IPv4Network("192.168.200.0/21")], "b": [ipaddress.IPv4Network("192.168.216.0/21")]}


@pytest.mark.parametrize(("ranges", "message"), [
    ({"a": "10.0.0.0/27", "b": "192.168.208.32/27"}, "outside its Multus subnet 192.168.192.0/20"),
    ({"a": "192.168.192.0/27", "b": "192.168.208.32/27"}, "which AWS reserves"),
    ({"a": "192.168.200.0/27", "b": "192.168.208.32/27"}, "overlaps the prefix reservation 192.168.200.0/21"),
    ({"a": "192.168.192.32/27"}, "no range for zone b"),
    ({"a": "192.168.192.32/27", "b": "192.168.208.32/27", "c": "192.168.224.0/27"}, "zones without a Multus subnet"),
    ({"a": "192.168.192.33/27", "b": "192.168.208.32/27"}, "has host bits set"),
])
def test_bad_ranges_are_refused(ranges, message):
    with pytest.raises(ValueError, match=message):
        plan_ranges(PerIpRanges(ipv4=ranges), SUBNETS, PREFIX)


def test_ranges_overlapping_each_other_are_refused():
    other = [ipaddress.IPv4Network("192.168.192.48/28")]
    with pytest.raises(ValueError, match="overlaps range 192.168.192.48/28 of another interface"):
        plan_ranges(PerIpRanges(ipv4={"a": "192.168.192.32/27", "b": "192.168.208.32/27"}), SUBNETS, PREFIX, other)


def test_a_block_within_each_subnet_avoids_the_prefix_reservation():
    planned = plan_ranges(PerIpRanges(prefix_length=26), SUBNETS, PREFIX)
    assert planned == {"a": ipaddress.IPv4Network("192.168.199.192/26"),
                       "b": ipaddress.IPv4Network("192.168.215.192/26")}
    with pytest.raises(ValueError, match="exactly one of"):
        PerIpRanges()
