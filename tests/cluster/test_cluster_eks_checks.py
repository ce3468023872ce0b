"""The eksnet EKS gate finds public endpoints and missing control-plane logs on native clusters; it can fail synth."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_eks_v2 as eks
from eksnet import nag
from eksnet.eks_checks import RULE_LOGGING, RULE_PUBLIC_ENDPOINT, findings_for_template
from eksnet.environment import EksnetStack
from support.envs import deploy_env

ALL_LOGS = [{"Type": t} for t in ("api", "audit", "authenticator", "controllerManager", "scheduler")]


def _template(vpc_config: dict, logging: dict | None) -> dict:
    properties = {"RoleArn": "arn:aws:iam::123456789012:role/eks", "ResourcesVpcConfig": vpc_config}
    if logging is not None:
        properties["Logging"] = logging
    return {"Resources": {"Cluster": {"Type": "AWS::EKS::Cluster", "Properties": properties}}}


def _rules(template) -> set[str]:
    return {rule for rule, _, _ in findings_for_template(template)}


def test_private_cluster_with_all_logs_has_no_finding():
    t = _template(
        {"EndpointPublicAccess": False, "EndpointPrivateAccess": True}, {"ClusterLogging": {"EnabledTypes": ALL_LOGS}}
    )
    assert findings_for_template(t) == []


def test_public_access_is_a_finding():
    t = _template({"EndpointPublicAccess": True}, {"ClusterLogging": {"EnabledTypes": ALL_LOGS}})
    assert _rules(t) == {RULE_PUBLIC_ENDPOINT}


def test_public_access_is_cloudformations_default_when_absent():
    t = _template({}, {"ClusterLogging": {"EnabledTypes": ALL_LOGS}})
    assert _rules(t) == {RULE_PUBLIC_ENDPOINT}


def test_a_missing_log_type_is_a_finding_that_names_it():
    t = _template({"EndpointPublicAccess": False}, {"ClusterLogging": {"EnabledTypes": ALL_LOGS[:-1]}})
    [(rule, lid, detail)] = findings_for_template(t)
    assert (rule, lid) == (RULE_LOGGING, "Cluster") and "scheduler" in detail


def test_no_logging_at_all_is_a_finding():
    assert _rules(_template({"EndpointPublicAccess": "false"}, None)) == {RULE_LOGGING}


def test_other_resources_are_ignored():
    assert findings_for_template({"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": {}}}}) == []


def _app_with_l1_cluster(tmp_path, *, public: bool, acknowledged: bool = False) -> cdk.App:
    # A bare CfnCluster: cdk-nag's own EKS rules do not look at native clusters, so any finding is ours.
    app = cdk.App(outdir=str(tmp_path / "out"))
    stack = EksnetStack(app, "Probe", deploy_env=deploy_env())
    cluster = eks.CfnCluster(
        stack,
        "Cluster",
        role_arn="arn:aws:iam::123456789012:role/eks",
        resources_vpc_config=eks.CfnCluster.ResourcesVpcConfigProperty(
            subnet_ids=["subnet-1", "subnet-2"], endpoint_public_access=public, endpoint_private_access=True
        ),
    )
    if acknowledged:
        nag.acknowledge(cluster, "Eksnet::Eksnet-EKS1", "probe: a public endpoint on purpose in this test")
        nag.acknowledge(cluster, "Eksnet::Eksnet-EKS2", "probe: no control-plane logs on purpose in this test")
    nag.add_checks(app)
    return app


def _eksnet_report(tmp_path) -> dict:
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    return next(p for p in report["pluginReports"] if p["pluginName"] == "Eksnet")


def test_the_gate_fails_synth_of_a_public_unlogged_cluster(tmp_path):
    with pytest.raises(RuntimeError, match="Acknowledge with .Eksnet::Eksnet-EKS1."):
        _app_with_l1_cluster(tmp_path, public=True).synth()
    plugin = _eksnet_report(tmp_path)
    assert plugin["conclusion"] == "failure"
    assert {v["ruleName"] for v in plugin["violations"]} == {RULE_PUBLIC_ENDPOINT, RULE_LOGGING}
    assert plugin["violations"][0]["violatingConstructs"][0]["constructPath"] == "Probe/Cluster"


def test_the_gate_passes_once_each_finding_is_acknowledged_with_a_reason(tmp_path):
    _app_with_l1_cluster(tmp_path, public=True, acknowledged=True).synth()
    plugin = _eksnet_report(tmp_path)
    assert plugin["violations"] == []
    assert {s["ruleName"] for s in plugin["suppressedViolations"]} == {RULE_PUBLIC_ENDPOINT, RULE_LOGGING}
