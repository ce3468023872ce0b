"""Our own synth gate for the two EKS rules cdk-nag cannot see on ``aws_eks_v2`` clusters.

cdk-nag's AwsSolutions-EKS1 (public API endpoint) and AwsSolutions-EKS2 (control-plane
logging) only recognise the old ``aws_eks`` cluster, whose properties sit in a custom
resource; an ``aws_eks_v2`` cluster is a native ``AWS::EKS::Cluster`` that those rules skip,
so without this plugin a public, unlogged cluster passes the gate. The plugin reads every
synthesized template, like cdk-nag, through aws-cdk-lib's validation plugins: a finding fails
synth, and ``eksnet.nag.acknowledge(construct, "Eksnet::Eksnet-EKS1", reason)`` suppresses it on
one construct.

* ``Eksnet-EKS1``: ``ResourcesVpcConfig.EndpointPublicAccess`` is true (CloudFormation's default
  when absent): the Kubernetes API is reachable from the internet.
* ``Eksnet-EKS2``: ``Logging.ClusterLogging.EnabledTypes`` lacks one of api, audit,
  authenticator, controllerManager, scheduler.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks

from constructs import IValidation

PLUGIN_NAME = "Eksnet"
RULE_PUBLIC_ENDPOINT = "Eksnet-EKS1"
RULE_LOGGING = "Eksnet-EKS2"
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def _resolve_bool(value: Any, default: bool) -> bool | None:
    """A template boolean; None when it is an intrinsic we cannot decide at synth."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def findings_for_template(template: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(rule, logical id, what is wrong) for every EKS cluster of ``template``; pure, for tests."""
    found = []
    for lid, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::EKS::Cluster":
            continue
        props = res.get("Properties", {})
        public = _resolve_bool(props.get("ResourcesVpcConfig", {}).get("EndpointPublicAccess"), True)
        if public is not False:
            found.append((RULE_PUBLIC_ENDPOINT, lid, "the cluster's Kubernetes API endpoint is public"))
        enabled = {t.get("Type") for t in props.get("Logging", {}).get("ClusterLogging", {}).get("EnabledTypes", [])}
        missing = [t for t in REQUIRED_LOG_TYPES if t not in enabled]
        if missing:
            found.append((RULE_LOGGING, lid, f"control-plane log types not enabled: {', '.join(missing)}"))
    return found


_DESCRIPTIONS = {
    RULE_PUBLIC_ENDPOINT: "The EKS cluster's Kubernetes API server endpoint has public access enabled.",
    RULE_LOGGING: "The EKS cluster does not publish all five control-plane log types to CloudWatch Logs.",
}
_FIXES = {
    RULE_PUBLIC_ENDPOINT: "Use endpoint_access=EndpointAccess.PRIVATE (EksCluster's default), or acknowledge "
    "Eksnet::Eksnet-EKS1 with a reason on the cluster if a public endpoint is intended.",
    RULE_LOGGING: "Pass cluster_logging with API, AUDIT, AUTHENTICATOR, CONTROLLER_MANAGER and SCHEDULER "
    "(EksCluster's default).",
}


@jsii.implements(cdk.IPolicyValidationPlugin)
class EksChecks:
    """The validation plugin: register with ``cdk.Validations.of(app).add_plugins(EksChecks())``."""

    @property
    def name(self) -> str:
        return PLUGIN_NAME

    @property
    def version(self) -> str:
        return "1.0.0"

    @property
    def rule_ids(self) -> list[str]:
        return [RULE_PUBLIC_ENDPOINT, RULE_LOGGING]

    def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        by_rule: dict[str, list[cdk.PolicyViolatingResource]] = {}
        for stack in context.stack_templates:
            template = json.loads(Path(stack.template_path).read_text())
            for rule, lid, detail in findings_for_template(template):
                cdk_path = template["Resources"][lid].get("Metadata", {}).get("aws:cdk:path")
                by_rule.setdefault(rule, []).append(
                    cdk.PolicyViolatingResource(
                        resource_logical_id=lid,
                        construct_path=cdk_path,
                        template_path=stack.template_path,
                        locations=[detail],
                    )
                )
        violations = [
            cdk.PolicyViolation(
                rule_name=rule,
                description=_DESCRIPTIONS[rule],
                fix=_FIXES[rule],
                severity="error",
                violating_resources=resources,
            )
            for rule, resources in sorted(by_rule.items())
        ]
        return cdk.PolicyValidationPluginReport(violations=violations, success=not violations)


@jsii.implements(IValidation)
class PlacementCheck:
    """EKS's subnet rules (EKS user guide, "VPC and subnet requirements"), checked on the final resources.

    Every subnet given to the cluster's control plane, to a managed node group or to a Fargate profile of
    the cluster (anywhere in the app, so ones added after ``EksCluster`` count too) must have IPv4: EKS
    refuses IPv6-only subnets for them, in IPv6 clusters as well. The control plane's subnets must span at
    least two zones. Subnets are matched by their id token, so only subnets made in this app are checked.
    """

    def __init__(self, cluster: eks.Cluster) -> None:
        self._cluster = cluster

    def validate(self) -> list[str]:
        root = self._cluster.node.root
        constructs = root.node.find_all()  # one jsii call; the loops below only touch what they need
        subnets: dict[str, ec2.CfnSubnet] = {}
        for c in constructs:
            if isinstance(c, ec2.CfnSubnet):
                subnets[c.ref] = c
        name = self._cluster.cluster_name
        cfn_cluster = self._cluster.node.default_child
        errors: list[str] = []

        def ipv6_only(ids: list[str]) -> list[str]:
            return [subnets[i].node.path for i in ids if i in subnets and _is_true(subnets[i].ipv6_native)]

        placements: list[tuple[str, list[str]]] = []
        if isinstance(cfn_cluster, eks.CfnCluster):
            vpc_config = cfn_cluster.resources_vpc_config
            ids = list(getattr(vpc_config, "subnet_ids", None) or [])
            placements.append((f"{self._cluster.node.path} (control plane)", ids))
            zones = {subnets[i].availability_zone for i in ids if i in subnets}
            if len(ids) == len([i for i in ids if i in subnets]) and ids and len(zones) < 2:
                errors.append(f"{self._cluster.node.path}: the control plane's subnets are all in {sorted(zones)}; "
                              "EKS needs subnets in at least two availability zones")
        for c in constructs:
            if isinstance(c, eks.CfnNodegroup) and c.cluster_name == name:
                placements.append((f"{c.node.path} (managed node group)", list(c.subnets or [])))
            elif isinstance(c, eks.CfnFargateProfile) and c.cluster_name == name:
                placements.append((f"{c.node.path} (Fargate profile)", list(c.subnets or [])))
        for what, ids in placements:
            bad = ipv6_only(ids)
            if bad:
                errors.append(f"{what}: IPv6-only subnet(s) {bad}; EKS places clusters, nodes and Fargate pods "
                              "only in subnets with IPv4 (dual-stack for an IPv6 cluster): choose dual-stack subnets")
        return errors


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
