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


def stack_region(template: Path) -> str | None:
    """The region of the stack a template belongs to, read from its cloud assembly's manifest (None outside one)."""
    manifest = template.parent / "manifest.json"
    if not manifest.is_file():
        return None
    for artifact in json.loads(manifest.read_text()).get("artifacts", {}).values():
        if artifact.get("type") == "aws:cloudformation:stack" and \
                artifact.get("properties", {}).get("templateFile") == template.name:
            env = artifact.get("environment", "")
            region = env.rsplit("/", 1)[-1]
            return None if region in ("", "unknown-region") else region
    return None


def cfn_lint(templates: list[Path], *, region: str | None = None) -> list[LintFinding]:
    """Run cfn-lint with the project's `.cfnlintrc.yaml`, each template in its own stack's region.

    A template inside a cloud assembly is linted in the region of its stack's environment (its manifest); a
    loose template in ``region``, which must then be given. A resource type that the region's CloudFormation
    does not have is an error there (E3006), so the gate catches what would fail only at deploy time.
    """
    if not templates:
        raise ValueError("no templates to lint")
    by_region: dict[str, list[Path]] = {}
    for t in templates:
        r = stack_region(Path(t)) or region
        if r is None:
            raise ValueError(f"{t}: not in a cloud assembly with an explicit environment; pass region=")
        by_region.setdefault(r, []).append(Path(t))
    found: list[LintFinding] = []
    for r, paths in sorted(by_region.items()):
        found += _cfn_lint_in(r, paths)
    return found


def _cfn_lint_in(region: str, templates: list[Path]) -> list[LintFinding]:
    proc = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), "--format", "json", "--regions", region, "--", *map(str, templates)],
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
            rule=m["Rule"]["Id"], level=m["Level"], message=f"[{region}] {m['Message']}",
            path=f'{Path(m["Filename"]).name}:{"/".join(map(str, m["Location"]["Path"] or []))}',
        )
        for m in found
    ]
