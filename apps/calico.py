"""Seed 003, "Installing and using Calico network policies": Calico on an IPv4 cluster, and the seed's test.

The seed's steps on its IPv4 cluster (``myipv4cluster`` of ``apps.clusters``: vpc-cni, coredns
and kube-proxy add-ons, OIDC, one t3.medium managed node group ``ipv4mng``), in a stack of their
own (``EksnetCalico``, using the cluster's kubectl provider across stacks): Calico through the
Tigera operator with ``cni.type: AmazonVPC``, the namespaces deploy1 and deploy2 with a busybox
deployment each, and the deny-all egress policy in deploy2. The policy is applied after Calico
reports ready, so it is enforced from the moment it exists.

``calico_stack`` builds that stack on the IPv4 cluster stack it is given (``apps.main`` passes it);
``add_calico_scenario`` adds the Calico part to any Calico-ready ``EksCluster``.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from eksnet import policy
from eksnet.calico import Calico
from eksnet.cluster import EksCluster
from eksnet.environment import DeployEnv, EksnetStack

from apps.clusters import ClusterStack
from apps.context import CALICO_STACK as CALICO_STACK
from constructs import Construct

NAMESPACES = ("deploy1", "deploy2")


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def busybox_deployment(name: str) -> dict[str, Any]:
    """The seed's deployment: one busybox that sleeps, in the namespace of the same name."""
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "busybox",
                    "image": "busybox",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "echo Running ; sleep 3600"],
                }]},
            },
        },
    }


def deny_all_policy() -> policy.NetworkPolicy:
    """The seed's deny-all.yaml: every pod of deploy2 isolated for egress, with no allow.

    The seed names it default-deny-ingress although it denies egress; here the name says what it does.
    """
    return policy.default_deny_egress("deploy2")


def workload_manifests() -> list[dict[str, Any]]:
    """simple-deployments.yaml: the two namespaces, then the two deployments."""
    return [*(namespace(n) for n in NAMESPACES), *(busybox_deployment(n) for n in NAMESPACES)]


def add_calico_scenario(scope: Construct, cluster: EksCluster) -> Calico:
    calico = Calico(scope, "Calico", cluster=cluster)
    workloads = eks.KubernetesManifest(scope, "SimpleDeployments", cluster=cluster.cluster,
                                       manifest=workload_manifests())
    deny_all = eks.KubernetesManifest(scope, "DenyAll", cluster=cluster.cluster,
                                      manifest=[deny_all_policy().to_manifest()])
    deny_all.node.add_dependency(workloads, calico.ready)
    return calico


def calico_stack(app: cdk.App, deploy_env: DeployEnv, *, cluster: ClusterStack) -> EksnetStack:
    """``EksnetCalico`` on ``cluster``'s EKS cluster (the walkthrough's: ``apps.clusters.ipv4_cluster_stack``)."""
    stack = EksnetStack(app, CALICO_STACK, deploy_env=deploy_env,
                        description="eksnet: Calico network policy on myipv4cluster "
                                    "(seed 003, Installing and using Calico network policies)")
    add_calico_scenario(stack, cluster.eks_cluster)
    return stack
