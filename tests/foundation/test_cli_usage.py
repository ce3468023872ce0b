"""Both command-line tools answer bad input with one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import json
import subprocess

import pytest
from support.paths import ROOT, VENV_BIN

BAD = [
    ["eksnet.max_pods", "bogus"],
    ["eksnet.max_pods", "calc"],
    ["eksnet.max_pods", "calc", "nope.large"],
    ["eksnet.max_pods", "calc", "m4.large", "--ipv6"],
    ["eksnet.policy_eval", "--from", "a/b"],
    ["eksnet.policy_eval", "missing.json", "--from", "a/b", "--to", "c/d"],
    ["eksnet.policy_eval", "{snapshot}", "--from", "ns/nope", "--to", "10.0.0.1", "--port", "80"],
    ["eksnet.policy_eval", "{snapshot}", "--from", "10.0.0.1", "--to", "not-an-address", "--port", "80"],
    ["eksnet.policy_eval", "{malformed}", "--from", "10.0.0.1", "--to", "10.0.0.2", "--port", "80"],
    ["eksnet.nag", "no-such-cdk.out"],
    ["eksnet.nag", "{snapshot}"],
    ["eksnet.nag", "--bogus"],
]


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a))
def test_usage_errors_are_one_line_and_exit_2(argv, tmp_path):
    (tmp_path / "snapshot.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": []}))
    (tmp_path / "malformed.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"kind": "Pod", "metadata": "not-a-mapping"}]}))
    args = [a.format(snapshot=tmp_path / "snapshot.json", malformed=tmp_path / "malformed.json") for a in argv]
    proc = subprocess.run([str(VENV_BIN / "python"), "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"python -m {argv[0]}") and ": error: " in lines[0]
