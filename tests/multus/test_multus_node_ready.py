"""The readiness check kubelet's drop-in runs (``python -m node_runtime.node.ready``), run for real in a node
namespace against the fake IMDSv2 and a real ``eksnet-ipamd``: it passes only when every expected ENI is attached,
named, up, its pool written from what IMDS shows, and the daemon answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eksnet.multus.node import MultusInterfaces
from multus_nodekit import run_setup

from node_runtime.node.ready import pool_names

pytestmark = [pytest.mark.netns]
REPO = Path(__file__).resolve().parents[2]
TWO = MultusInterfaces(device_indexes=(1, 2), wait_seconds=5)


def ready(node, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "EKSNET_IMDS": node["imds"], "EKSNET_ROOT": str(node["root"])}
    return subprocess.run(["ip", "netns", "exec", node["ns"], sys.executable, "-m", "node_runtime.node.ready", *args],
                          env=env, capture_output=True, text=True, timeout=60, cwd=REPO)


@pytest.fixture
def daemon(node, tmp_path, lab):
    """Starts eksnet-ipamd in the node namespace, reading the pools the setup wrote, on the socket the config
    names; the lab stops it after the test."""
    def start():
        sock = node["root"] / "run/eksnet/ipamd.sock"
        sock.parent.mkdir(parents=True, exist_ok=True)
        d = lab.daemon(tmp_path / "ipamd", command=[sys.executable, "-m", "node_runtime.ipamd"], netns=node["ns"],
                       socket=sock, cooldown=None, extra=("--config", str(node["root"] / "etc/eksnet/ipamd.json")))
        d.start()
        return d

    return start


def test_passes_when_enis_are_configured_and_the_daemon_serves(node, daemon):
    assert run_setup(node, TWO).returncode == 0
    daemon()
    proc = ready(node)
    assert proc.returncode == 0, proc.stderr
    assert "ready (multus1, multus2)" in proc.stderr


def test_fails_before_the_setup_ran(node, daemon):
    (node["root"] / "etc/eksnet").mkdir(parents=True)
    (node["root"] / "etc/eksnet/multus.json").write_text(__import__("json").dumps(TWO.node_config()))
    (node["root"] / "etc/eksnet/ipamd.json").write_text('{"pools": {}}')
    daemon()
    proc = ready(node)
    assert proc.returncode == 1
    assert "multus1: no such link" in proc.stderr and "multus2: no such link" in proc.stderr


def test_fails_without_the_daemon(node):
    assert run_setup(node, TWO).returncode == 0
    proc = ready(node)
    assert proc.returncode == 1 and "eksnet-ipamd does not answer" in proc.stderr


def test_fails_when_an_expected_eni_never_came(node, daemon):
    assert run_setup(node, MultusInterfaces(device_indexes=(1, 3), wait_seconds=1)).returncode == 1
    daemon()
    proc = ready(node)
    assert proc.returncode == 1
    assert "multus3: no ENI attached at device index 3" in proc.stderr
    assert "multus1" not in proc.stderr  # the one that came is fine


def test_fails_when_a_link_is_down(node, daemon):
    assert run_setup(node, TWO).returncode == 0
    daemon()
    subprocess.run(["ip", "-n", node["ns"], "link", "set", "multus2", "down"], check=True)
    proc = ready(node)
    assert proc.returncode == 1 and "multus2: link is down" in proc.stderr


def test_fails_when_the_pool_no_longer_matches_the_enis_prefixes(node, daemon):
    assert run_setup(node, TWO).returncode == 0
    daemon()
    (node["root"] / "etc/eksnet/ipamd.json").write_text('{"pools": {"multus1": {"ranges": [[{"subnet": "10.9.0.0/28"}]]}}}')
    proc = ready(node)
    assert proc.returncode == 1 and "pool multus1" in proc.stderr


def test_wait_retries_until_the_node_becomes_ready(node, daemon):
    assert run_setup(node, TWO).returncode == 0
    env = {"PATH": os.environ["PATH"], "EKSNET_IMDS": node["imds"], "EKSNET_ROOT": str(node["root"])}
    proc = subprocess.Popen(["ip", "netns", "exec", node["ns"], sys.executable, "-m", "node_runtime.node.ready",
                             "--wait", "30"], env=env, stderr=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(1.5)
    assert proc.poll() is None  # no daemon yet: still waiting
    daemon()
    _, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err


@pytest.mark.parametrize(("status", "names"), [
    ({"named_pools": ["multus1", "multus2"]}, {"multus1", "multus2"}),
    ({"named_pools": {"multus1": {"served": True}, "multus2": {"served": False, "error": "bad"}}}, {"multus1"}),
    ({"pools": {"multus1": {}}}, {"multus1"}),
    ({"pools": [{"name": "multus1", "ranges": []}]}, {"multus1"}),
    ({"pools": [{"ranges": [], "network": "n"}]}, None),  # today's status: pools unnamed, only the answer counts
    ({"pools": []}, None),
])
def test_pool_names_are_read_from_every_status_shape(status, names):
    assert pool_names(status) == names
