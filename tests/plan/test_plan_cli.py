"""`eksnet plan` as a command: a table for people, JSON for tools, and one line with exit 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from eksnet.plan import console_main, main
from plan_testkit import write_assembly
from support.paths import ROOT, VENV_BIN


def run(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eksnet.plan", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def assert_one_line_exit_2(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr


def test_the_table_names_every_stack_zone_and_figure(cdk_out, templates):
    proc = run(str(cdk_out))
    assert proc.returncode == 0, proc.stderr
    for stack in templates:
        assert f"Stack {stack} " in proc.stdout
    for heading in ("zone eu-central-1a", "Nodes per subnet", "Quotas (needed / default)", "Fixed hourly cost",
                    "maxPods:", "ENIs per instance:", "Multus multus1"):
        assert heading in proc.stdout


def test_json_is_the_same_plan_for_tools(cdk_out, plan):
    proc = run(str(cdk_out), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [s["name"] for s in data["stacks"]] == [s.name for s in plan.stacks]
    subnets = [n for s in data["stacks"] for v in s["vpcs"] for n in v["subnets"]]
    assert len(subnets) == sum(len(v.subnets) for s in plan.stacks for v in s.vpcs)
    assert {"id", "zone", "kind", "ipv4", "ipv6", "routes", "reservations", "capacity", "tier"} <= set(subnets[0])
    assert data["hourly_total"] == plan.hourly_total


def test_stack_selects_one_stack(cdk_out):
    data = json.loads(run(str(cdk_out), "--stack", "EksnetMultus", "--json").stdout)
    assert [s["name"] for s in data["stacks"]] == ["EksnetMultus"]


def test_the_console_script_is_eksnet_plan(cdk_out):
    proc = subprocess.run([str(VENV_BIN / "eksnet"), "plan", str(cdk_out), "--stack", "EksnetNetwork"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Stack EksnetNetwork" in proc.stdout


def test_eksnet_without_plan_is_a_usage_error(capsys):
    assert console_main([]) == 2
    assert console_main(["draw"]) == 2
    assert "usage: eksnet plan" in capsys.readouterr().err


def test_a_missing_cloud_assembly_is_one_line(tmp_path):
    assert_one_line_exit_2(run(str(tmp_path / "nowhere")), "is not a directory")


def test_a_directory_without_manifest_is_one_line(tmp_path):
    assert_one_line_exit_2(run(str(tmp_path)), "no manifest.json")


@pytest.mark.parametrize("content", ["{not json", "[]", '{"artifacts": 3}'])
def test_an_unreadable_manifest_is_one_line(tmp_path, content):
    (tmp_path / "manifest.json").write_text(content)
    assert_one_line_exit_2(run(str(tmp_path)), "cannot read")


def test_a_missing_template_is_one_line(tmp_path):
    write_assembly(tmp_path, {"A": {"Resources": {}}})
    (tmp_path / "A.template.json").unlink()
    assert_one_line_exit_2(run(str(tmp_path)), "stack A", "cannot read")


@pytest.mark.parametrize("resources", [{"X": []}, {"X": {"Properties": {}}}, {"X": {"Type": "AWS::EC2::VPC",
                                                                                     "Properties": "x"}}])
def test_a_resource_cloudformation_would_refuse_is_one_line(tmp_path, resources):
    write_assembly(tmp_path, {"A": {"Resources": resources}})
    assert_one_line_exit_2(run(str(tmp_path)), "stack A", "resource X")


def test_an_unknown_stack_is_one_line_naming_the_known_ones(cdk_out):
    assert_one_line_exit_2(run(str(cdk_out), "--stack", "NoSuchStack"), "NoSuchStack", "EksnetMultus")


def test_a_bad_option_is_one_line():
    assert_one_line_exit_2(run("--no-such-option"), "unrecognized arguments")


def test_an_unwritable_diagram_is_one_line(cdk_out, tmp_path):
    assert_one_line_exit_2(run(str(cdk_out), "--diagram", str(tmp_path / "missing-dir" / "x.svg")),
                           "cannot write the diagram")


def test_main_returns_instead_of_exiting(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
