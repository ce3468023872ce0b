"""The synth benchmark's reference: eksnet's default app written with aws-cdk-lib alone.

What a user writes without eksnet for the same six stacks (``bench_synth``): the same VPCs (CIDRs, dual
stack, subnet tiers, one NAT gateway, flow logs), the same clusters (IP family, version, kubectl layer, the
three add-ons) and managed node groups, Calico's chart and the seed's manifests on the IPv4 cluster, the
Multus subnets. aws-cdk-lib's default settings (its template validation included), no cdk-nag, nothing
eksnet adds on top (CIDR reservations, ENI automation, node runtime, IAM for the VPC CNI, launch templates,
log groups, checks).

``python -m bench.synth_reference`` is a CDK app (``cdk synth --app ...``); ``-c bare:stacks=A,B`` builds
only those stacks, as ``-c eksnet:stacks`` does for eksnet's app.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

ENV = cdk.Environment(account="123456789012", region="eu-central-1")
ZONES = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
STACKS_KEY = "bare:stacks"


class Stack(cdk.Stack):
    def __init__(self, scope: cdk.App, id: str) -> None:
        super().__init__(scope, id, env=ENV)

    @property
    def availability_zones(self) -> list[str]:
        return ZONES


def vpc(stack: cdk.Stack, cidr: str, *, multus: bool = False, ipv6_only_private: bool = False) -> ec2.Vpc:
    """eksctl's layout: three public and three private /19s, dual stack; optionally a Multus /21 per zone."""
    subnets = [
        ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=19),
        ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19),
    ]
    if multus:
        # Routed like the private tier (NAT, EIGW), as eksnet's Multus subnets are.
        subnets.append(ec2.SubnetConfiguration(name="Multus", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                               cidr_mask=21))
    v = ec2.Vpc(stack, "Vpc", ip_addresses=ec2.IpAddresses.cidr(cidr), ip_protocol=ec2.IpProtocol.DUAL_STACK,
                max_azs=3, nat_gateways=1, subnet_configuration=subnets)
    v.add_flow_log("FlowLog")
    if ipv6_only_private:  # the closest aws-cdk-lib gets without escape hatches: DNS64 on the private subnets
        for s in v.private_subnets:
            s.node.default_child.enable_dns64 = True
    return v


def cluster(stack: cdk.Stack, v: ec2.IVpc, name: str, family: eks.IpFamily, nodegroup: str,
            instance_type: str = "t3.medium") -> eks.Cluster:
    c = eks.Cluster(stack, "Cluster", cluster_name=name, version=eks.KubernetesVersion.V1_35, vpc=v, ip_family=family,
                    default_capacity_type=eks.DefaultCapacityType.NODEGROUP, default_capacity=0,
                    kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(stack, "L")))
    for addon in ("vpc-cni", "coredns", "kube-proxy"):
        eks.Addon(stack, addon, cluster=c, addon_name=addon)
    c.add_nodegroup_capacity(nodegroup, instance_types=[ec2.InstanceType(instance_type)])
    return c


def network(app: cdk.App) -> ec2.Vpc:
    return vpc(Stack(app, "BareNetwork"), "192.168.0.0/16", multus=True)


def network_ipv6_only(app: cdk.App) -> None:
    vpc(Stack(app, "BareNetworkIpv6Only"), "10.64.0.0/16", ipv6_only_private=True)


def ipv6_cluster(app: cdk.App, v: ec2.IVpc) -> None:
    """seed 003's myipv6cluster, in the network stack's VPC (as eksnet's default app places it)."""
    cluster(Stack(app, "BareIpv6Cluster"), v, "myipv6cluster", eks.IpFamily.IP_V6, "ipv6mng")


def ipv4_cluster(app: cdk.App) -> eks.Cluster:
    stack = Stack(app, "BareIpv4Cluster")
    return cluster(stack, vpc(stack, "192.168.0.0/16"), "myipv4cluster", eks.IpFamily.IP_V4, "ipv4mng")


def calico(app: cdk.App, c: eks.Cluster) -> None:
    """The Tigera operator chart, its Installation, the seed's two deployments and deny-all, on the IPv4 cluster."""
    stack = Stack(app, "BareCalico")
    chart = eks.HelmChart(stack, "Tigera", cluster=c, chart="tigera-operator",
                          repository="https://docs.tigera.io/calico/charts", namespace="tigera-operator",
                          create_namespace=True, version="v3.29.1")
    installation = eks.KubernetesManifest(stack, "Installation", cluster=c, manifest=[{
        "apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"},
        "spec": {"cni": {"type": "AmazonVPC"}}}])
    installation.node.add_dependency(chart)
    workloads = eks.KubernetesManifest(stack, "Workloads", cluster=c, manifest=[
        *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in ("deploy1", "deploy2")),
        *({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": n, "namespace": n},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": n}},
                    "template": {"metadata": {"labels": {"app": n}},
                                 "spec": {"containers": [{"name": "busybox", "image": "busybox",
                                                          "command": ["sleep", "3600"]}]}}}}
          for n in ("deploy1", "deploy2"))])
    deny = eks.KubernetesManifest(stack, "DenyAll", cluster=c, manifest=[{
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny-egress", "namespace": "deploy2"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}])
    deny.node.add_dependency(workloads, installation)


def multus(app: cdk.App) -> None:
    stack = Stack(app, "BareMultus")
    cluster(stack, vpc(stack, "192.168.0.0/16", multus=True), "mymultuscluster", eks.IpFamily.IP_V4, "multusmng",
            "t3.large")


ALL = ("BareNetwork", "BareNetworkIpv6Only", "BareIpv6Cluster", "BareIpv4Cluster", "BareCalico", "BareMultus")


def build_app(outdir: str | None = None, stacks: tuple[str, ...] | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir or os.environ.get("CDK_OUTDIR") or "cdk.out")
    if stacks is None:
        selected = app.node.try_get_context(STACKS_KEY)
        stacks = tuple(s for s in selected.split(",") if s) if selected else ALL
    unknown = set(stacks) - set(ALL)
    if unknown:
        raise SystemExit(f"unknown stacks {sorted(unknown)}; known: {', '.join(ALL)}")
    # The same dependencies as eksnet's app: the IPv6 cluster lives in the network stack's VPC.
    net = network(app) if {"BareNetwork", "BareIpv6Cluster"} & set(stacks) else None
    if "BareNetworkIpv6Only" in stacks:
        network_ipv6_only(app)
    if "BareIpv6Cluster" in stacks:
        ipv6_cluster(app, net)
    if "BareIpv4Cluster" in stacks or "BareCalico" in stacks:
        c = ipv4_cluster(app)
        if "BareCalico" in stacks:
            calico(app, c)
    if "BareMultus" in stacks:
        multus(app)
    return app


if __name__ == "__main__":
    build_app().synth()
