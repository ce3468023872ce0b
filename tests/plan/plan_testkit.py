"""Helpers of the plan tests: small hand-written cloud assemblies for what the default app does not contain."""

from __future__ import annotations

import json
from pathlib import Path


def write_assembly(directory: Path, stacks: dict[str, dict], *, region: str = "eu-central-1") -> Path:
    """A minimal cloud assembly: manifest.json listing ``stacks`` (name -> template) in ``region``."""
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for name, template in stacks.items():
        (directory / f"{name}.template.json").write_text(json.dumps(template))
        artifacts[name] = {
            "type": "aws:cloudformation:stack",
            "environment": f"aws://111122223333/{region}",
            "properties": {"templateFile": f"{name}.template.json"},
        }
    (directory / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return directory
