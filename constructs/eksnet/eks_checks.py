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
