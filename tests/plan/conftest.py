"""Fixtures of the plan tests: the default app's plan, from the session's cloud assembly."""

from __future__ import annotations

import pytest
from eksnet.plan import Plan, build_plan


@pytest.fixture(scope="session")
def plan(cdk_out) -> Plan:
    return build_plan(cdk_out)
