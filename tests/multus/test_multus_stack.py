"""The Multus scenario stack (apps/multus.py): synthesized once with the cdk-nag gate on, then read as a dict."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import jsonschema
import kubernetes_validate
import pytest
import yaml
from eksnet import nag
from eksnet.multus import NAD_CRD, NETWORKS_ANNOTATION
from support import cfn
from support.envs import deploy_env
from support.gates import cfn_lint

from apps import multus as scenario

MANIFEST_TYPE = "Custom::AWSCDK-EKS-KubernetesResource"
SEED = Path(__file__).parent / "data" / "walkthrough_multus.yaml"
PRUNE_LABEL = "aws.cdk.eks/prune-"


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("multus-cdkout")
    app = cdk.App(outdir=str(out))
    stack = scenario.MultusStack(app, scenario.MULTUS_STACK, deploy_env=deploy_env())
    nag.add_checks(app)  # an unacknowledged finding fails this synth
    app.synth()
    return {"stack": stack, "out": out, "template": json.loads((out / f"{stack.stack_name}.template.json").read_text())}


def manifests(template) -> dict[str, list[dict]]:
    """Logical id -> the objects that KubernetesManifest applies (prune labels removed)."""
    found = {}
    for lid, props in cfn.props(template, MANIFEST_TYPE):
        objects = json.loads(deploy_time(props["Manifest"]))
        for obj in objects:
            labels = obj["metadata"].get("labels", {})
            for key in [k for k in labels if k.startswith(PRUNE_LABEL)]:
                del labels[key]
            if not labels:
                obj["metadata"].pop("labels", None)
        found[lid] = objects
    return found


def deploy_time(value) -> str:
    """A manifest string; deploy-time values (``Fn::Join`` parts such as a subnet's IPv6 CIDR) become ``<token>``."""
    if isinstance(value, str):
        return value
    (sep, parts), = value.values()
    return sep.join(p if isinstance(p, str) else "<token>" for p in parts)


def by_kind(template, kind: str) -> tuple[str, dict]:
    hits = [(lid, o) for lid, objs in manifests(template).items() for o in objs if o["kind"] == kind]
    assert len(hits) == 1, f"expected one {kind}, found {len(hits)}"
    return hits[0]


def depends_on(template, lid: str) -> list[str]:
    return template["Resources"][lid].get("DependsOn", [])


def test_crd_is_applied_before_the_daemon_and_the_nad(synth):
    crd, _ = by_kind(synth["template"], "CustomResourceDefinition")
    daemon, _ = by_kind(synth["template"], "DaemonSet")
    nad, _ = by_kind(synth["template"], "NetworkAttachmentDefinition")
    assert crd in depends_on(synth["template"], daemon)
    assert crd in depends_on(synth["template"], nad)


def test_pod_is_applied_after_multus_and_its_network(synth):
    pod, _ = by_kind(synth["template"], "Pod")
    daemon, _ = by_kind(synth["template"], "DaemonSet")
    nad, _ = by_kind(synth["template"], "NetworkAttachmentDefinition")
    assert {daemon, nad} <= set(depends_on(synth["template"], pod))


def test_every_builtin_object_is_valid_kubernetes(synth):
    for objects in manifests(synth["template"]).values():
        for obj in objects:
            if obj["kind"] != "NetworkAttachmentDefinition":
                kubernetes_validate.validate(obj, "1.35.0", strict=True)


def test_nad_matches_the_crd_schema(synth):
    _, nad = by_kind(synth["template"], "NetworkAttachmentDefinition")
    jsonschema.validate(nad, NAD_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def test_nad_is_the_seeds_with_the_node_runtimes_ipam(synth):
    _, nad = by_kind(synth["template"], "NetworkAttachmentDefinition")
    seed = yaml.safe_load_all(SEED.read_text()).__next__()
    assert nad["metadata"]["name"] == seed["metadata"]["name"] == "ipvlan-private-a"
    config = json.loads(nad["spec"]["config"])
    assert (config["type"], config["master"], config["mode"]) == ("eksnet-ipvlan", "multus1", "l3")
    assert config["ipam"]["type"] == "eksnet-ipam" and config["ipam"]["pool"] == "multus1"


def test_pod_is_the_seeds_multus_pod(synth):
    _, pod = by_kind(synth["template"], "Pod")
    seed_pod = list(yaml.safe_load_all(SEED.read_text()))[1]
    assert pod["metadata"]["annotations"] == {NETWORKS_ANNOTATION: "ipvlan-private-a"}
    assert pod["spec"] == seed_pod["spec"]
    assert {k: v for k, v in pod["metadata"].items() if k != "namespace"} == seed_pod["metadata"]


def test_multus_images_are_the_pinned_build_in_the_stacks_region(synth):
    _, ds = by_kind(synth["template"], "DaemonSet")
    images = {c["image"] for c in ds["spec"]["template"]["spec"]["containers"] + ds["spec"]["template"]["spec"][
        "initContainers"]}
    assert images == {"602401143452.dkr.ecr.eu-central-1.amazonaws.com/eks/multus-cni:v4.1.4-eksbuild.3_thick"}


def test_node_user_data_sets_up_multus_interfaces_and_the_runtime(synth):
    (_, lt), = cfn.props(synth["template"], "AWS::EC2::LaunchTemplate")
    text = json.dumps(lt["LaunchTemplateData"]["UserData"])
    assert "application/node.eks.aws" in text and "text/x-shellscript" in text
    shell = synth["stack"].eks_cluster.node_user_data[scenario.NODEGROUP].render()
    assert "cat > /etc/eksnet/multus.json" in shell and "-m node_runtime.node.units" in shell
    assert "-m node_runtime.install --dest /opt/cni/bin" in shell


def test_multus_subnets_exist_in_every_zone(synth):
    tagged = [p for _, p in cfn.props(synth["template"], "AWS::EC2::Subnet") if cfn.tags(p).get("multus") == "true"]
    assert {p["AvailabilityZone"] for p in tagged} == set(deploy_env().azs)


def test_template_has_no_cfn_lint_errors(synth):
    findings = cfn_lint([synth["out"] / f"{synth['stack'].stack_name}.template.json"])
    assert not [f for f in findings if f.level == "Error"], "\n".join(map(str, findings))


def test_multus_enis_get_the_prefixes_the_pools_are_made_of(synth):
    attacher = synth["stack"].networking.attacher
    assert attacher is not None
    (_, function), = [(lid, p) for lid, p in cfn.props(synth["template"], "AWS::Lambda::Function")
                      if "EniAttacher" in lid and "Sweeper" not in lid]
    variables = function["Environment"]["Variables"]
    assert (variables["MULTUS_IPV4_PREFIX_COUNT"], variables["MULTUS_IPV6_PREFIX_COUNT"]) == ("1", "1")
    # the interface names the bootstrap gives (multus<device index>) start where the Lambda attaches
    assert variables["MULTUS_FIRST_DEVICE_INDEX"] == str(min(synth["stack"].networking.device_indexes))


def test_lifecycle_hooks_cover_the_multus_node_group(synth):
    hooks = [p for _, p in cfn.props(synth["template"], "AWS::AutoScaling::LifecycleHook")]
    assert {h["LifecycleTransition"] for h in hooks} == {"autoscaling:EC2_INSTANCE_LAUNCHING",
                                                         "autoscaling:EC2_INSTANCE_TERMINATING"}


def test_node_user_data_fits_ec2s_16_kib_limit(synth):
    shell = synth["stack"].eks_cluster.node_user_data[scenario.NODEGROUP].render().encode()
    base64_part = 4 * -(-len(shell) // 3)  # the MIME document carries the shell part base64-encoded
    assert base64_part + 2048 < 16 * 1024, "2 KiB left for the MIME headers and nodeadm's NodeConfig part"


def test_a_managed_node_group_is_described_by_its_bare_name_not_its_ref(synth):
    """CloudFormation's Ref of a node group is "<cluster>/<nodegroup>", which DescribeNodegroup refuses."""
    template = synth["template"]
    nodegroups = set(dict(cfn.props(template, "AWS::EKS::Nodegroup")))
    describes = [props["Create"] for _, props in cfn.props(template, "Custom::AWS")
                 if "describeNodegroup" in json.dumps(props["Create"])]
    assert describes, "the stack reads its managed group's Auto Scaling group name with describeNodegroup"
    for create in describes:
        parts = json.dumps(create)
        assert all(f'{{"Ref": "{ng}"}}' not in parts for ng in nodegroups)
        assert any(f'{{"Fn::GetAtt": ["{ng}", "NodegroupName"]}}' in parts for ng in nodegroups)
