"""Seed 003, "Configuring multiple network interfaces with Multus", as one stack.

What the seed does by hand, as code: a dual-stack VPC with a Multus subnet per zone and a Multus
security group (``EksVpc(multus=...)``); an EKS cluster with a managed node group whose nodes get
their Multus ENI attached at launch (``eksnet.multus.eni``: lifecycle hook, EventBridge, Lambda) and, from user data, rename it (``multus1``), set rp_filter, bring it up and run the node
runtime (``MultusNodeBootstrap``); Multus itself (``MultusInstall``: thick plugin, VPC CNI as default);
the seed's ``ipvlan-private-a`` NetworkAttachmentDefinition and its ``multus-pod``.

One change to the seed's NAD, on purpose: its IPAM is the node runtime's ``eksnet-ipam`` drawing from
the pool ``multus1`` (the prefixes delegated to the node's Multus ENI) instead of host-local's fixed
192.168.96.20-40. That is the seed's "critical issue" solved: the VPC delivers only to addresses
assigned to the ENI, and these are. The seed's host-local form stays expressible one to one
(``tests/multus/test_multus_nad.py``).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import DeployEnv, EksnetStack
from eksnet.multus import (
    CniVersion,
    EksnetIpam,
    Ipvlan,
    IpvlanMode,
    MultusInstall,
    NetworkAttachmentDefinition,
    Route,
    network_selection_annotation,
)
from eksnet.multus.eni import MultusEniAttacher
from eksnet.multus.node import MultusInterfaces, MultusNodeBootstrap
from eksnet.vpc import EksVpc, MultusNetwork, PodIpv4Egress

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
    """VPC with Multus subnets, cluster, Multus ENI automation, node bootstrap, Multus, NAD and pod.

    Attributes: ``eks_vpc``, ``eks_cluster``, ``multus_enis`` (``MultusEniAttacher``), ``bootstrap``, ``multus``,
    ``nad``, ``pod``.
    """

    def __init__(self, scope: cdk.App, id: str, *, deploy_env: DeployEnv, interfaces_per_node: int = 1) -> None:
        super().__init__(scope, id, deploy_env=deploy_env,
                         description="eksnet: EKS with Multus, Multus ENIs per zone and the node runtime "
                                     "(seed 003, Configuring multiple network interfaces with Multus)")
        self.eks_vpc = EksVpc(
            self, "EksVpc", ipv4_cidr="192.168.0.0/16", pod_ipv4_egress=PodIpv4Egress.NODE_SNAT,
            cluster_names=[CLUSTER_NAME], multus=MultusNetwork(interfaces_per_node=interfaces_per_node),
        )
        self.eks_cluster = EksCluster(
            self, "EksCluster", vpc=self.eks_vpc, cluster_name=CLUSTER_NAME, ip_family=eks.IpFamily.IP_V4,
            nodegroups=[NodeGroupSpec(NODEGROUP, instance_types=("t3.large",))],
        )
        # One ENI per Multus subnet of the node's zone, each with a delegated IPv4 /28 and IPv6 /80: the pools
        # eksnet-ipam hands pod addresses from, which the VPC routes to the ENI.
        self.multus_enis = MultusEniAttacher(
            self, "MultusEnis", cluster_name=CLUSTER_NAME, subnets=self.eks_vpc.multus_subnets,
            security_group=self.eks_vpc.multus_security_group,
            nodegroups=list(self.eks_cluster.nodegroups.values()),
            ipv4_prefix_count=1, ipv6_prefix_count=1,
        )

        interfaces = MultusInterfaces(device_indexes=tuple(range(1, interfaces_per_node + 1)))
        self.bootstrap = MultusNodeBootstrap(self, "MultusNodeBootstrap", interfaces=interfaces)
        self.bootstrap.add_to(self.eks_cluster.node_user_data[NODEGROUP], self.eks_cluster.node_role)

        self.multus = MultusInstall(self, "Multus", cluster=self.eks_cluster.cluster)
        self.nad = NetworkAttachmentDefinition(
            name="ipvlan-private-a",
            cni_version=CniVersion.V1_0_0,
            interface=Ipvlan(master=interfaces.names[1], mode=IpvlanMode.L3, plugin="eksnet-ipvlan"),
            ipam=EksnetIpam(pool=interfaces.names[1],
                            routes=(Route(self.eks_vpc.multus.ipv4_supernet),)),
        )
        nad_resource = self.multus.add_network(self.nad)
        self.pod = seed_pod(deploy_env.azs[0], self.nad)
        self.multus.add_manifest("SeedPod", self.pod, after=[nad_resource])

def add_stacks(app: cdk.App, deploy_env: DeployEnv) -> list[cdk.Stack]:
    return [MultusStack(app, "EksnetMultus", deploy_env=deploy_env)]
