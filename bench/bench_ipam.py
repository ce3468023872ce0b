"""Allocation latency as the pool fills: at 10 and at 100,000 leases.

Three views, one run:
- the pure allocator, on an IPv6 /80 (never enumerated);
- the IPAM service (allocate + commit to SQLite), on the same /80;
- a whole IPAM ADD through the executable, eksnet-ipam (daemon) against the reference host-local
  (one file per address; it scans them all to find a container's existing lease), on the same
  IPv4 /12, seeded with the same number of leases.
The metric that matters is the growth ratio (latency at 100,000 / at 10): flat is 1."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_cni import REFERENCE, Rig, pct
from node_runtime.ipam.allocator import Pool, parse_range_set, pool_key, to_ip
from node_runtime.ipam.service import IpamService
from node_runtime.ipam.store import Store

SMALL, LARGE = 10, 100_000
SERVICE_SAMPLES = 300
EXEC_SAMPLES = 30
HOST_LOCAL_LARGE_SAMPLES = 5
V6 = [[{"subnet": "fd30:0:0:1::/80"}]]
V4 = [[{"subnet": "10.64.0.0/12"}]]


def seed(state_dir: Path, ranges: list, count: int, network: str = "bench") -> None:
    """Write ``count`` leases straight into the store (one transaction), as if handed out one by one."""
    rset = parse_range_set(ranges[0])
    pool = Pool(key=pool_key(rset), ranges=rset, cooldown=30)
    store = Store(state_dir)
    rows = []
    for i in range(count):
        a = pool.allocate(0)
        rows.append((pool.key, to_ip(pool.version, a.address), network, f"seed{i}", "net1", "/run/netns/seed", 0.0))
    with store.transaction() as db:
        db.executemany("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute("INSERT OR REPLACE INTO cursors VALUES (?, 0, ?)", (pool.key, str(pool.cursors[0])))
    store.close()


def seed_host_local(data_dir: Path, network: str, count: int) -> None:
    """host-local's on-disk format (containernetworking/plugins disk backend): a file per address
    holding "<container id>\\r\\n<ifname>", and last_reserved_ip.0."""
    base = data_dir / network
    base.mkdir(parents=True, exist_ok=True)
    first = int.from_bytes(bytes([10, 64, 0, 1]), "big")
    for i in range(count):
        (base / to_ip(4, first + i)).write_text(f"seed{i}\r\nnet1")
    if count:
        (base / "last_reserved_ip.0").write_text(to_ip(4, first + count - 1))


def allocator_latency(leases: int, samples: int = 2000) -> list[float]:
    """The pure allocator alone (no store): microseconds per allocation with ``leases`` held."""
    rset = parse_range_set(V6[0])
    pool = Pool(key=pool_key(rset), ranges=rset, cooldown=30)
    for _ in range(leases):
        pool.allocate(0)
    out = []
    for _ in range(samples):
        started = time.perf_counter_ns()
        pool.allocate(0)
        out.append((time.perf_counter_ns() - started) / 1000)
    return out


def service_latency(tmp: Path, leases: int) -> list[float]:
    state = tmp / f"svc{leases}"
    seed(state, V6, leases)
    svc = IpamService(Store(state), cooldown=30)
    ipam = {"ranges": V6}
    out = []
    for i in range(SERVICE_SAMPLES):
        started = time.perf_counter()
        svc.add("bench", f"m{i}", "net1", "/run/netns/m", ipam)
        out.append((time.perf_counter() - started) * 1000)
    svc.store.close()
    return out


def exec_latency(rig: Rig, exe: Path, config: dict, samples: int, tag: str) -> list[float]:
    out = []
    for i in range(samples):
        env = rig.env("ADD", f"{tag}{i}", f"/run/netns/{tag}{i}")
        started = time.perf_counter()
        proc = subprocess.run([str(exe)], input=json.dumps(config).encode(), env=env, capture_output=True)
        out.append((time.perf_counter() - started) * 1000)
        if proc.returncode:
            raise RuntimeError(f"{exe.name} ADD failed: {proc.stdout[-300:]!r}")
    return out


def _m(name: str, unit: str, ours: float | None, ref: float | None, **extra: Any) -> dict[str, Any]:
    ratio = round(ours / ref, 3) if ours is not None and ref else None
    return {"metric": name, "unit": unit, "ours": None if ours is None else round(ours, 4),
            "reference": None if ref is None else round(ref, 4), "ratio": ratio, **extra}


def run() -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="eksnet-bench-ipam-"))
    raw: dict[str, Any] = {}
    try:
        alloc = {n: allocator_latency(n) for n in (SMALL, LARGE)}
        svc = {n: service_latency(tmp, n) for n in (SMALL, LARGE)}
        raw["allocator_us"] = alloc
        raw["service_ms"] = svc
        execs: dict[str, dict[int, list[float]]] = {"ours": {}, "ref": {}}
        for n in (SMALL, LARGE):
            rig = Rig()
            try:
                seed(rig.state, V4, n)
                rig.start_daemon()
                ours = {"cniVersion": "1.0.0", "name": "bench", "type": "eksnet-ipam",
                        "ipam": {"type": "eksnet-ipam", "ranges": V4}}
                execs["ours"][n] = exec_latency(rig, rig.bin / "eksnet-ipam", ours, EXEC_SAMPLES, "o")
                hl_dir = rig.tmp / "host-local"
                seed_host_local(hl_dir, "bench", n)
                ref = {"cniVersion": "1.0.0", "name": "bench", "type": "host-local",
                       "ipam": {"type": "host-local", "dataDir": str(hl_dir), "ranges": V4}}
                samples = EXEC_SAMPLES if n == SMALL else HOST_LOCAL_LARGE_SAMPLES
                execs["ref"][n] = exec_latency(rig, REFERENCE / "host-local", ref, samples, "r")
            finally:
                rig.close()
        raw["exec_ms"] = execs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    s10, s100k = med(svc[SMALL]), med(svc[LARGE])
    o10, o100k = med(execs["ours"][SMALL]), med(execs["ours"][LARGE])
    r10, r100k = med(execs["ref"][SMALL]), med(execs["ref"][LARGE])
    a10, a100k = med(alloc[SMALL]), med(alloc[LARGE])
    metrics = [
        _m("allocator median @10 leases (/80)", "us", a10, None),
        _m("allocator median @100k leases (/80)", "us", a100k, None),
        _m("allocator growth 10 -> 100k leases", "x", a100k / a10, None, target="~1 (flat)"),
        _m("service alloc median @10 leases (/80)", "ms", s10, None),
        _m("service alloc median @100k leases (/80)", "ms", s100k, None),
        _m("service alloc p99 @100k leases (/80)", "ms", pct(svc[LARGE], 0.99), None),
        _m("IPAM ADD median @10 leases", "ms", o10, r10),
        _m("IPAM ADD median @100k leases", "ms", o100k, r100k),
        _m("IPAM ADD growth 10 -> 100k leases", "x", o100k / o10, r100k / r10, target="ours ~1 (flat)"),
        _m("service alloc growth 10 -> 100k leases", "x", s100k / s10, None, target="~1 (flat)"),
    ]
    return {"metrics": metrics, "raw": raw, "load_average": os.getloadavg()}
