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


@pytest.fixture
def daemon(tmp_path, cni_bin):
    d = Daemon(tmp_path / "ipamd", cni_bin)
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
