"""Where the tests' stacks deploy: an explicit ``DeployEnv``, as the library requires (it has no default)."""

from __future__ import annotations

from eksnet.environment import DeployEnv

ACCOUNT = "123456789012"  # the apps' placeholder account: synth only, never deployed
REGION = "eu-central-1"  # the walkthrough's region, the default app's


def deploy_env(**changes) -> DeployEnv:
    """``DeployEnv`` in ``REGION`` with the placeholder account; ``changes`` override fields (``azs=...``)."""
    return DeployEnv(**{"account": ACCOUNT, "region": REGION, **changes})
