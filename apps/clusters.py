"""Seed 003's two clusters as stacks: ``myipv6cluster`` (IPv6) and ``myipv4cluster`` (IPv4, the base for Calico).

Each reproduces the seed's eksctl ``ClusterConfig``: eu-central-1 (the default app's region),
the vpc-cni, coredns and kube-proxy add-ons, an OIDC provider (``iam.withOIDC``) and one managed
node group of t3.medium, in a VPC of its own as eksctl makes it (192.168.0.0/16, three public and
three private dual-stack subnets; myipv6cluster uses ``EksnetNetwork``'s, passed in by ``apps.main``).
The Kubernetes version is today's (the seed's 1.21 and 1.19 are long out of support). Differences from eksctl's defaults, on purpose: a private API endpoint
and all control-plane logs (the gates' EKS rules), IMDSv2 on nodes, and the VPC CNI's IAM on its
own role (IRSA) instead of the node role.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import DeployEnv, EksnetStack
from eksnet.vpc import EksVpc, NatGateways, PodIpv4Egress
from eksnet.vpc_cni import VpcCniConfig

from apps.context import IPV4_CLUSTER_STACK as IPV4_CLUSTER_STACK
from apps.context import IPV6_CLUSTER_STACK as IPV6_CLUSTER_STACK
from apps.network import NetworkStack

IPV4_CLUSTER_NAME = "myipv4cluster"


class ClusterStack(EksnetStack):
    """A VPC and one ``EksCluster``; ``eks_vpc`` and ``eks_cluster`` are what other scenarios build on."""

    def __init__(
        self,
        scope: cdk.App,
        id: str,
        *,
        deploy_env: DeployEnv,
        cluster_name: str,
        ip_family: eks.IpFamily,
        nodegroup: str,
        vpc_cni: VpcCniConfig,
        description: str,
        eks_vpc: EksVpc | None = None,
        nat_gateways: NatGateways = NatGateways.SHARED,
    ) -> None:
        super().__init__(scope, id, deploy_env=deploy_env, description=description)
        # The VPC of another stack (a network stack made for this cluster), or one of its own.
        self.eks_vpc = eks_vpc or EksVpc(
            self,
            "EksVpc",
            ipv4_cidr="192.168.0.0/16",
            nat_gateways=nat_gateways,
            pod_ipv4_egress=PodIpv4Egress.NODE_SNAT,
            cluster_names=[cluster_name],
        )
        self.eks_cluster = EksCluster(
            self,
            "EksCluster",
            vpc=self.eks_vpc,
            cluster_name=cluster_name,
            ip_family=ip_family,
            vpc_cni=vpc_cni,
            nodegroups=[NodeGroupSpec(nodegroup, instance_types=("t3.medium",))],
        )


def ipv6_cluster_stack(app: cdk.App, deploy_env: DeployEnv, *, network: NetworkStack,
                       cluster_name: str) -> ClusterStack:
    """myipv6cluster (named ``cluster_name``) in ``network``'s VPC, the one eksctl would make for it: the default
    app needs four VPCs, not five."""
    return ClusterStack(
        app,
        IPV6_CLUSTER_STACK,
        deploy_env=deploy_env,
        cluster_name=cluster_name,
        ip_family=eks.IpFamily.IP_V6,
        nodegroup="ipv6mng",
        vpc_cni=VpcCniConfig(),
        description="eksnet: myipv6cluster, an IPv6 EKS cluster with managed add-ons (seed 003, Using IPv6)",
        eks_vpc=network.eks_vpc,
    )


def ipv4_cluster_stack(app: cdk.App, deploy_env: DeployEnv, *,
                       nat_gateways: NatGateways = NatGateways.SHARED) -> ClusterStack:
    """myipv4cluster in a VPC of its own, the seed's base for Calico (``apps.calico`` receives this stack)."""
    return ClusterStack(
        app,
        IPV4_CLUSTER_STACK,
        deploy_env=deploy_env,
        cluster_name=IPV4_CLUSTER_NAME,
        ip_family=eks.IpFamily.IP_V4,
        nodegroup="ipv4mng",
        # Calico's kube-controllers read the pod IP annotation (seed 003, Calico network policies).
        vpc_cni=VpcCniConfig(annotate_pod_ip=True),
        description="eksnet: myipv4cluster, an IPv4 EKS cluster, the base for Calico (seed 003, network policies)",
        nat_gateways=nat_gateways,
    )
