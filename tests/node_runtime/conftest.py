"""Fixtures for the node runtime tests: installed executables, a daemon per test, network
namespaces and a veth underlay, all named with a unique ``eksnt<pid>`` prefix and always removed."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nrt_support import FORWARDERS, Daemon, Namespaces, Underlay, install_bin  # noqa: E402


@pytest.fixture(scope="session", params=FORWARDERS)
def cni_bin(request, tmp_path_factory) -> Path:
    """The executables as `make cni-bin` installs them, once with each forwarder (the native one
    needs `make native`, which `make test` runs first); eksnet-ipamd beside them (``ipamd()``)."""
    return install_bin(tmp_path_factory.mktemp(f"cni-bin-{request.param}"), request.param)


@pytest.fixture(scope="session")
def daemon_bin(tmp_path_factory) -> Path:
    """One installation for the tests that only talk to the daemon (its socket, its CLI): no
    forwarder runs there, so they need not run twice."""
    return install_bin(tmp_path_factory.mktemp("daemon-bin"))


@pytest.fixture
def daemon(tmp_path, cni_bin):
    d = Daemon(tmp_path / "ipamd", cni_bin)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def socket_daemon(tmp_path, daemon_bin):
    """A daemon for tests that speak to its socket directly (not through an executable)."""
    d = Daemon(tmp_path / "ipamd", daemon_bin)
    d.start()
    yield d
    d.stop()


_counter = itertools.count()


@pytest.fixture
def namespaces():
    ns = Namespaces(f"eksnt{os.getpid()}-{next(_counter)}")
    yield ns
    ns.cleanup()


@pytest.fixture
def underlay():
    """A veth pair in the test's namespace; plugins put their links on ``underlay.master``."""
    u = Underlay(f"ek{os.getpid() % 100000}{next(_counter)}")
    yield u
    u.cleanup()


class Clock:
    """A settable clock for the IPAM service (cooldowns, grace periods) in the pure, in-process tests."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()
