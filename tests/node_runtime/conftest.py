"""Fixtures of the node runtime tests. Installed executables, daemons, namespaces and underlays come from the
one harness (tests/support/netns.py over ``node_runtime.lab``); this adds what only these tests use."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


class Clock:
    """A settable clock for the IPAM service (cooldowns, grace periods) in the pure, in-process tests."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()
