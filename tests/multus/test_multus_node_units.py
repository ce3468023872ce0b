"""The node units: the setup at boot, the hotplug unit udev starts, and kubelet's drop-in gating its start on the
readiness check. Written by ``python -m node_runtime.node.units`` and checked by ``systemd-analyze verify``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from node_runtime.node import units

REPO = Path(__file__).resolve().parents[2]
PYTHON, SRC = "/usr/bin/python3.11", "/opt/eksnet/src"


@pytest.fixture
def unit_dir(tmp_path):
    """The units as the user data installs them, next to stand-ins for kubelet.service and eksnet-ipamd.service."""
    subprocess.run([sys.executable, "-m", "node_runtime.node.units", "--python", PYTHON, "--src", SRC,
                    "--unit-dir", str(tmp_path), "--udev-dir", str(tmp_path / "udev")],
                   check=True, capture_output=True, cwd=REPO)
    (tmp_path / "kubelet.service").write_text("[Unit]\nDescription=kubelet stand-in\n[Service]\nExecStart=/bin/true\n")
    ipamd = (REPO / "node_runtime/data/eksnet-ipamd.service").read_text().replace("@BINDIR@", "/usr/bin")
    (tmp_path / "eksnet-ipamd.service").write_text(ipamd)
    return tmp_path


def verify(unit_dir: Path, *names: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:"}  # trailing ':' keeps the built-in path too
    return subprocess.run(["systemd-analyze", "verify", "--man=no", *names], capture_output=True, text=True,
                          cwd=unit_dir, env=env, timeout=60)


def test_units_and_kubelet_drop_in_pass_systemd_analyze_verify(unit_dir):
    proc = verify(unit_dir, "kubelet.service", units.SETUP_UNIT, units.HOTPLUG_UNIT)
    assert proc.returncode == 0, proc.stderr
    assert "eksnet" not in proc.stderr, proc.stderr


def test_verify_catches_a_broken_drop_in(unit_dir):
    # the gate can fail: the drop-in is read with kubelet.service
    dropin = unit_dir / "kubelet.service.d" / units.KUBELET_DROPIN
    dropin.write_text(dropin.read_text().replace("ExecStartPre=/usr/bin/env", "ExecStartPre=/nonexistent/env"))
    proc = verify(unit_dir, "kubelet.service")
    assert proc.returncode != 0 and "/nonexistent/env" in proc.stderr


def test_kubelet_starts_after_the_setup_and_the_daemon_and_only_when_ready(unit_dir):
    dropin = (unit_dir / "kubelet.service.d" / units.KUBELET_DROPIN).read_text()
    assert f"After={units.SETUP_UNIT} {units.IPAMD_UNIT}" in dropin
    assert f"Wants={units.SETUP_UNIT} {units.IPAMD_UNIT}" in dropin
    assert (f"ExecStartPre=/usr/bin/env PYTHONPATH={SRC} {PYTHON} -m node_runtime.node.ready "
            "--config /etc/eksnet/multus.json --wait 120") in dropin
    # a failed check fails kubelet's start; systemd tries again, without a start limit to give up at
    assert "Restart=always" in dropin and "StartLimitIntervalSec=0" in dropin


def test_setup_runs_at_every_boot_after_the_daemon_and_before_kubelet(unit_dir):
    unit = (unit_dir / units.SETUP_UNIT).read_text()
    assert "After=network.target eksnet-ipamd.service" in unit and "Before=kubelet.service" in unit
    assert "WantedBy=multi-user.target" in unit and "-m node_runtime.node.setup" in unit


def test_udev_starts_the_hotplug_setup_for_every_eni_added(unit_dir):
    rule = (unit_dir / "udev" / units.UDEV_RULE).read_text()
    assert 'ACTION=="add", SUBSYSTEM=="net"' in rule
    assert f'ENV{{SYSTEMD_WANTS}}+="{units.HOTPLUG_UNIT}"' in rule
    hotplug = (unit_dir / units.HOTPLUG_UNIT).read_text()
    # no RemainAfterExit: every start runs the setup again
    assert "Type=oneshot" in hotplug and "RemainAfterExit" not in hotplug and "--wait 60" in hotplug
