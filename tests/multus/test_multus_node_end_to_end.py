"""Node bootstrap and NAD together with the node runtime, on one "node" namespace: the interface script names
the ENI and writes the daemon's pools from the ENI's delegated prefixes (fake IMDSv2), eksnet-ipamd serves them,
and a NAD built with ``EksnetIpam(pool="multus1")`` gives a pod an address from those prefixes.
(The node runtime's macvlan type stands in for ipvlan, which this kernel lacks: see TESTING.md.)"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from eksnet.multus import CniVersion, EksnetIpam, Macvlan, NetworkAttachmentDefinition
from eksnet.multus.node import MultusInterfaces

pytestmark = [pytest.mark.netns]


@pytest.fixture
def runtime(node, run_interfaces, tmp_path):
    """The node runtime installed into a temporary bin dir and its daemon running in the node namespace."""
    assert run_interfaces(MultusInterfaces(device_indexes=(1,), wait_seconds=5)).returncode == 0
    bin_dir, sock = tmp_path / "bin", tmp_path / "ipamd.sock"
    subprocess.run([sys.executable, "-m", "node_runtime.install", "--dest", str(bin_dir), "--socket", str(sock),
                    "--daemon-dir", str(tmp_path / "sbin")], check=True, capture_output=True,
                   cwd=Path(__file__).resolve().parents[2])
    daemon = subprocess.Popen(
        ["ip", "netns", "exec", node["ns"], str(tmp_path / "sbin" / "eksnet-ipamd"), "serve",
         "--config", str(node["root"] / "etc/eksnet/ipamd.json"), "--socket", str(sock),
         "--state-dir", str(tmp_path / "state"), "--reconcile-interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60  # a loaded CI machine: start-up loads pyroute2 before the socket opens
        while not sock.exists():
            if daemon.poll() is not None:
                pytest.fail("eksnet-ipamd exited: " + daemon.stdout.read())
            if time.monotonic() > deadline:
                pytest.fail("eksnet-ipamd did not open its socket within 60 s")
            time.sleep(0.05)
        pod = f"emie{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", pod], check=True)
        try:
            yield {"bin": bin_dir, "sock": sock, "pod": pod}
        finally:
            subprocess.run(["ip", "netns", "del", pod], capture_output=True)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def cni(node, runtime, command: str, nad: NetworkAttachmentDefinition) -> tuple[int, dict]:
    config = {"name": nad.name, **nad.cni_config()}
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c-e2e", "CNI_NETNS": f"/run/netns/{runtime['pod']}",
           "CNI_IFNAME": "net1", "CNI_PATH": str(runtime["bin"]), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "EKSNET_IPAMD_SOCKET": str(runtime["sock"])}
    proc = subprocess.run(["ip", "netns", "exec", node["ns"], str(runtime["bin"] / config["type"])],
                          input=json.dumps(config), env=env, capture_output=True, text=True, timeout=60)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {})


def test_pod_gets_addresses_from_its_nodes_delegated_prefixes(node, runtime):
    nad = NetworkAttachmentDefinition(name="macvlan-multus1", cni_version=CniVersion.V1_0_0,
                                      interface=Macvlan(master="multus1", plugin="eksnet-macvlan"),
                                      ipam=EksnetIpam(pool="multus1"))
    rc, result = cni(node, runtime, "ADD", nad)
    try:
        assert rc == 0, result
        addresses = [ipaddress.ip_interface(ip["address"]).ip for ip in result["ips"]]
        prefixes = [ipaddress.ip_network(p) for p in ("10.0.96.16/28", "10.0.96.48/28", "2600:1f14:1:2:3::/80")]
        assert {a.version for a in addresses} == {4, 6}
        assert all(any(a in p for p in prefixes) for a in addresses), addresses
    finally:
        assert cni(node, runtime, "DEL", nad)[0] == 0
