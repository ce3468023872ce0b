"""The template gates run on every synthesized stack: cfn-lint and (at synth) cdk-nag."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .paths import ROOT, VENV_BIN


@dataclass(frozen=True)
class LintFinding:
    rule: str
    level: str
    message: str
    path: str

    def __str__(self) -> str:
        return f"{self.level} {self.rule} {self.path}: {self.message}"


def cfn_lint(templates: list[Path]) -> list[LintFinding]:
    """Run cfn-lint with the project's `.cfnlintrc.yaml`; returns what it reports (errors and kept warnings)."""
    if not templates:
        raise ValueError("no templates to lint")
    proc = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), "--format", "json", *map(str, templates)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    try:
        found = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        found = None
    # cfn-lint's exit code is a bit mask of the levels found (2 error, 4 warning, 8 info);
    # anything else, or output that is not its JSON, means it did not run.
    if not isinstance(found, list) or proc.returncode & ~0b1110:
        raise RuntimeError(f"cfn-lint failed to run (rc={proc.returncode}): {proc.stderr[-2000:]}")
    return [
        LintFinding(
            rule=m["Rule"]["Id"], level=m["Level"], message=m["Message"],
            path=f'{Path(m["Filename"]).name}:{"/".join(map(str, m["Location"]["Path"] or []))}',
        )
        for m in found
    ]
