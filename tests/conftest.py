"""Session-wide fixtures. The default app is synthesized once per test run, by the CDK CLI
(so `cdk.json` is exercised too), whichever xdist worker asks first; the others wait on a lock
and read the same cloud assembly."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest
from support.paths import NODE_DIR, ROOT, tool_env

# The network-namespace harness's fixtures (lab, namespaces, underlay, cni_bin, daemon...) for every folder.
pytest_plugins = ["support.netns"]

os.environ.setdefault("JSII_NODE", str(NODE_DIR / "node"))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


def _synth_once(shared: Path) -> Path:
    out = shared / "cdk.out"
    done = shared / "synth.rc"
    with open(shared / "synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            proc = subprocess.run(
                ["cdk", "synth", "--no-lookups", "--quiet", "--output", str(out)],
                cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=900,
            )
            (shared / "synth.log").write_text(proc.stdout + proc.stderr)
            done.write_text(str(proc.returncode))
    if done.read_text() != "0":
        pytest.fail("the default app failed to synthesize:\n" + (shared / "synth.log").read_text()[-6000:])
    return out


@pytest.fixture(scope="session")
def cdk_out(tmp_path_factory, worker_id) -> Path:
    """The default app's cloud assembly, synthesized with cdk-nag checks on (a finding fails it)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base
    return _synth_once(shared)


@pytest.fixture(scope="session")
def templates(cdk_out) -> dict[str, dict]:
    """Stack name -> synthesized template, for every stack of the default app."""
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    found = {}
    for name, artifact in manifest["artifacts"].items():
        if artifact.get("type") == "aws:cloudformation:stack":
            found[name] = json.loads((cdk_out / artifact["properties"]["templateFile"]).read_text())
    return found
