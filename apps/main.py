"""The default app of ``cdk.json``: every seed scenario as a stack.

Run by the CDK CLI (``npx cdk synth``) or directly (``python -m apps.main``); both
write the cloud assembly to ``cdk.out/``. Each scenario lives in its own module
and exposes ``add_stacks(app, deploy_env)``; adding a scenario is one line in
``SCENARIOS``.
"""

from __future__ import annotations

import importlib
import os

import aws_cdk as cdk
from eksnet import nag
from eksnet.environment import DeployEnv

# Module names under apps/, in the order their stacks are added.
SCENARIOS: tuple[str, ...] = (
    "apps.network",
    "apps.clusters",
    "apps.calico",
    "apps.multus",
)


def build_app(outdir: str | None = None, context: dict | None = None) -> cdk.App:
    # The CLI passes its output directory in CDK_OUTDIR; without the CLI, write to ./cdk.out.
    outdir = outdir or os.environ.get("CDK_OUTDIR") or "cdk.out"
    app = cdk.App(outdir=outdir, context=context or None)
    deploy_env = DeployEnv.from_context(app)
    for name in SCENARIOS:
        importlib.import_module(name).add_stacks(app, deploy_env)
    nag.add_checks(app)
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
