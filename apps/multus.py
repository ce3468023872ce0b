"""Seed 003, "Configuring multiple network interfaces with Multus", as one stack.

What the seed does by hand, as code, from one list of Multus interfaces (``MultusNetworking``): a dual-stack
VPC with a Multus subnet per zone and interface and a Multus security group; an EKS cluster whose managed node
group starts at size 0 and is sized once the lifecycle hooks exist, so every node gets its Multus ENI attached
at launch (hook, EventBridge, Lambda); on the node, the ENI named ``multus1``, rp_filter loose, up, its
delegated prefixes served by the node runtime's ``eksnet-ipamd``, and kubelet started only when all of that is
ready; kubelet's maxPods counted without the Multus ENI; Multus itself (thick plugin, VPC CNI as default);
the seed's ``ipvlan-private-a`` NetworkAttachmentDefinition and its ``multus-pod``.

One change to the seed's NAD, on purpose: its IPAM is the node runtime's ``eksnet-ipam`` drawing from
the pool ``multus1`` (the prefixes delegated to the node's Multus ENI) instead of host-local's fixed
192.168.96.20-40. That is the seed's "critical issue" solved: the VPC delivers only to addresses
assigned to the ENI, and these are. The seed's host-local form stays expressible one to one
(``tests/multus/test_multus_nad.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import DeployEnv, EksnetStack
from eksnet.multus import MultusInterface, MultusNetworking, NetworkAttachmentDefinition, network_selection_annotation
from eksnet.vpc import EksVpc, NatGateways, PodIpv4Egress

from apps.context import MULTUS_STACK as MULTUS_STACK

CLUSTER_NAME = "mymultuscluster"
NODEGROUP = "multusmng"


def seed_pod(zone: str, network: NetworkAttachmentDefinition) -> dict:
    """The seed's ``multus-pod``: busybox pinned to the first zone, with the Multus annotation."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "multus-pod", "namespace": "default", "annotations": network_selection_annotation(network)},
        "spec": {
            "nodeSelector": {"topology.kubernetes.io/zone": zone},
            "containers": [{
                "name": "busybox",
                "image": "busybox",
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "echo Container 1 is Running ; sleep 3600"],
            }],
        },
    }


class MultusStack(EksnetStack):
    """VPC, cluster and ``MultusNetworking`` (subnets, ENI automation, node setup, Multus), the seed's NAD and pod.

    ``interfaces_per_node`` Multus ENIs per node, each with one delegated IPv4 /28 and IPv6 /80, or ``interfaces``
    (e.g. ``make demo`` adds a per-IP one); ``nat_gateways``: the VPC's.
    Attributes: ``eks_vpc``, ``eks_cluster``, ``networking`` (``MultusNetworking``), ``nad``, ``pod``.
    """

    def __init__(self, scope: cdk.App, id: str, *, deploy_env: DeployEnv, interfaces_per_node: int = 1,
                 interfaces: Sequence[MultusInterface] | None = None,
                 nat_gateways: NatGateways = NatGateways.SHARED) -> None:
        super().__init__(scope, id, deploy_env=deploy_env,
                         description="eksnet: EKS with Multus, Multus ENIs per zone and the node runtime "
                                     "(seed 003, Configuring multiple network interfaces with Multus)")
        self.eks_vpc = EksVpc(self, "EksVpc", ipv4_cidr="192.168.0.0/16", nat_gateways=nat_gateways,
                              pod_ipv4_egress=PodIpv4Egress.NODE_SNAT, cluster_names=[CLUSTER_NAME])
        self.eks_cluster = EksCluster(
            self, "EksCluster", vpc=self.eks_vpc, cluster_name=CLUSTER_NAME, ip_family=eks.IpFamily.IP_V4,
            nodegroups=[NodeGroupSpec(NODEGROUP, instance_types=("t3.large",))],
        )
        self.networking = MultusNetworking(
            self, "Multus", vpc=self.eks_vpc, cluster=self.eks_cluster,
            interfaces=list(interfaces or [MultusInterface(ipv4_prefixes=1, ipv6_prefixes=1)] * interfaces_per_node),
        )
        self.nad, nad_resource = self.networking.add_nad("ipvlan-private-a", interface=1)
        self.pod = seed_pod(deploy_env.azs[0], self.nad)
        self.networking.install.add_manifest("SeedPod", self.pod, after=[nad_resource])
