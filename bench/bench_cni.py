"""CNI ADD/DEL latency, side by side: eksnet-macvlan + eksnet-ipam (through eksnet-ipamd) against
the reference macvlan + host-local from /usr/lib/cni, on the same veth underlay, interleaved so
all see the same machine load. eksnet runs twice, with the native forwarder (what a node installs
when ``make native`` built it) and with the Python forwarder (the fallback), both against one
daemon. Needs root (network namespaces); names start with ``eb`` (``node_runtime.lab``).

Metrics (ratio = eksnet / reference): median and p99 of IPv4 ADD and DEL, dual-stack ADD (the
reference waits for IPv6 DAD), and the throughput of 40 and 200 ADDs started at once (higher is
better). Rows marked ``[python fwd]`` are the Python forwarder's."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from node_runtime.lab import CNI, REFERENCE, Lab, install_bin, unique_prefix

SAMPLES = 100
DUAL_SAMPLES_REFERENCE = 5
PARALLEL = (40, 200)
SIDES = ("native", "python", "ref")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def system_python() -> str | None:
    """As on a node: the system interpreter when there is one (Debian's is built with PGO/LTO and starts faster
    than a pyenv build), else this one."""
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None


class Rig:
    """The lab of a benchmark (``node_runtime.lab``: namespaces, an underlay, the daemon, all removed by
    ``close()``), the executables installed with each forwarder, and timed CNI calls."""

    def __init__(self, cooldown: float = 30.0, forwarders: tuple[str, ...] = ("native", "python")) -> None:
        self.lab = Lab(unique_prefix("eb"))
        self.tmp = Path(tempfile.mkdtemp(prefix="eksnet-bench-"))
        self.sbin = self.tmp / "sbin"
        self.daemon = self.lab.daemon(self.tmp / "ipamd", command=[str(self.sbin / "eksnet-ipamd")],
                                      cooldown=cooldown)
        self.socket, self.state = self.daemon.socket, Path(self.daemon.state_dir)
        self.bins = {f: install_bin(self.tmp / f, f, python=system_python(), socket=self.socket,
                                    daemon_dir=str(self.sbin)) for f in forwarders}
        self.cni = CNI(self.tmp)
        self.master = ""

    def make_underlay(self) -> None:
        self.master = self.lab.underlay().master

    def start_daemon(self) -> None:
        self.daemon.start(timeout=120)

    def stop_daemon(self) -> None:
        self.daemon.stop()

    def netns(self, name: str) -> str:
        return self.lab.namespaces.add(name)

    def drop_netns(self, path: str) -> None:
        self.lab.namespaces.delete(path)

    def env(self, command: str, cid: str = "", netns: str = "", ifname: str = "net1") -> dict[str, str]:
        return self.cni.env(command, cid, netns, ifname)

    def call(self, exe: Path, command: str, config: dict[str, Any], cid: str, netns: str = "") -> float:
        """Run one plugin command; returns its wall time in ms (raises if it failed)."""
        data = json.dumps(config).encode()
        env = self.env(command, cid, netns)
        started = time.perf_counter()
        proc = self.cni.raw(str(exe), env, data)
        elapsed = (time.perf_counter() - started) * 1000
        if proc.returncode:
            raise RuntimeError(f"{exe.name} {command} failed: {proc.stdout[-500:]!r} {proc.stderr[-500:]!r}")
        return elapsed

    def close(self) -> None:
        try:
            self.lab.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _configs(rig: Rig, dual: bool) -> dict[str, dict]:
    """One network per side: both eksnet sides share one daemon, so they get ranges of their own."""
    family = 1 if dual else 0
    configs = {}
    for n, side in enumerate(SIDES):
        v4 = [{"subnet": f"10.{200 + 3 * family + n}.0.0/16"}]
        v6 = [{"subnet": f"fd2{3 * family + n}:0:0:1::/{64 if side == 'ref' else 80}"}]
        ipam: dict[str, Any] = {"ranges": [v4, v6] if dual else [v4]}
        if side == "ref":
            ipam.update(type="host-local", dataDir=str(rig.tmp / "host-local"))
            plugin = {"type": "macvlan", "mode": "bridge"}
        else:
            ipam.update(type="eksnet-ipam")
            plugin = {"type": "eksnet-macvlan"}
        configs[side] = {"cniVersion": "1.0.0", "name": f"bench-{side}-{'ds' if dual else 'v4'}", **plugin,
                         "master": rig.master, "ipam": ipam}
    return configs


def _exe(rig: Rig, side: str) -> Path:
    return REFERENCE / "macvlan" if side == "ref" else rig.bins[side] / "eksnet-macvlan"


def _add_del(rig: Rig, samples: int, dual: bool, ref_samples: int | None = None) -> dict[str, dict[str, list]]:
    configs = _configs(rig, dual)
    out = {side: {"add": [], "del": []} for side in SIDES}
    for i in range(samples):
        for side in SIDES:
            if side == "ref" and ref_samples is not None and i >= ref_samples:
                continue
            ns = rig.netns(f"{side[0]}{int(dual)}{i}")
            cid = f"{side}-{int(dual)}-{i}"
            out[side]["add"].append(rig.call(_exe(rig, side), "ADD", configs[side], cid, ns))
            out[side]["del"].append(rig.call(_exe(rig, side), "DEL", configs[side], cid, ns))
            rig.drop_netns(ns)
    return out


def _parallel(rig: Rig, side: str, count: int) -> float:
    """ADDs per second with ``count`` started at once (each in its own namespace)."""
    config = _configs(rig, dual=False)[side]
    exe = _exe(rig, side)
    namespaces = [rig.netns(f"p{side[0]}{i}") for i in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(lambda i: rig.call(exe, "ADD", config, f"par-{side}-{i}", namespaces[i]), range(count)))
    elapsed = time.perf_counter() - started
    for i, ns in enumerate(namespaces):
        rig.call(exe, "DEL", config, f"par-{side}-{i}", ns)
        rig.drop_netns(ns)
    return count / elapsed


def _metric(name: str, unit: str, ours: float, ref: float, **extra: Any) -> dict[str, Any]:
    return {"metric": name, "unit": unit, "ours": round(ours, 3), "reference": round(ref, 3),
            "ratio": round(ours / ref, 3) if ref else None, **extra}


def run() -> dict[str, Any]:
    if os.geteuid() != 0:
        raise RuntimeError("bench cni needs root (network namespaces)")
    load_before = os.getloadavg()
    rig = Rig()
    try:
        rig.make_underlay()
        rig.start_daemon()
        _add_del(rig, 3, dual=False)  # warm caches (page cache, bytecode) for every side
        v4 = _add_del(rig, SAMPLES, dual=False)
        dual = _add_del(rig, SAMPLES // 2, dual=True, ref_samples=DUAL_SAMPLES_REFERENCE)
        parallel = {count: {side: _parallel(rig, side, count) for side in SIDES} for count in PARALLEL}
    finally:
        rig.close()
    r, rd = v4["ref"], dual["ref"]
    metrics = []
    for side, tag in (("native", ""), ("python", " [python fwd]")):
        o, od = v4[side], dual[side]
        metrics += [
            _metric(f"ipv4 ADD median{tag}", "ms", statistics.median(o["add"]), statistics.median(r["add"]),
                    target="<= 1.0 (goal 0.6)"),
            _metric(f"ipv4 ADD p99{tag}", "ms", pct(o["add"], 0.99), pct(r["add"], 0.99), target="<= 1.0"),
            _metric(f"DEL median{tag}", "ms", statistics.median(o["del"]), statistics.median(r["del"]),
                    target="<= 0.3 (goal 0.2)"),
            _metric(f"DEL p99{tag}", "ms", pct(o["del"], 0.99), pct(r["del"], 0.99)),
            _metric(f"dual-stack ADD median{tag}", "ms", statistics.median(od["add"]), statistics.median(rd["add"]),
                    target="<= 0.01"),
            _metric(f"dual-stack ADD p99{tag}", "ms", pct(od["add"], 0.99), pct(rd["add"], 0.99)),
        ]
        metrics += [_metric(f"{count} parallel ADDs throughput{tag}", "ADD/s", parallel[count][side],
                            parallel[count]["ref"], note="higher is better", target=">= 2.0") for count in PARALLEL]
    return {"metrics": metrics, "samples": {"ipv4": v4, "dual_stack": dual},
            "parallel_adds_per_second": {str(c): v for c, v in parallel.items()},
            "load_average_before": load_before, "load_average": os.getloadavg(), "cpus": os.cpu_count()}
