"""Fixtures of the Multus tests: a network namespace standing for a fresh node, with a fake IMDSv2 inside it
(the namespace and its links come from the test's lab: tests/support/netns.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from eksnet.multus.node import MultusInterfaces
from multus_nodekit import run_setup

HERE = Path(__file__).parent
MAC1, MAC2, MAC0 = "0a:00:5e:00:00:01", "0a:00:5e:00:00:02", "0a:00:5e:00:00:00"


@pytest.fixture
def node(tmp_path, lab):
    """A namespace standing for a fresh node: eth1/eth2 are the attached Multus ENIs (down, kernel names), with
    MACs MAC1/MAC2 that the fake IMDS lists at device numbers 1 and 2; eth1 has two delegated IPv4 /28 prefixes
    and one IPv6 /80. Files the script writes go under ``node["root"]``."""
    ns = os.path.basename(lab.namespaces.add("node"))
    for name, peer, mac in (("eth1", "peer1", MAC1), ("eth2", "peer2", MAC2)):
        lab.veth(name, peer, netns=ns, address=mac)
    imds = {
        MAC0: {"device-number": "0"},
        MAC1: {"device-number": "1", "ipv4-prefix": "10.0.96.16/28\n10.0.96.48/28",
               "ipv6-prefix": "2600:1f14:1:2:3::/80"},
        MAC2: {"device-number": "2"},
    }
    (tmp_path / "imds.json").write_text(json.dumps(imds))
    port = 18000 + int(uuid.uuid4().hex[:3], 16) % 1000
    server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(HERE / "fake_imds.py"), str(port),
                               str(tmp_path / "imds.json")])
    try:
        for _ in range(100):
            if subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-X", "PUT", "-H",
                               "X-aws-ec2-metadata-token-ttl-seconds: 5", f"http://127.0.0.1:{port}/latest/api/token"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        root = tmp_path / "root"
        root.mkdir()
        yield {"ns": ns, "imds": f"http://127.0.0.1:{port}", "root": root}
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def run_interfaces(node):
    """Runs the node setup for ``MultusInterfaces(...)`` in the node namespace against the fake IMDS."""
    def run(interfaces: MultusInterfaces, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return run_setup(node, interfaces, *args, env=env)
    return run
