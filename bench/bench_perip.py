"""Per-IP mode against prefix mode on the same live eksnet-ipamd (root): pod ADD/DEL through the CNI
executables, one pod in a network namespace at a time, the two modes interleaved (namespaces, underlays and
daemons: ``node_runtime.lab``). EC2 is moto's server on 127.0.0.1 (with demo/moto_ext.py; the subnet, its
per-IP range and two ENIs: demo/perip_subnet.py), so the figures show the daemon's own cost of the EC2 round
trip and the number of EC2 calls, not AWS's latency (tens of ms per call there).

Also: two "nodes" (two daemons, two ENIs) filling one shared range at once, counting the addresses
EC2 refused (skipped) per pod."""

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

from node_runtime.lab import CNI, Daemon, Lab, addresses, install_bin, unique_prefix

PODS = 20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run() -> dict[str, Any]:
    from demo import moto_ext  # moto: a dev dependency, imported when the benchmark runs
    from demo.perip_subnet import REGION, build_world

    server, endpoint = moto_ext.serve()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_EC2": endpoint}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    base = Path(tempfile.mkdtemp(prefix="eksnet-bench-perip-"))
    lab = Lab(unique_prefix("eb"))
    ns = lab.namespaces
    try:
        world = build_world(endpoint)
        bin_dir = install_bin(base / "bin")

        def node(name: str, eni: str) -> tuple[Daemon, CNI, dict, dict]:
            pools = {"perip": world.pool(eni, ipv6=False),
                     "prefix": {"ranges": [[{"subnet": f"10.250.{len(lab.daemons)}.0/24"}]]}}
            (base / name).mkdir()
            (base / name / "ipamd.json").write_text(json.dumps({"pools": pools}))
            daemon = lab.daemon(base / name / "ipamd", bin_dir, extra=("--config", str(base / name / "ipamd.json")))
            daemon.start()
            deadline = time.time() + 30  # as on a node, where pods come long after the daemon started
            while not daemon.status()["perip"]["ec2_client_ready"] and time.time() < deadline:
                time.sleep(0.05)
            underlay = lab.underlay()

            def nad(pool: str) -> dict:
                return {"cniVersion": "1.0.0", "name": f"bench-{pool}", "type": "eksnet-macvlan",
                        "master": underlay.master, "ipam": {"type": "eksnet-ipam", "pool": pool}}
            return daemon, CNI(bin_dir, daemon.env()), nad("perip"), nad("prefix")

        daemon, cni, perip_nad, prefix_nad = node("a", world.eni_a)
        times: dict[str, dict[str, list[float]]] = {m: {"ADD": [], "DEL": []} for m in ("perip", "prefix")}
        for i in range(PODS):
            for mode, nad in (("perip", perip_nad), ("prefix", prefix_nad)):
                netns = ns.add(f"{mode}{i}")
                started = time.perf_counter()
                cni.ok("eksnet-macvlan", "ADD", nad, container_id=f"{mode}{i}", netns=netns, ifname="net1")
                times[mode]["ADD"].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                cni.ok("eksnet-macvlan", "DEL", nad, container_id=f"{mode}{i}", netns=netns, ifname="net1")
                times[mode]["DEL"].append((time.perf_counter() - started) * 1000)
                ns.delete(netns)
        deadline = time.time() + 10
        while daemon.status()["perip"]["counters"]["perip_unassigned"] < PODS and time.time() < deadline:
            time.sleep(0.05)
        counters = daemon.status()["perip"]["counters"]

        # Two nodes fill the shared 16-address range at once, 8 pods each.
        daemon_b, cni_b, perip_b, _ = node("b", world.eni_b)
        jobs = [(c, n, f"{tag}{i}") for i in range(8) for c, n, tag in ((cni, perip_nad, "ca"), (cni_b, perip_b, "cb"))]
        netns = {job[2]: ns.add(job[2]) for job in jobs}
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda j: j[0]("eksnet-macvlan", "ADD", j[1], container_id=j[2],
                                                      netns=netns[j[2]], ifname="net1"), jobs))
        got = [a for rc, out in results if rc == 0 for a in addresses(out)]
        skipped = sum(d.status()["perip"]["counters"]["perip_skipped"] for d in (daemon, daemon_b))
        held_a, held_b = world.held(world.eni_a), world.held(world.eni_b)
    finally:
        try:
            lab.close()
        finally:
            shutil.rmtree(base, ignore_errors=True)
            server.stop()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def med(mode: str, cmd: str) -> float:
        return statistics.median(times[mode][cmd])

    metrics = []
    for cmd in ("ADD", "DEL"):
        ours, ref = med("perip", cmd), med("prefix", cmd)
        metrics.append({"metric": f"{cmd} median, per-IP vs prefix pool (ms, moto on loopback)", "unit": "ms",
                        "ours": round(ours, 2), "reference": round(ref, 2), "ratio": round(ours / ref, 2)})
        ours, ref = pct(times["perip"][cmd], 0.99), pct(times["prefix"][cmd], 0.99)
        metrics.append({"metric": f"{cmd} p99, per-IP vs prefix pool (ms)", "unit": "ms",
                        "ours": round(ours, 2), "reference": round(ref, 2), "ratio": round(ours / ref, 2)})
    metrics.append({"metric": "EC2 calls per per-IP pod (ADD + DEL, uncontended; prefix mode: 0)", "unit": "calls",
                    "ours": (counters["perip_assigned"] + counters["perip_skipped"] + counters["perip_unassigned"])
                    / PODS, "reference": 0, "ratio": None})
    metrics.append({"metric": "addresses skipped per pod, 2 nodes filling one 16-address range", "unit": "addresses",
                    "ours": round(skipped / len(jobs), 2), "reference": None, "ratio": None})
    return {"metrics": metrics, "pods": PODS, "contended": {"pods": len(jobs), "addresses": len(got),
                                                            "distinct": len(set(got)),
                                                            "on_both_enis": len(held_a & held_b),
                                                            "failed": sum(rc != 0 for rc, _ in results)},
            "counters": counters, "raw_ms": times}
