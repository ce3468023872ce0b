"""The Calico construct in the seed's Calico scenario (apps/calico.py), read from one synthesized assembly
(the IPv4 cluster stack and the Calico stack, cdk-nag on)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from eksnet import calico, nag
from eksnet.policy_eval import Cluster, Pod, Protocol
from support.cfn import resources
from support.envs import deploy_env
from support.gates import cfn_lint

from apps import calico as calico_app
from apps import clusters

HELM = "Custom::AWSCDK-EKS-HelmChart"
MANIFEST = "Custom::AWSCDK-EKS-KubernetesResource"
OBJECT_VALUE = "Custom::AWSCDK-EKS-KubernetesObjectValue"


@pytest.fixture(scope="module")
def assembly(tmp_path_factory) -> cdk.cx_api.CloudAssembly:
    """The IPv4 cluster scenario plus the Calico scenario, synthesized once with the cdk-nag checks on."""
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("calico") / "cdk.out"), analytics_reporting=True)
    base = clusters.ipv4_cluster_stack(app, deploy_env())
    calico_app.calico_stack(app, deploy_env(), cluster=base)
    nag.add_checks(app)
    return app.synth()


def _read(assembly: cdk.cx_api.CloudAssembly, stack: str) -> dict:
    # Read from disk: jsii may hand back an artifact seen before as a plain CloudArtifact proxy.
    return json.loads((Path(assembly.directory) / f"{stack}.template.json").read_text())


@pytest.fixture(scope="module")
def template(assembly) -> dict:
    return _read(assembly, "EksnetCalico")


@pytest.fixture(scope="module")
def cluster_template(assembly) -> dict:
    return _read(assembly, clusters.IPV4_CLUSTER_STACK)


def _manifests(template: dict) -> dict[str, list[dict]]:
    """Logical id -> the manifest list of every KubernetesManifest, without CDK's prune label."""
    found = {}
    for lid, r in resources(template, MANIFEST).items():
        docs = json.loads(r["Properties"]["Manifest"])
        for d in docs:
            labels = d["metadata"].get("labels", {})
            for k in [k for k in labels if k.startswith("aws.cdk.eks/prune-")]:
                del labels[k]
            if not labels:
                d["metadata"].pop("labels", None)
        found[lid] = docs
    return found


def _by_kind(template: dict, kind: str) -> tuple[str, list[dict]]:
    (hit,) = [(lid, docs) for lid, docs in _manifests(template).items() if any(d["kind"] == kind for d in docs)]
    return hit


def _depends_on(template: dict, lid: str) -> list[str]:
    return template["Resources"][lid].get("DependsOn", [])


def test_operator_chart_is_pinned(template):
    (chart,) = resources(template, HELM).values()
    props = chart["Properties"]
    assert (props["Chart"], props["Version"], props["Repository"], props["Namespace"]) == (
        "tigera-operator", calico.CALICO_VERSION, "https://docs.tigera.io/calico/charts", "tigera-operator")


def test_chart_leaves_the_installation_to_eksnet(template):
    (chart,) = resources(template, HELM).values()
    assert json.loads(chart["Properties"]["Values"])["installation"] == {"enabled": False}


def test_calico_stack_is_deployed_after_the_cluster_stack_with_its_addons_and_nodes(assembly):
    # The chart needs the vpc-cni add-on, the readiness wait needs nodes: both are in the cluster stack.
    deps = {d.id for d in assembly.get_stack_by_name("EksnetCalico").dependencies}
    assert clusters.IPV4_CLUSTER_STACK in deps


def test_calico_stack_adds_no_second_cluster(template):
    assert not resources(template, "AWS::EKS::Cluster")


def test_calico_stack_passes_cfn_lint(assembly):
    findings = cfn_lint([Path(assembly.directory) / "EksnetCalico.template.json"])
    assert not findings, "\n".join(map(str, findings))


def test_installation_is_calico_for_policy_on_the_amazon_vpc_cni(template):
    _, docs = _by_kind(template, "Installation")
    assert docs == [{"apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"},
                     "spec": {"kubernetesProvider": "EKS", "cni": {"type": "AmazonVPC"}}}]


def test_installation_is_applied_after_the_chart_that_brings_its_crd(template):
    lid, _ = _by_kind(template, "Installation")
    (chart,) = resources(template, HELM)
    assert chart in _depends_on(template, lid)


def test_readiness_waits_for_the_operator_to_report_calico_available(template):
    (lid, ready), = resources(template, OBJECT_VALUE).items()
    props = ready["Properties"]
    assert (props["ObjectType"], props["ObjectName"], props["JsonPath"]) == (
        "installations.operator.tigera.io", "default", ".status.calicoVersion")
    install, _ = _by_kind(template, "Installation")
    assert install in _depends_on(template, lid)


def test_vpc_cni_annotates_pod_ips_and_its_policy_agent_is_off(cluster_template):
    (addon,) = [r for r in resources(cluster_template, "AWS::EKS::Addon").values() if r["Properties"]["AddonName"] == "vpc-cni"]
    config = json.loads(addon["Properties"]["ConfigurationValues"])
    assert (config["env"]["ANNOTATE_POD_IP"], config["enableNetworkPolicy"]) == ("true", "false")


def test_aws_node_may_patch_pods_through_the_clusters_rbac(cluster_template):
    _, docs = _by_kind(cluster_template, "ClusterRoleBinding")
    assert docs == calico.annotate_pod_ip_rbac()


def test_the_calico_stack_waits_for_the_cluster_stack_that_holds_the_rbac(assembly):
    manifest = json.loads((Path(assembly.directory) / "manifest.json").read_text())
    assert clusters.IPV4_CLUSTER_STACK in manifest["artifacts"]["EksnetCalico"]["dependencies"]


def test_seed_workloads_are_the_two_namespaces_and_busybox_deployments(template):
    _, docs = _by_kind(template, "Deployment")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Namespace", "deploy1"), ("Namespace", "deploy2"), ("Deployment", "deploy1"), ("Deployment", "deploy2")]


def test_deny_all_is_applied_once_calico_is_ready_and_the_workloads_exist(template):
    lid, _ = _by_kind(template, "NetworkPolicy")
    workloads, _ = _by_kind(template, "Deployment")
    (ready,) = resources(template, OBJECT_VALUE)
    assert {ready, workloads} <= set(_depends_on(template, lid))


def test_the_stacks_deny_all_policy_denies_the_seeds_ping(template):
    _, docs = _by_kind(template, "NetworkPolicy")
    deploy1 = Pod("deploy1-x", "deploy1", {"app": "deploy1"}, ips=("192.168.42.16",))
    deploy2 = Pod("deploy2-x", "deploy2", {"app": "deploy2"}, ips=("192.168.7.21",))
    before = Cluster(pods=[deploy1, deploy2])
    after = before.with_policies(*docs)
    assert (before.allowed(deploy2, deploy1, protocol=Protocol.ICMP),
            after.allowed(deploy2, deploy1, protocol=Protocol.ICMP)) == (True, False)
