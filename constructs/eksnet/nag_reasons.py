"""Every finding eksnet acknowledges, and why: one table, grouped by the construct that needs it.

The template gates (cdk-nag AwsSolutions, eksnet's EKS rules, aws-cdk-lib's own template check) fail
synth on any finding nobody acknowledged. The findings eksnet's constructs and apps accept are all
here, each written once: the rule, what it finds on that construct, and the reason. A construct
names its entry (``nag.acknowledge_as(construct, "EksCluster", "node-role", findings=...)``) and
supplies only what is known at synth (the exact finding: a policy ARN, a logical id); it never writes
a reason itself. ``python -m eksnet.nag cdk.out`` shows, per stack, which of these a synthesized app
acknowledged, where, and on what.

Rules are ``AwsSolutions-*`` (cdk-nag; ``AwsSolutions-IAM4``/``-IAM5`` are acknowledged one finding
at a time), ``Eksnet::Eksnet-*`` (``eksnet.eks_checks``), ``CloudFormation-Validate::*``
(aws-cdk-lib's template check) and ``Annotation::*`` (a CDK warning).
This module is data only: it imports nothing, so reading it costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    """One accepted finding: ``rule`` as the gate names it, ``finding`` in words, ``reason`` why it is fine."""

    rule: str
    finding: str
    reason: str


REASONS: dict[str, dict[str, Reason]] = {
    # --- the VPC (eksnet/vpc.py, eksnet/vpc_import.py) -------------------------------------------------------
    "EksVpc": {
        "named-zones": Reason(
            "CloudFormation-Validate::W3010",
            "availability zones written into the template",
            "zones are named on purpose: EksnetStack gives them from the region table or context so that synth "
            "needs no lookup; cfn-lint exempts CDK templates from this rule",
        ),
    },
    "Ipv6ForImportedVpc": {
        "ipv6-block-lookup": Reason(
            "AwsSolutions-IAM5",
            "Resource::* on the custom resource that reads the VPC's IPv6 /56",
            "ec2:DescribeVpcs supports no resource-level permissions; the call is read-only",
        ),
    },
    # --- aws-cdk-lib's AwsCustomResource function: one per stack, shared by SubnetCidrReservation,
    # Ipv6ForImportedVpc and the Multus node group resolvers and scalers -------------------------------------------
    "AwsCustomResource provider": {
        "basic-execution-role": Reason(
            "AwsSolutions-IAM4",
            "AWS managed policy AWSLambdaBasicExecutionRole on the function's role",
            "aws-cdk-lib's AwsCustomResource function: the library gives its role the AWS managed policy for "
            "writing its own logs; each custom resource's calls are separate statements limited to its resources",
        ),
    },
    # --- the cluster (eksnet/cluster.py) ------------------------------------------------------------------------
    "EksCluster": {
        "cluster-role": Reason(
            "AwsSolutions-IAM4",
            "AWS managed policies AmazonEKSClusterPolicy and AmazonEKSVPCResourceController on the EKS service role",
            "EKS service role: AmazonEKSClusterPolicy (and the VPC resource controller policy for security groups "
            "per pod) are the AWS-maintained policies EKS documents for it",
        ),
        "node-role": Reason(
            "AwsSolutions-IAM4",
            "AWS managed policies AmazonEKSWorkerNodePolicy and AmazonEC2ContainerRegistryPullOnly on the node role",
            "EKS node role: AmazonEKSWorkerNodePolicy and AmazonEC2ContainerRegistryPullOnly (image pulls only, "
            "no listing) are the AWS-maintained policies the EKS user guide gives nodes; the CNI's are on its own role",
        ),
        "cni-role-ipv4": Reason(
            "AwsSolutions-IAM4",
            "AWS managed policy AmazonEKS_CNI_Policy on the VPC CNI's role (IPv4 clusters)",
            "VPC CNI role (IPv4): AmazonEKS_CNI_Policy is the AWS-maintained policy that tracks the CNI's needs; "
            "it is on the aws-node service account's role only, not the nodes",
        ),
        "cni-policy-ipv6": Reason(
            "AwsSolutions-IAM5",
            "Resource::* and ec2:*:*:<type>/* (network-interface, instance, security-group, vpc) in the VPC CNI's "
            "IPv6 policy",
            "VPC CNI IPv6 policy: EC2 Describe* actions support no resource-level permissions; the CNI assigns, "
            "tags and modifies ENIs it creates at run time (ids unknown at deploy), so those actions are limited "
            "to those resource types (ENIs; for attribute changes also the instance, groups and VPC), not to names",
        ),
    },
    # --- aws-cdk-lib's kubectl provider, made by aws_eks_v2.Cluster for EksCluster ------------------------------
    "kubectl provider": {
        "managed-policies": Reason(
            "AwsSolutions-IAM4",
            "AWS managed policies (Lambda basic and VPC access execution, ECR read-only, ECR Public read-only where "
            "the region has it) on the provider's Lambda roles",
            "aws-cdk-lib's kubectl provider: its Lambda roles carry the AWS managed policies the library attaches "
            "(logs, VPC access, image pulls for the kubectl layer)",
        ),
        "invoke-handler-versions": Reason(
            "AwsSolutions-IAM5",
            "Resource::<handler ARN>:* in the provider framework's invoke policy",
            "aws-cdk-lib's kubectl provider: the provider framework may invoke any version of its own handler "
            "function (function ARN plus ':*'), a wildcard the library generates",
        ),
        "runtimes": Reason(
            "AwsSolutions-L1",
            "Lambda runtimes older than the newest of their family",
            "aws-cdk-lib's kubectl provider: the library pins its Lambda runtimes and tracks them with its releases",
        ),
    },
    # --- Multus ENIs (eksnet/multus/eni.py) ---------------------------------------------------------------------
    "MultusEniAttacher": {
        "dead-letter-queue": Reason(
            "AwsSolutions-SQS3",
            "a queue without a dead-letter queue of its own",
            "this queue is itself the dead-letter queue of the EventBridge targets and the Lambda's failed "
            "asynchronous invocations",
        ),
        "lifecycle-policy": Reason(
            "AwsSolutions-IAM5",
            "Resource::*, network-interface/*, instance/* and Auto Scaling group ARNs in the lifecycle Lambda's "
            "policy",
            "ec2:Describe* and autoscaling:DescribeAutoScalingGroups have no resource-level permissions; ENI and "
            "instance ARNs are unknown before creation and are limited by tag conditions (cluster, multus, "
            "aws:autoscaling:groupName); an Auto Scaling group ARN holds a generated id, so the group is pinned "
            "by its name",
        ),
        "sweeper-policy": Reason(
            "AwsSolutions-IAM5",
            "Resource::* and network-interface/* in the sweeper Lambda's policy",
            "ec2:Describe* has no resource-level permissions; deletion is limited to ENIs tagged with this "
            "cluster and multus=true, whose ids are not known in advance",
        ),
        "nodegroup-resolver": Reason(
            "AwsSolutions-IAM5",
            "the node group ARN's generated id (/*) in the policy of the custom resource that reads its Auto "
            "Scaling group",
            "EKS node group ARNs end in a generated id: the policy pins the cluster and node group names",
        ),
    },
    # --- per-IP Multus addressing (eksnet/multus/perip.py) ------------------------------------------------------
    "PerIpMultus": {
        "own-enis": Reason(
            "AwsSolutions-IAM5",
            "network-interface/* in the node role's address assignment policy",
            "any Multus ENI of the node, but only while its eksnet.io/instance-arn tag equals the calling "
            "instance's ARN (ec2:SourceInstanceARN): ENI ids are not known before launch",
        ),
        "describe-enis": Reason(
            "AwsSolutions-IAM5",
            "Resource::* for ec2:DescribeNetworkInterfaces in the same policy",
            "ec2:DescribeNetworkInterfaces has no resource-level permissions; the daemon reads which addresses "
            "its own ENI holds to reconcile per-IP assignments",
        ),
    },
}
