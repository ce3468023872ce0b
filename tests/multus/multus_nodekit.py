"""Helpers of the node-side Multus tests (a module of its own: test modules import it by name)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from eksnet.multus.node import MultusInterfaces

REPO = Path(__file__).resolve().parents[2]


def run_setup(node, interfaces: MultusInterfaces, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m node_runtime.node.setup`` in the node namespace, with the config ``interfaces`` renders."""
    config = node["root"] / "etc/eksnet/multus.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(interfaces.node_config()))
    environ = {"PATH": os.environ["PATH"], "EKSNET_IMDS": node["imds"], "EKSNET_ROOT": str(node["root"]),
               **(env or {})}
    return subprocess.run(["ip", "netns", "exec", node["ns"], sys.executable, "-m", "node_runtime.node.setup", *args],
                          env=environ, capture_output=True, text=True, timeout=60, cwd=REPO)


