"""Each gate is shown able to fail: a broken template and an unsuppressed finding are caught."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from eksnet import nag
from eksnet.environment import EksnetStack
from support.envs import deploy_env
from support.gates import cfn_lint


def test_cfn_lint_gate_reports_errors_in_a_broken_template(tmp_path):
    broken = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"CidrBlock": "10.0.0.0/24", "Bogus": 1}},
            "Ghost": {"Type": "AWS::EC2::Route", "Properties": {"RouteTableId": {"Ref": "Missing"}}},
        },
    }
    path = tmp_path / "Broken.template.json"
    path.write_text(json.dumps(broken))
    errors = [f for f in cfn_lint([path], region="eu-central-1") if f.level == "Error"]
    # E3002: a property the resource type does not have; E1020: a Ref to nothing.
    assert {f.rule for f in errors} >= {"E3002", "E1020"}, errors


def _vpc_app(tmp_path, acknowledged: bool) -> cdk.App:
    app = cdk.App(outdir=str(tmp_path / "out"))
    stack = EksnetStack(app, "NagProbe", deploy_env=deploy_env())
    vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0,
                  subnet_configuration=[ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PUBLIC)])
    if acknowledged:
        nag.acknowledge(vpc, "AwsSolutions-VPC7", "probe VPC: flow logs deliberately absent in this test")
    nag.add_checks(app)
    return app


def test_nag_gate_fails_synth_on_an_unsuppressed_finding(tmp_path):
    with pytest.raises(RuntimeError, match="AwsSolutions-VPC7"):
        _vpc_app(tmp_path, acknowledged=False).synth()
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    rules = {v["ruleName"] for r in report["pluginReports"] for v in r["violations"]}
    assert "AwsSolutions-VPC7" in rules


def test_nag_gate_passes_once_the_finding_is_acknowledged_with_a_reason(tmp_path):
    _vpc_app(tmp_path, acknowledged=True).synth()
    report = json.loads((tmp_path / "out" / "validation-report.json").read_text())
    suppressed = report["pluginReports"][0]["suppressedViolations"]
    assert [s["ruleName"] for s in suppressed] == ["AwsSolutions-VPC7"]


def test_acknowledge_refuses_a_suppression_without_a_specific_reason():
    app = cdk.App()
    stack = cdk.Stack(app, "S")
    with pytest.raises(ValueError, match="specific reason"):
        nag.acknowledge(stack, "AwsSolutions-VPC7", "n/a")


def test_acknowledge_refuses_a_blanket_suppression_on_the_app():
    with pytest.raises(ValueError, match="blanket"):
        nag.acknowledge(cdk.App(), "AwsSolutions-VPC7", "a long enough reason that is still a blanket")


def test_the_default_app_runs_the_nag_gate(tmp_path, monkeypatch):
    from apps import main

    monkeypatch.setattr(main, "add_stacks", lambda app, settings: {})  # the gates alone
    app = main.build_app(outdir=str(tmp_path / "out"))
    stack = EksnetStack(app, "NagProbe", deploy_env=deploy_env())
    ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PUBLIC)])
    with pytest.raises(RuntimeError, match="AwsSolutions-VPC7"):
        app.synth()


def test_cfn_lint_gate_lints_in_the_stacks_region_and_refuses_a_type_it_lacks(tmp_path):
    # AWS::EC2::SubnetCidrReservation is registered in us-east-1's CloudFormation, not in eu-central-1's.
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Reservation": {"Type": "AWS::EC2::SubnetCidrReservation", "Properties": {
            "SubnetId": "subnet-0123456789abcdef0", "Cidr": "10.0.0.0/28", "ReservationType": "prefix"}}},
    }
    path = tmp_path / "Region.template.json"
    path.write_text(json.dumps(template))
    assert not cfn_lint([path], region="us-east-1")
    assert "E3006" in {f.rule for f in cfn_lint([path], region="eu-central-1")}
