"""Seed 003, "Using IPv6 in your EKS cluster": the two ways IPv6 pods reach IPv4, each as a VPC stack.

- ``EksnetNetwork``: the seed's setup, the VPC eksctl makes for ``myipv6cluster`` (192.168.0.0/16, three
  public and three private dual-stack subnets, a NAT gateway per zone) where pods reach IPv4 through
  node SNAT (DNS64 off), plus Multus subnets (seed: "Configuring multiple network interfaces with Multus").
- ``EksnetNetworkIpv6Only``: pure IPv6 pods: IPv6-only private subnets with DNS64 on and
  ``64:ff9b::/96`` routed to the zone's NAT gateway (NAT64). Its IPv4 block (10.64.0.0/16, needed
  by EKS and the NAT gateways' public subnets) differs from the first so the two VPCs can be peered.

Each VPC has one NAT gateway (one Elastic IP) unless ``nat_gateways`` (``-c eksnet:natGateways=per-az`` in the
default app) asks for one per zone. ``apps.main`` passes ``EksnetNetwork`` to the IPv6 cluster that uses its VPC.
"""

from __future__ import annotations

import aws_cdk as cdk
from eksnet.environment import DeployEnv, EksnetStack
from eksnet.vpc import EksVpc, MultusNetwork, NatGateways, PodIpv4Egress

from apps.context import IPV6_ONLY_STACK as IPV6_ONLY_STACK
from apps.context import NETWORK_STACK as NETWORK_STACK


class NetworkStack(EksnetStack):
    """One ``EksVpc`` in its own stack; ``eks_vpc`` is what cluster stacks compose."""

    def __init__(self, scope: cdk.App, id: str, *, deploy_env: DeployEnv, description: str, **vpc_props) -> None:
        super().__init__(scope, id, deploy_env=deploy_env, description=description)
        self.eks_vpc = EksVpc(self, "EksVpc", **vpc_props)


def node_snat_stack(app: cdk.App, deploy_env: DeployEnv, *, cluster_name: str,
                    nat_gateways: NatGateways = NatGateways.SHARED) -> NetworkStack:
    """``EksnetNetwork``: the VPC eksctl makes for the IPv6 cluster ``cluster_name`` (its subnets are tagged for it)."""
    return NetworkStack(
        app, NETWORK_STACK, deploy_env=deploy_env,
        description="eksnet: dual-stack VPC for EKS, pods reach IPv4 by node SNAT, Multus subnets (seed 003)",
        ipv4_cidr="192.168.0.0/16",
        nat_gateways=nat_gateways,
        pod_ipv4_egress=PodIpv4Egress.NODE_SNAT,
        cluster_names=[cluster_name],
        multus=MultusNetwork(ipv4_supernet="192.168.192.0/19"),
    )


def ipv6_only_stack(app: cdk.App, deploy_env: DeployEnv, *,
                    nat_gateways: NatGateways = NatGateways.SHARED) -> NetworkStack:
    """``EksnetNetworkIpv6Only``: IPv6-only private subnets, DNS64 and NAT64."""
    return NetworkStack(
        app, IPV6_ONLY_STACK, deploy_env=deploy_env,
        description="eksnet: VPC for EKS with IPv6-only private subnets, DNS64 and NAT64 (seed 003)",
        ipv4_cidr="10.64.0.0/16",
        nat_gateways=nat_gateways,
        pod_ipv4_egress=PodIpv4Egress.NAT64,
        ipv6_only_private_subnets=True,
        # No cluster: EKS needs subnets with IPv4 for nodes; the IPv6-only subnets are for IPv6-ready workloads.
    )
