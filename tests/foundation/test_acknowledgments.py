"""Acknowledgments: only ``eksnet.nag`` makes them, every reason is written once in ``eksnet.nag_reasons``, and
``python -m eksnet.nag`` shows a reader every acknowledgment of a synthesized app, per stack, with its reason."""

from __future__ import annotations

import ast
import json
import re

import aws_cdk as cdk
import pytest
from eksnet import nag
from eksnet.nag_reasons import REASONS
from support.paths import ROOT

SOURCES = sorted([*(ROOT / "constructs" / "eksnet").rglob("*.py"), *(ROOT / "apps").rglob("*.py")])
# Calls that acknowledge other than by naming a table entry: aws-cdk-lib's own (Validations.of(x).acknowledge,
# Acknowledgment, Annotations.of(x).acknowledge_warning) and a reason written inline (nag.acknowledge).
ACKNOWLEDGING = {"acknowledge", "Acknowledgment", "acknowledge_warning"}
NAMED_ENTRY = re.compile(r"acknowledge_as\(\s*[^,]+,\s*\"([^\"]+)\",\s*\"([^\"]+)\"")
ENTRIES = [(g, n) for g, entries in REASONS.items() for n in entries]


def _source(path) -> str:
    return path.read_text()


def _acknowledging_calls(source: str) -> list[str]:
    """``ast.unparse`` of each call in ``source`` that acknowledges (docstrings and comments are not calls)."""
    return [ast.unparse(node) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in ACKNOWLEDGING]


# --- one place ----------------------------------------------------------------------------------------------------


def test_only_eksnet_nag_acknowledges_in_the_package_and_the_apps():
    found = {str(p.relative_to(ROOT)): _acknowledging_calls(_source(p)) for p in SOURCES if p.name != "nag.py"}
    assert not {p: calls for p, calls in found.items() if calls}, "use nag.acknowledge_as(construct, group, name)"


def test_the_check_finds_each_way_of_acknowledging_it_is_for():
    samples = ['cdk.Validations.of(x).acknowledge(r)', 'cdk.Acknowledgment(id="a", reason="b")',
               'cdk.Annotations.of(s).acknowledge_warning("id", "why")', 'nag.acknowledge(x, "AwsSolutions-L1", "why")',
               'from aws_cdk import Acknowledgment\nAcknowledgment(id="a", reason="b")']
    assert all(_acknowledging_calls(s) for s in samples)
    assert not _acknowledging_calls('nag.acknowledge_as(x, "EksVpc", "named-zones")\n"""nag.acknowledge(x, r, y)"""')


def test_every_reason_is_written_once():
    reasons = [r.reason for entries in REASONS.values() for r in entries.values()]
    assert len(reasons) == len(set(reasons)), [r for r in reasons if reasons.count(r) > 1]


@pytest.mark.parametrize(("group", "name"), ENTRIES, ids=lambda v: v)
def test_every_entry_states_its_rule_its_finding_and_a_specific_reason(group, name):
    entry = REASONS[group][name]
    assert re.fullmatch(r"AwsSolutions-\w+|(Eksnet|CloudFormation-Validate|Annotation)::\S+", entry.rule), entry.rule
    assert entry.finding.strip()
    assert len(entry.reason.strip()) >= 20


def test_every_entry_of_the_table_is_used_by_a_construct_or_an_app():
    used = {m for p in SOURCES for m in NAMED_ENTRY.findall(_source(p))}
    assert used <= set(ENTRIES), f"named but not in the table: {used - set(ENTRIES)}"
    assert set(ENTRIES) <= used, f"in the table but used nowhere: {set(ENTRIES) - used}"


# --- acknowledge_as and its guards -----------------------------------------------------------------------------------


def _acknowledged(construct) -> list[dict]:
    return [e.data for e in construct.node.metadata if e.type == nag.ACKNOWLEDGED_RULES]


def test_acknowledge_as_records_the_tables_reason_for_each_finding():
    stack = cdk.Stack(cdk.App(), "S")
    nag.acknowledge_as(stack, "EksCluster", "node-role", findings=nag.managed_policy_findings(["A", "B"]))
    reason = REASONS["EksCluster"]["node-role"].reason
    assert _acknowledged(stack) == [
        {"AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/A]": reason},
        {"AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/B]": reason},
    ]


def test_acknowledge_as_refuses_an_entry_the_table_lacks():
    with pytest.raises(ValueError, match=r"no acknowledgment EksCluster/nope .*EksCluster/node-role"):
        nag.acknowledge_as(cdk.Stack(cdk.App(), "S"), "EksCluster", "nope")


def test_acknowledge_as_refuses_a_whole_iam_rule_without_its_findings():
    with pytest.raises(ValueError, match="finding by finding"):
        nag.acknowledge_as(cdk.Stack(cdk.App(), "S"), "PerIpMultus", "describe-enis")


def test_acknowledge_as_keeps_the_guard_against_a_blanket_suppression():
    with pytest.raises(ValueError, match="blanket"):
        nag.acknowledge_as(cdk.App(), "EksVpc", "named-zones")


def test_the_same_reason_again_on_one_construct_is_recorded_once():
    stack = cdk.Stack(cdk.App(), "S")
    nag.acknowledge_as(stack, "EksVpc", "named-zones")
    nag.acknowledge_as(stack, "EksVpc", "named-zones")
    assert len(_acknowledged(stack)) == 1


def test_a_second_reason_for_one_rule_on_one_construct_is_refused():
    stack = cdk.Stack(cdk.App(), "S")
    nag.acknowledge(stack, "AwsSolutions-VPC7", "the first reason, long enough to pass")
    with pytest.raises(ValueError, match="already acknowledged on S for another reason"):
        nag.acknowledge(stack, "AwsSolutions::AwsSolutions-VPC7", "a second reason, long enough to pass")


def test_resource_findings_name_only_the_wildcards_as_cdk_nag_prints_them():
    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="123456789012", region="eu-central-1"))
    arn = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    exact = stack.format_arn(service="ec2", resource="vpc", resource_name="vpc-1")
    assert nag.resource_findings(stack, ["*", arn, exact]) == [
        "Resource::*", "Resource::arn:<AWS::Partition>:ec2:eu-central-1:123456789012:network-interface/*"]


# --- the view, on the default app ------------------------------------------------------------------------------------


def _recorded(cdk_out) -> set[tuple[str, str, str, str]]:
    """(stack, construct path, rule, reason) of every acknowledgment in the assembly's metadata, read directly."""
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    found = set()
    for stack, artifact in manifest["artifacts"].items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        for path, entries in json.loads((cdk_out / artifact["additionalMetadataFile"]).read_text()).items():
            for e in entries:
                if e["type"] == "aws:cdk:acknowledged-rules":
                    found |= {(stack, path.strip("/"), rule, why) for rule, why in e["data"].items()}
    return found


@pytest.fixture(scope="module")
def view(cdk_out):
    return nag.read_acknowledgments(cdk_out)


def test_the_view_shows_every_acknowledgment_the_assembly_records(cdk_out, view):
    shown = {(a.stack, f"{a.stack}/{a.at}".rstrip("/"), a.rule, a.reason) for items in view.values() for a in items}
    assert shown == _recorded(cdk_out)


def test_the_view_gives_every_stack_of_the_app(cdk_out, templates, view):
    assert list(view) == list(templates)


def test_the_views_eksnet_reasons_are_the_tables_word_for_word(view):
    ours = [a for items in view.values() for a in items if a.group is not None]
    assert ours
    for a in ours:
        entry = REASONS[a.group][a.name]
        assert a.reason == entry.reason
        assert a.rule.split("[")[0].endswith(entry.rule), (a.rule, entry.rule)


def test_every_acknowledgment_of_the_default_app_not_in_the_table_is_aws_cdk_libs_own(view):
    # aws-cdk-lib acknowledges two findings of its template check on every flow log it makes.
    others = {(a.at, a.rule) for items in view.values() for a in items if a.group is None}
    assert others == {("EksVpc/Vpc/FlowLog", "CloudFormation-Validate::F3002"),
                      ("EksVpc/Vpc/FlowLog", "CloudFormation-Validate::F3003")}


def test_the_view_says_what_each_suppressed_finding_was_acknowledged_by(cdk_out, view):
    report = json.loads((cdk_out / "validation-report.json").read_text())
    by_key = {(f"{a.stack}/{a.at}", a.rule): a for items in view.values() for a in items}
    for plugin in report["pluginReports"]:
        for s in plugin["suppressedViolations"]:
            a = by_key[(s["acknowledgedAt"], s["acknowledgedId"])]
            assert {f"{a.stack}/{p}" for p in a.suppressed} == {c["constructPath"] for c in s["violatingConstructs"]}


def test_the_printed_view_gives_each_stack_and_each_reason_once_per_stack(cdk_out, view, capsys):
    assert nag.main([str(cdk_out)]) == 0
    out = capsys.readouterr().out
    blocks = re.split(r"^(?=\S)", out, flags=re.M)
    assert [b.split(":")[0] for b in blocks if b] == list(view)
    for block, items in zip([b for b in blocks if b], view.values(), strict=True):
        for reason in {a.reason for a in items}:
            assert block.count(f"why: {reason}\n") == 1, reason
        for a in items:
            assert f"    {a.rule}  at {a.at or '(the stack)'}" in block


def test_the_json_view_holds_the_same_acknowledgments(cdk_out, view, capsys):
    assert nag.main([str(cdk_out), "--json", "--stack", "EksnetMultus"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert list(shown) == ["EksnetMultus"]
    assert [(a["at"], a["rule"], a["reason"]) for a in shown["EksnetMultus"]] == [
        (a.at, a.rule, a.reason) for a in view["EksnetMultus"]]


# --- the view's inputs, by hand ---------------------------------------------------------------------------------------


def _assembly(tmp_path, *, report: dict | None) -> None:
    ack = {"type": "aws:cdk:acknowledged-rules"}
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {
        "A": {"type": "aws:cloudformation:stack", "additionalMetadataFile": "A.metadata.json"}}}))
    (tmp_path / "A.metadata.json").write_text(json.dumps({
        "/A/Role": [ack | {"data": {"AwsSolutions::AwsSolutions-IAM4[Policy::x]": "used by nothing in this app"}}],
        "/A/Vpc": [ack | {"data": {"CloudFormation-Validate::W3010": REASONS["EksVpc"]["named-zones"].reason}}],
    }))
    if report is not None:
        (tmp_path / "validation-report.json").write_text(json.dumps(report))


def test_an_acknowledgment_of_a_reported_plugin_that_suppressed_nothing_says_so(tmp_path, capsys):
    _assembly(tmp_path, report={"pluginReports": [{"pluginName": "AwsSolutions", "suppressedViolations": []}]})
    (role, vpc) = nag.read_acknowledgments(tmp_path)["A"]
    assert (role.suppressed, role.group) == ((), None)
    assert (vpc.suppressed, vpc.group, vpc.name) == (None, "EksVpc", "named-zones")  # no report covers W3010
    nag.main([str(tmp_path)])
    assert "AwsSolutions::AwsSolutions-IAM4[Policy::x]  at Role  (suppressed nothing in this app)" in capsys.readouterr().out


def test_an_assembly_without_a_validation_report_still_shows_its_acknowledgments(tmp_path):
    _assembly(tmp_path, report=None)
    assert [a.at for a in nag.read_acknowledgments(tmp_path)["A"]] == ["Role", "Vpc"]


@pytest.mark.parametrize(("argv", "message"), [
    (["{d}/nowhere"], "is not a directory"),
    (["{d}"], "no manifest.json in"),
    (["{d}/asm", "--stack", "B"], "no stack B in"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "asm").mkdir()
    _assembly(tmp_path / "asm", report=None)
    assert nag.main([a.format(d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m eksnet.nag: error: ") and message in err[0], err


def test_a_construct_found_again_through_jsii_is_the_same_construct():
    from aws_cdk import aws_iam as iam

    stack = cdk.Stack(cdk.App(), "S")
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    nag.acknowledge(role.node.default_child, "AwsSolutions-IAM4", "the first reason, long enough to pass")
    with pytest.raises(ValueError, match="already acknowledged on S/R/Resource for another reason"):
        nag.acknowledge(role.node.find_child("Resource"), "AwsSolutions-IAM4", "a second reason, long enough to pass")


def test_a_conflict_among_several_findings_acknowledges_none_of_them():
    stack = cdk.Stack(cdk.App(), "S")
    first = nag.managed_policy_findings(["B"])
    nag.acknowledge(stack, f"AwsSolutions-IAM4[{first[0]}]", "an earlier reason, long enough to pass")
    with pytest.raises(ValueError, match="another reason"):
        nag.acknowledge_as(stack, "EksCluster", "node-role", findings=nag.managed_policy_findings(["A", "B"]))
    assert _acknowledged(stack) == [{f"AwsSolutions::AwsSolutions-IAM4[{first[0]}]":
                                     "an earlier reason, long enough to pass"}]
