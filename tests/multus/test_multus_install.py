"""MultusInstall as a construct (built, not synthesized): what it applies, in which order, and what it refuses."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from eksnet.multus import (
    EksnetIpam,
    Ipvlan,
    MultusConfigError,
    MultusInstall,
    NetworkAttachmentDefinition,
    multus_image,
)


def imported_cluster(stack: cdk.Stack) -> eks.ICluster:
    provider = eks.KubectlProvider.from_kubectl_provider_attributes(
        stack, "Provider", service_token="arn:aws:lambda:eu-central-1:123456789012:function:kubectl",
        role=iam.Role.from_role_arn(stack, "KubectlRole", "arn:aws:iam::123456789012:role/kubectl"))
    return eks.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="c", kubectl_provider=provider)


@pytest.fixture
def stack():
    return cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="123456789012", region="eu-central-1"))


def nad(name="ipvlan-private-a", namespace=None):
    return NetworkAttachmentDefinition(name=name, namespace=namespace, interface=Ipvlan(master="multus1"),
                                       ipam=EksnetIpam(pool="multus1"))


def test_image_defaults_to_the_stacks_region(stack):
    assert MultusInstall(stack, "Multus", cluster=imported_cluster(stack)).image == multus_image("eu-central-1")


def test_an_explicit_image_wins(stack):
    multus = MultusInstall(stack, "Multus", cluster=imported_cluster(stack), image="registry.example/multus:v4")
    containers = multus.manifests.daemon_set["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "registry.example/multus:v4"


def test_a_stack_without_a_region_needs_an_image():
    stack = cdk.Stack(cdk.App(), "Agnostic")
    with pytest.raises(MultusConfigError, match="explicit region"):
        MultusInstall(stack, "Multus", cluster=imported_cluster(stack))


def test_daemon_waits_for_the_crd(stack):
    multus = MultusInstall(stack, "Multus", cluster=imported_cluster(stack))
    assert multus.crd_manifest in multus.daemon_manifest.node.dependencies


def test_a_network_waits_for_the_crd_and_has_a_stable_id(stack):
    multus = MultusInstall(stack, "Multus", cluster=imported_cluster(stack))
    resource = multus.add_network(nad(namespace="telco"))
    assert resource.node.id == "Nad-telco-ipvlan-private-a"
    assert multus.crd_manifest in resource.node.dependencies
    assert multus.networks == {"telco/ipvlan-private-a": resource}


def test_the_same_network_twice_is_refused(stack):
    multus = MultusInstall(stack, "Multus", cluster=imported_cluster(stack))
    multus.add_network(nad())
    with pytest.raises(MultusConfigError, match="added twice"):
        multus.add_network(nad())


def test_extra_manifests_wait_for_the_daemon_and_what_they_name(stack):
    multus = MultusInstall(stack, "Multus", cluster=imported_cluster(stack))
    network = multus.add_network(nad())
    pod = multus.add_manifest("Pod", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, after=[network])
    assert {multus.daemon_manifest, network} <= set(pod.node.dependencies)
