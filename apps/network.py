"""Foundation scenario: the dual-stack VPC that every cluster of the seeds runs in."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from eksnet.environment import DeployEnv, EksnetStack


def add_stacks(app: cdk.App, deploy_env: DeployEnv) -> list[cdk.Stack]:
    stack = EksnetStack(app, "EksnetNetwork", deploy_env=deploy_env,
                        description="eksnet: dual-stack VPC for EKS (seed 003, Using IPv6 in your EKS cluster)")
    vpc = ec2.Vpc(
        stack, "Vpc",
        ip_addresses=ec2.IpAddresses.cidr("192.168.0.0/16"),
        ip_protocol=ec2.IpProtocol.DUAL_STACK,
        max_azs=len(deploy_env.azs),
        nat_gateways=1,
    )
    vpc.add_flow_log("FlowLog")
    return [stack]
