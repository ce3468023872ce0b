"""``-c eksnet:stacks=...`` builds only the named stacks and the stacks they build on, each as the whole app has it.

Each selection is synthesized once, in its own process as the CLI runs the app (path metadata and version
reporting on, as ``cdk synth`` sets them; aws-cdk-lib's template validation off: it changes no template), and
compared with the default app's templates (``cdk_out``), asset hashes aside.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import aws_cdk as cdk
import pytest
from support.envs import deploy_env
from support.paths import ROOT, VENV_BIN, tool_env

from apps import main
from apps.context import AppSettings

# Each stack -> what selecting it alone builds: itself and the stacks it builds on.
SELECTIONS = {
    "EksnetNetwork": {"EksnetNetwork"},
    "EksnetNetworkIpv6Only": {"EksnetNetworkIpv6Only"},
    "EksnetIpv6Cluster": {"EksnetNetwork", "EksnetIpv6Cluster"},  # its VPC is EksnetNetwork's
    "EksnetIpv4Cluster": {"EksnetIpv4Cluster"},
    "EksnetCalico": {"EksnetIpv4Cluster", "EksnetCalico"},  # Calico runs on myipv4cluster
    "EksnetMultus": {"EksnetMultus"},
}
HASH = re.compile(r"[0-9a-f]{64}")


def _synth(out: Path, stacks: str) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """The selection's templates and the warnings of each stack (as the CLI would print them), by stack name."""
    context = {"eksnet:stacks": stacks, "aws:cdk:enable-path-metadata": True, "aws:cdk:version-reporting": True}
    env = tool_env() | {"CDK_OUTDIR": str(out), "CDK_CONTEXT_JSON": json.dumps(context), "CDK_VALIDATION": "false"}
    proc = subprocess.run([str(VENV_BIN / "python"), "-m", "apps.main"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _templates(out), _messages(out, "aws:cdk:warning")


def _messages(out: Path, *types: str) -> dict[str, list[str]]:
    """The data of each stack's metadata entries of ``types`` (as the CLI would print them), by stack name."""
    manifest = json.loads((out / "manifest.json").read_text())
    found = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            metadata = dict(artifact.get("metadata", {}))
            if "additionalMetadataFile" in artifact:  # where aws-cdk-lib writes it now
                metadata |= json.loads((out / artifact["additionalMetadataFile"]).read_text())
            found[name] = [str(m["data"]) for entries in metadata.values() for m in entries if m["type"] in types]
    return found


def _templates(out: Path) -> dict[str, dict]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {name: _normal(json.loads((out / a["properties"]["templateFile"]).read_text()))
            for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"}


def _normal(value):
    """Asset hashes (64 hex digits, ``aws:asset:*`` metadata) masked: the same source may stage differently."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if not k.startswith("aws:asset:")}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return HASH.sub("<hash>", value) if isinstance(value, str) else value


def _imports(value) -> set[str]:
    """The export names a template imports (``Fn::ImportValue``)."""
    if isinstance(value, dict):
        found = {value["Fn::ImportValue"]} if isinstance(value.get("Fn::ImportValue"), str) else set()
        return found.union(*(_imports(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_imports(v) for v in value))
    return set()


def _without_exports(template: dict, names: set[str]) -> dict:
    outputs = {k: o for k, o in template.get("Outputs", {}).items() if o.get("Export", {}).get("Name") not in names}
    trimmed = {k: v for k, v in template.items() if k != "Outputs"}
    return trimmed | ({"Outputs": outputs} if outputs else {})


@pytest.fixture(scope="module")
def full(cdk_out) -> dict[str, dict]:
    return _templates(cdk_out)


def test_without_the_key_the_app_builds_every_stack(full):
    assert set(full) == set(SELECTIONS)


@pytest.mark.parametrize("selected", sorted(SELECTIONS))
def test_selecting_a_stack_builds_it_and_what_it_builds_on_as_the_whole_app_does(tmp_path, full, selected):
    built, warnings = _synth(tmp_path / "out", selected)
    assert set(built) == SELECTIONS[selected]
    # A stack that a left-out stack builds on lacks just the exports that one imports, and synth says so.
    left_out = set(full) - set(built)
    missing = set().union(*(_imports(full[name]) for name in left_out))
    for name, template in built.items():
        assert template == _without_exports(full[name], missing), name
    warned = {name for name in built if any(f"{name} is synthesized without" in w for w in warnings[name])}
    assert warned == {name for name in built if full[name] != _without_exports(full[name], missing)}


def test_two_stacks_can_be_selected_at_once():
    settings = AppSettings(deploy_env=deploy_env(), stacks=("EksnetCalico", "EksnetNetworkIpv6Only"))
    built = main.add_stacks(cdk.App(), settings)
    assert list(built) == ["EksnetNetworkIpv6Only", "EksnetIpv4Cluster", "EksnetCalico"]  # the default app's order


def test_an_unknown_stack_is_one_error_that_lists_the_stacks(tmp_path):
    with pytest.raises(ValueError) as raised:
        main.build_app(outdir=str(tmp_path / "out"), context={"eksnet:stacks": "EksnetMultus,EksnetMultis"})
    message = str(raised.value)
    assert "eksnet:stacks: unknown stack 'EksnetMultis'" in message
    assert all(name in message for name in SELECTIONS)


def test_selecting_a_stack_imports_only_the_scenarios_it_builds():
    context = {"eksnet:stacks": "EksnetIpv6Cluster"}
    code = ("import sys; from apps.main import build_app; build_app('OUT'); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('apps.', 'eksnet.multus', 'eksnet.calico')))))")
    proc = subprocess.run([str(VENV_BIN / "python"), "-c", code.replace("OUT", "/nonexistent-not-written")], cwd=ROOT,
                          env=tool_env() | {"CDK_CONTEXT_JSON": json.dumps(context)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["apps.clusters", "apps.context", "apps.main", "apps.network"]


def test_no_stack_of_the_default_app_warns_about_cross_stack_reference_strength(cdk_out):
    by_stack = _messages(cdk_out, "aws:cdk:warning", "aws:cdk:acknowledged-rules")
    warnings = [w for messages in by_stack.values() for w in messages]
    assert warnings, "the default app's metadata holds no warnings or acknowledgments at all: nothing was read"
    assert not [w for w in warnings if "crossStackReferences" in w or "cross-stack-reference strength" in w]
