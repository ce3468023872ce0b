"""The default app synthesizes offline, with explicit environments, and passes both template gates."""

from __future__ import annotations

import json

from support.gates import cfn_lint


def test_every_stack_writes_a_template(cdk_out, templates):
    assert templates, "the default app has no stacks"
    for name, template in templates.items():
        assert (cdk_out / f"{name}.template.json").is_file()
        assert template["Resources"], f"{name} has no resources"


def test_every_stack_has_an_explicit_environment(cdk_out):
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert stacks
    for artifact in stacks:
        assert artifact["environment"] == "aws://123456789012/eu-central-1"


def test_synth_asked_aws_for_nothing(cdk_out):
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    assert not manifest.get("missing"), f"synth needed lookups: {manifest['missing']}"


def test_every_template_passes_cfn_lint(cdk_out, templates):
    findings = cfn_lint([cdk_out / f"{name}.template.json" for name in templates])
    assert not findings, "\n".join(map(str, findings))


def test_no_validation_plugin_left_a_finding_unsuppressed(cdk_out):
    # aws-cdk-lib lists a plugin here once it has findings or suppressions; synth itself fails on
    # an unsuppressed one (test_gates_can_fail shows the default app runs the AwsSolutions checks).
    report = json.loads((cdk_out / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin["pluginName"]
        assert plugin["violations"] == []


def test_every_nag_suppression_names_a_resource_and_a_reason(cdk_out):
    report = json.loads((cdk_out / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        for suppressed in plugin.get("suppressedViolations", []):
            assert len(suppressed["reason"].strip()) >= 20, suppressed
            stacks = {c["constructPath"].split("/")[0] for c in suppressed["violatingConstructs"]}
            assert suppressed["acknowledgedAt"] not in stacks, f"blanket suppression at a stack: {suppressed}"


def test_synth_prints_nothing_a_user_cannot_act_on(tmp_path):
    import subprocess

    from support.paths import ROOT, VENV_BIN, tool_env

    proc = subprocess.run([str(VENV_BIN / "python"), "-m", "apps.main"], cwd=ROOT,
                          env=tool_env() | {"CDK_OUTDIR": str(tmp_path / "out")},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (proc.stdout + proc.stderr).strip(), (proc.stdout + proc.stderr)[-3000:]
