"""The node setup (``python -m node_runtime.node.setup``), run for real in a network namespace made for each test, against a fake
IMDSv2 (``fake_imds.py``) served inside that namespace; files it writes go under a temporary root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eksnet.multus.node import MultusInterfaces, RpFilter

from node_runtime.lab import ip

MAC1, MAC2 = "0a:00:5e:00:00:01", "0a:00:5e:00:00:02"  # as the node fixture (conftest.py) sets them
REPO = Path(__file__).resolve().parents[2]


def link(node, name: str) -> dict:
    return json.loads(ip("-n", node["ns"], "-j", "link", "show", "dev", name))[0]


def rp_filter(node, name: str) -> str:
    return ip("netns", "exec", node["ns"], "cat", f"/proc/sys/net/ipv4/conf/{name}/rp_filter").strip()


def test_enis_are_renamed_by_device_index_and_brought_up(node, run_interfaces):
    proc = run_interfaces(MultusInterfaces(device_indexes=(1, 2), wait_seconds=5))
    assert proc.returncode == 0, proc.stderr
    assert link(node, "multus1")["address"] == MAC1
    assert link(node, "multus2")["address"] == MAC2
    assert "UP" in link(node, "multus1")["flags"] and "UP" in link(node, "multus2")["flags"]


@pytest.mark.parametrize("mode", list(RpFilter))
def test_rp_filter_is_set_on_each_interface(node, run_interfaces, mode):
    assert run_interfaces(MultusInterfaces(rp_filter=mode, wait_seconds=5)).returncode == 0
    assert rp_filter(node, "multus1") == str(mode.value)


def test_networkd_is_told_to_leave_the_enis_alone(node, run_interfaces):
    assert run_interfaces(MultusInterfaces(device_indexes=(1, 2), wait_seconds=5)).returncode == 0
    unit = (node["root"] / "etc/systemd/network/05-eksnet-multus1.network").read_text()
    assert f"MACAddress={MAC1}" in unit and "Unmanaged=yes" in unit


def test_ipamd_pools_come_from_each_enis_delegated_prefixes(node, run_interfaces):
    assert run_interfaces(MultusInterfaces(device_indexes=(1, 2), wait_seconds=5)).returncode == 0
    config = json.loads((node["root"] / "etc/eksnet/ipamd.json").read_text())
    assert config == {"pools": {"multus1": {"ranges": [
        [{"subnet": "10.0.96.16/28"}, {"subnet": "10.0.96.48/28"}],
        [{"subnet": "2600:1f14:1:2:3::/80"}],
    ], "delegated": True}}}


def test_no_ipamd_config_when_pools_are_off(node, run_interfaces):
    assert run_interfaces(MultusInterfaces(ipam_pools=False, wait_seconds=5)).returncode == 0
    assert not (node["root"] / "etc/eksnet/ipamd.json").exists()


def test_running_again_changes_nothing(node, run_interfaces):
    interfaces = MultusInterfaces(device_indexes=(1, 2), wait_seconds=5)
    assert run_interfaces(interfaces).returncode == 0
    first = (node["root"] / "etc/eksnet/ipamd.json").read_text()
    proc = run_interfaces(interfaces)
    assert proc.returncode == 0, proc.stderr
    assert link(node, "multus1")["address"] == MAC1
    assert (node["root"] / "etc/eksnet/ipamd.json").read_text() == first


def test_a_missing_eni_fails_after_the_wait_but_the_others_are_configured(node, run_interfaces):
    started = time.monotonic()
    proc = run_interfaces(MultusInterfaces(device_indexes=(1, 3), wait_seconds=2))
    assert proc.returncode == 1
    assert "device 3: no Multus ENI configured after 2s" in proc.stderr
    assert time.monotonic() - started < 30
    assert link(node, "multus1")["address"] == MAC1


def test_an_eni_attached_during_the_wait_is_picked_up(node):
    # The lifecycle-hook Lambda attaches ENIs while the node boots: the setup must wait for them.
    ip("-n", node["ns"], "link", "set", "eth2", "name", "hidden2")
    ip("-n", node["ns"], "link", "set", "hidden2", "address", "0a:00:5e:00:00:99")
    config = node["root"] / "etc/eksnet/multus.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(MultusInterfaces(device_indexes=(2,), wait_seconds=20).node_config()))
    env = {"PATH": os.environ["PATH"], "EKSNET_IMDS": node["imds"], "EKSNET_ROOT": str(node["root"])}
    proc = subprocess.Popen(["ip", "netns", "exec", node["ns"], sys.executable, "-m", "node_runtime.node.setup"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(1.5)
    ip("-n", node["ns"], "link", "set", "hidden2", "address", MAC2)  # "attached" now
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert link(node, "multus2")["address"] == MAC2


def test_the_setup_waits_for_the_prefixes_it_was_told_to_expect(node, run_interfaces):
    # device 2 has no delegated prefix in IMDS: with one expected, it is not configured (IMDS may lag the Lambda)
    proc = run_interfaces(MultusInterfaces(device_indexes=(1, 2), wait_seconds=2, ipv4_prefix_count=1))
    assert proc.returncode == 1
    assert "device 2: no Multus ENI configured" in proc.stderr
    assert link(node, "multus1")["address"] == MAC1


def test_a_hotplug_run_for_one_device_keeps_the_other_pools(node, run_interfaces):
    interfaces = MultusInterfaces(device_indexes=(1, 2), wait_seconds=5)
    assert run_interfaces(interfaces).returncode == 0
    before = json.loads((node["root"] / "etc/eksnet/ipamd.json").read_text())
    proc = run_interfaces(interfaces, "--device", "2", "--wait", "2")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((node["root"] / "etc/eksnet/ipamd.json").read_text()) == before


def test_the_daemon_is_told_to_reload_only_when_its_pools_change(node, run_interfaces, tmp_path):
    marker = tmp_path / "reloads"
    env = {"EKSNET_IPAMD_RELOAD": f"/bin/sh -c 'echo reload >> {marker}'"}
    interfaces = MultusInterfaces(device_indexes=(1, 2), wait_seconds=5)
    assert run_interfaces(interfaces, env=env).returncode == 0
    assert run_interfaces(interfaces, env=env).returncode == 0
    assert marker.read_text().splitlines() == ["reload"]
