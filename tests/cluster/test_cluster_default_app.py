"""The default app reproduces seed 003's myipv6cluster and myipv4cluster (eksctl ClusterConfig files)."""

from __future__ import annotations

import json

import pytest
from aws_cdk import aws_eks_v2 as eks
from eksnet.environment import EksnetStack
from support.cfn import props
from support.envs import deploy_env

from apps import main

STACKS = {
    "EksnetIpv6Cluster": ("myipv6cluster", "ipv6", "ipv6mng"),
    "EksnetIpv4Cluster": ("myipv4cluster", "ipv4", "ipv4mng"),
}


@pytest.fixture(scope="module", params=sorted(STACKS))
def seed_cluster(request, templates):
    name = request.param
    assert name in templates, f"the default app lacks {name}: {sorted(templates)}"
    return templates[name], STACKS[name]


def _only(template, type_):
    found = [p for _, p in props(template, type_)]
    assert len(found) == 1, type_
    return found[0]


def test_cluster_name_and_ip_family_match_the_seed(seed_cluster):
    template, (name, family, _) = seed_cluster
    cluster = _only(template, "AWS::EKS::Cluster")
    assert cluster["Name"] == name
    assert cluster["KubernetesNetworkConfig"]["IpFamily"] == family


def test_addons_are_vpc_cni_coredns_and_kube_proxy(seed_cluster):
    template, _ = seed_cluster
    assert {p["AddonName"] for _, p in props(template, "AWS::EKS::Addon")} == {"vpc-cni", "coredns", "kube-proxy"}


def test_cluster_has_an_oidc_provider(seed_cluster):
    template, _ = seed_cluster
    assert _only(template, "AWS::IAM::OIDCProvider")


def test_one_managed_node_group_of_t3_medium(seed_cluster):
    template, (_, _, nodegroup) = seed_cluster
    ng = _only(template, "AWS::EKS::Nodegroup")
    assert ng["NodegroupName"] == nodegroup and ng["InstanceTypes"] == ["t3.medium"]


def test_t3_medium_max_pods_follows_the_family(seed_cluster):
    # IPv6: one /80 prefix, so the 110 cap; IPv4 secondary IP mode: 3 * (6 - 1) + 2 = 17.
    template, (_, family, _) = seed_cluster
    body = json.dumps(_only(template, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]["UserData"])
    assert ("maxPods: 110" if family == "ipv6" else "maxPods: 17") in body


def test_the_ipv4_cluster_is_ready_for_calico(templates):
    config = next(p for _, p in props(templates["EksnetIpv4Cluster"], "AWS::EKS::Addon") if p["AddonName"] == "vpc-cni")
    doc = json.loads(config["ConfigurationValues"])
    assert doc["env"]["ANNOTATE_POD_IP"] == "true" and doc["enableNetworkPolicy"] == "false"


def _manifest_kinds(template: dict) -> list[str]:
    return [doc["kind"] for _, p in props(template, "Custom::AWSCDK-EKS-KubernetesResource")
            for doc in json.loads(p["Manifest"])]


def test_annotating_pod_ips_brings_the_rbac_that_lets_aws_node_patch_pods(templates):
    kinds = _manifest_kinds(templates["EksnetIpv4Cluster"])
    assert kinds.count("ClusterRole") == 1 and kinds.count("ClusterRoleBinding") == 1


def test_without_pod_ip_annotation_no_rbac_is_added(templates):
    assert "ClusterRoleBinding" not in _manifest_kinds(templates["EksnetIpv6Cluster"])


def test_the_default_app_runs_the_eksnet_eks_gate(tmp_path, monkeypatch):
    monkeypatch.setattr(main, "add_stacks", lambda app, settings: {})  # the gates alone
    app = main.build_app(outdir=str(tmp_path / "out"))
    stack = EksnetStack(app, "Probe", deploy_env=deploy_env())
    eks.CfnCluster(
        stack,
        "Public",
        role_arn="arn:aws:iam::123456789012:role/eks",
        resources_vpc_config=eks.CfnCluster.ResourcesVpcConfigProperty(subnet_ids=["subnet-1"]),
    )
    with pytest.raises(RuntimeError, match="Eksnet-EKS1"):
        app.synth()
