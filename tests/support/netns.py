"""The tests' network-namespace harness: pytest fixtures over ``node_runtime.lab`` (the one harness the tests,
benchmarks and demo share). Every test gets its own ``Lab`` with a unique prefix, removed after the test whatever
happened; tests/conftest.py registers these fixtures for every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from node_runtime.lab import Daemon, Lab, install_bin, unique_prefix

FORWARDERS = ("python", "native")  # every executable test runs with both (the cni_bin fixture)


@pytest.fixture
def lab():
    """Namespaces, underlays, links and daemons of one test, named ``ek<pid><n>...`` and always removed."""
    if os.geteuid() != 0:
        pytest.fail("needs root to create network namespaces (CI runs as root, see TESTING.md)")
    with Lab(unique_prefix("ek")) as made:
        yield made
    assert not made.leftovers(), f"the lab left {made.leftovers()}"


@pytest.fixture
def namespaces(lab):
    """The test's network namespaces (``add`` returns the path a CNI_NETNS names)."""
    return lab.namespaces


@pytest.fixture
def underlay(lab):
    """A veth pair in the test's namespace; plugins put their links on ``underlay.master``."""
    return lab.underlay()


@pytest.fixture(scope="session", params=FORWARDERS)
def cni_bin(request, tmp_path_factory) -> Path:
    """The executables as `make cni-bin` installs them, once with each forwarder (the native one needs
    `make native`, which `make test` runs first); eksnet-ipamd beside them (``node_runtime.lab.ipamd``)."""
    return install_bin(tmp_path_factory.mktemp(f"cni-bin-{request.param}"), request.param)


@pytest.fixture(scope="session")
def daemon_bin(tmp_path_factory) -> Path:
    """One installation for the tests that only talk to the daemon (its socket, its CLI): no forwarder runs
    there, so they need not run twice."""
    return install_bin(tmp_path_factory.mktemp("daemon-bin"))


def _running_daemon(base: Path, bin_dir: Path):
    d = Daemon(base, bin_dir)
    d.start()
    yield d
    d.stop()


@pytest.fixture
def daemon(tmp_path, cni_bin):
    yield from _running_daemon(tmp_path / "ipamd", cni_bin)


@pytest.fixture
def socket_daemon(tmp_path, daemon_bin):
    """A daemon for tests that speak to its socket directly (not through an executable)."""
    yield from _running_daemon(tmp_path / "ipamd", daemon_bin)
