"""`make demo` as part of the suite: the whole Multus flow of EksnetMultus on this machine (see demo/).

Runs the demo exactly as the Makefile does (CNI executables installed by `make cni-bin`'s installer into a
temporary directory, then ``python -m demo``) in a subprocess, and reads its verdict and its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.paths import ROOT, tool_env

pytestmark = [pytest.mark.netns]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.fail("the demo needs root (network namespaces); CI runs as root, see TESTING.md")
    tmp = tmp_path_factory.mktemp("demo")
    subprocess.run([sys.executable, "-m", "node_runtime.install", "--dest", str(tmp / "bin"),
                    "--daemon-dir", str(tmp / "bin")],
                   check=True, capture_output=True, cwd=ROOT)
    report = tmp / "report.json"
    proc = subprocess.run([sys.executable, "-m", "demo", "--cni-bin", str(tmp / "bin"), "--pods", "4",
                           "--report", str(report)], cwd=ROOT, env=tool_env(), capture_output=True, text=True,
                          timeout=600)
    return proc, (json.loads(report.read_text()) if report.exists() else {})


def test_the_demo_passes_and_leaves_nothing(demo_run):
    proc, report = demo_run
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "nothing left: ENIs 0" in proc.stdout
    assert report["leftovers"] == {}


def test_every_step_ran_and_is_timed(demo_run):
    proc, report = demo_run
    names = [name for name, _ in report["steps"]]
    for step in ("synthesize", "launch lifecycle actions", "node setup", "systemd's part", "readiness", "add 4 pods",
                 "ping each other", "per-IP mode", "remove the pods", "terminate the nodes", "nothing left"):
        assert any(step in n for n in names), (step, names)


def test_prefix_mode_pods_start_without_ec2_and_nodes_launch_with_few_calls(demo_run):
    _, report = demo_run
    assert report["pod_start_ec2_calls"] and set(report["pod_start_ec2_calls"]) == {0}
    per_launch, enis = report["ec2_calls_per_launch"], report["multus_enis_per_node"]
    assert enis >= 1 and len(per_launch) == 2
    assert report["pod_ready_seconds"], "no pod was timed from ADD to its first cross-node ping"


def test_the_demo_names_its_stand_ins_and_the_macvlan_swap(demo_run):
    proc, _ = demo_run
    for name in ("stand-in aws", "stand-in dnf", "stand-in rpm", "stand-in systemctl", "stand-in udevadm"):
        assert name in proc.stdout
    assert "this kernel has no ipvlan: the demo's NADs use eksnet-macvlan" in proc.stdout


def test_per_ip_pods_are_assigned_in_ec2_while_they_live_and_unassigned_after_del(demo_run):
    proc, report = demo_run
    assert len(report["per_ip_start_ec2_calls"]) == 2 and min(report["per_ip_start_ec2_calls"]) >= 1
    assert proc.stdout.count(" holds 192.") >= 2, "the per-IP addresses were not seen on the nodes' ENIs in moto"
    assert proc.stdout.count("unassigned from eni-") == 2


def test_the_node_setup_runs_the_stacks_units_and_readiness_gate(demo_run):
    proc, _ = demo_run
    assert "eksnet-ipamd.service (Type=notify)" in proc.stdout and "READY=1" in proc.stdout
    assert "kubelet ExecStartPre passes" in proc.stdout
    assert "cross-node pings answered (4 pods, IPv4 and IPv6)" in proc.stdout
