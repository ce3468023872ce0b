"""Subnet CIDR reservations deploy in every region: CloudFormation's type where the region has it, EC2's API
through a custom resource elsewhere, with IAM limited to the two calls on the one subnet."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import cfnlint
import pytest
from aws_cdk import aws_ec2 as ec2
from eksnet import nag
from eksnet.cidr_reservation import CFN_TYPE_REGIONS, CidrReservationType, SubnetCidrReservation, cfn_type_available
from eksnet.environment import EksnetStack
from support.cfn import cidr_reservations, props, ref_id, resources, sdk_call
from support.envs import deploy_env
from support.gates import cfn_lint

CFN_TYPE = "AWS::EC2::SubnetCidrReservation"


def _synth(outdir: Path, region: str) -> tuple[dict, Path]:
    app = cdk.App(outdir=str(outdir), context={"aws:cdk:enable-path-metadata": True})
    stack = EksnetStack(app, "Reservations", deploy_env=deploy_env(region=region))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=False,
                  subnet_configuration=[ec2.SubnetConfiguration(name="p", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                                                                cidr_mask=24)])
    nag.acknowledge(vpc, "AwsSolutions-VPC7", "test VPC: only the reservations are under test here")
    subnet = vpc.isolated_subnets[0]
    SubnetCidrReservation(stack, "Prefixes", subnet=subnet, cidr="10.0.0.128/25",
                          reservation_type=CidrReservationType.PREFIX, description="pods")
    SubnetCidrReservation(stack, "Explicit", subnet=subnet, cidr="10.0.0.64/26",
                          reservation_type=CidrReservationType.EXPLICIT)
    nag.add_checks(app)
    assembly = app.synth()
    return assembly.get_stack_by_name("Reservations").template, Path(outdir) / "Reservations.template.json"


@pytest.fixture(scope="module")
def by_region(tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    return {r: _synth(tmp_path_factory.mktemp(r), r) for r in ("eu-central-1", "us-east-1")}


def test_the_region_table_is_cfn_lints_own_per_region_schema_list():
    providers = Path(cfnlint.__file__).parent / "data" / "schemas" / "providers"
    having = {f.stem for f in providers.glob("*-*.json") if CFN_TYPE in json.loads(f.read_text())}
    assert having == set(CFN_TYPE_REGIONS)
    assert cfn_type_available("us-east-1") and not cfn_type_available("eu-central-1")


def test_where_cloudformation_has_the_type_it_is_used(by_region):
    template, _ = by_region["us-east-1"]
    found = cidr_reservations(template)
    assert [r["native"] for r in found] == [True, True]
    assert not resources(template, "AWS::Lambda::Function")
    assert {(r["Cidr"], r["ReservationType"]) for r in found} == {("10.0.0.128/25", "prefix"), ("10.0.0.64/26", "explicit")}


def test_elsewhere_a_custom_resource_creates_and_deletes_the_same_reservation(by_region):
    template, _ = by_region["eu-central-1"]
    assert not resources(template, CFN_TYPE)
    found = {r["Cidr"]: r for r in cidr_reservations(template)}
    assert set(found) == {"10.0.0.128/25", "10.0.0.64/26"}
    assert found["10.0.0.128/25"]["ReservationType"] == "prefix"
    assert found["10.0.0.128/25"]["Description"] == "pods"
    for _, p in props(template, "Custom::SubnetCidrReservation"):
        create, update, delete = (sdk_call(p[k]) for k in ("Create", "Update", "Delete"))
        assert (create["service"], create["action"]) == ("EC2", "createSubnetCidrReservation")
        assert create["physicalResourceId"] == {"responsePath": "SubnetCidrReservation.SubnetCidrReservationId"}
        assert update == create  # a changed reservation is a new one; CloudFormation deletes the old
        assert delete["action"] == "deleteSubnetCidrReservation"
        assert delete["parameters"] == {"SubnetCidrReservationId": "PHYSICAL:RESOURCEID:"}
        assert p["InstallLatestAwsSdk"] is False


def test_the_custom_resource_may_call_only_the_two_actions_on_its_own_subnet(by_region):
    template, _ = by_region["eu-central-1"]
    subnet_ids = {ref_id(r["SubnetId"]) for r in cidr_reservations(template)}
    statements = [s for _, p in props(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]
    assert statements
    for s in statements:
        assert sorted(s["Action"]) == ["ec2:CreateSubnetCidrReservation", "ec2:DeleteSubnetCidrReservation"]
        parts = s["Resource"]["Fn::Join"][1]
        assert ":subnet/" in parts[-2] and ref_id(parts[-1]) in subnet_ids


def test_the_stacks_reservations_share_one_policy_and_wait_for_it(by_region):
    # One function and role per stack (aws-cdk-lib's singleton): one policy for every reservation, not one each.
    template, _ = by_region["eu-central-1"]
    [policy] = resources(template, "AWS::IAM::Policy")
    reservations = resources(template, "Custom::SubnetCidrReservation")
    assert len(reservations) == 2
    assert all(policy in r["DependsOn"] for r in reservations.values())


def test_the_custom_resource_function_logs_with_a_retention(by_region):
    template, _ = by_region["eu-central-1"]
    (fn,) = [p for _, p in props(template, "AWS::Lambda::Function")]
    groups = resources(template, "AWS::Logs::LogGroup")
    assert ref_id(fn["LoggingConfig"]["LogGroup"]) in groups
    assert all(g["Properties"]["RetentionInDays"] == 30 for g in groups.values())


@pytest.mark.parametrize("region", ["eu-central-1", "us-east-1"])
def test_each_form_passes_cfn_lint_in_its_own_region(by_region, region):
    _, path = by_region[region]
    assert not cfn_lint([path]), region


def test_an_environment_agnostic_stack_gets_the_form_that_works_everywhere():
    stack = cdk.Stack(cdk.App(), "Agnostic")
    subnet = ec2.Subnet.from_subnet_attributes(stack, "S", subnet_id="subnet-1", availability_zone="x")
    r = SubnetCidrReservation(stack, "R", subnet=subnet, cidr="10.0.0.0/28",
                              reservation_type=CidrReservationType.EXPLICIT)
    assert not r.native


@pytest.mark.parametrize("bad", ["prefix", 1, None])
def test_a_reservation_type_that_is_not_the_enum_is_refused_with_its_name(bad):
    stack = cdk.Stack(cdk.App(), "Bad")
    subnet = ec2.Subnet.from_subnet_attributes(stack, "S", subnet_id="subnet-1", availability_zone="x")
    with pytest.raises(TypeError, match=r"SubnetCidrReservation.reservation_type must be CidrReservationType \(one of PREFIX, EXPLICIT\)"):
        SubnetCidrReservation(stack, "R", subnet=subnet, cidr="10.0.0.0/28", reservation_type=bad)


@pytest.mark.parametrize("bad", ["10.0.0.5/28", "10.0.0.0", "not-a-cidr"])
def test_a_literal_cidr_that_is_not_a_network_is_refused_before_anything_is_made(bad):
    stack = cdk.Stack(cdk.App(), "BadCidr")
    subnet = ec2.Subnet.from_subnet_attributes(stack, "S", subnet_id="subnet-1", availability_zone="x")
    with pytest.raises(ValueError, match=r"SubnetCidrReservation.cidr '.*' (has host bits|needs a prefix|is not a CIDR)"):
        SubnetCidrReservation(stack, "R", subnet=subnet, cidr=bad, reservation_type=CidrReservationType.PREFIX)
    assert stack.node.try_find_child("R") is None
