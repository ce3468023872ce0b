"""CNI ADD/DEL latency, side by side: eksnet-macvlan + eksnet-ipam (through eksnet-ipamd) against
the reference macvlan + host-local from /usr/lib/cni, on the same veth underlay, interleaved so
both see the same machine load. Needs root (network namespaces); names start with ``eksnb``.

Metrics: median and p99 of IPv4 ADD and DEL, dual-stack ADD (the reference waits for IPv6 DAD),
and the throughput of 40 ADDs started at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REFERENCE = Path("/usr/lib/cni")
SAMPLES = 40
DUAL_SAMPLES_REFERENCE = 5
PARALLEL = 40


def sh(*args: str, check: bool = True) -> None:
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Rig:
    """Installed executables, a daemon, a veth underlay and namespaces, all removed by close()."""

    def __init__(self, cooldown: float = 30.0) -> None:
        from node_runtime.install import install

        self.tag = f"eksnb{os.getpid() % 100000}"
        self.tmp = Path(tempfile.mkdtemp(prefix="eksnet-bench-"))
        self.bin = self.tmp / "bin"
        # As on a node: the system interpreter when there is one (Debian's is built with PGO/LTO and
        # starts faster than a pyenv build), else this one.
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else None
        install(str(self.bin), python=python)
        self.socket = str(self.tmp / "ipamd.sock")
        self.state = self.tmp / "state"
        self.cooldown = cooldown
        self.proc: subprocess.Popen | None = None
        self.namespaces: list[str] = []
        self.master = f"{self.tag}a"
        self.underlay = False

    def start_daemon(self) -> None:
        log = open(self.tmp / "ipamd.log", "ab")
        self.proc = subprocess.Popen([str(self.bin / "eksnet-ipamd"), "serve", "--socket", self.socket, "--state-dir",
                                      str(self.state), "--cooldown", str(self.cooldown), "--reconcile-interval", "0"],
                                     stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + 120
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("eksnet-ipamd did not start: " + (self.tmp / "ipamd.log").read_text()[-2000:])
            time.sleep(0.02)

    def stop_daemon(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def make_underlay(self) -> None:
        sh("ip", "link", "add", self.master, "type", "veth", "peer", "name", f"{self.tag}b")
        self.underlay = True
        sh("ip", "link", "set", self.master, "up")
        sh("ip", "link", "set", f"{self.tag}b", "up")

    def netns(self, name: str) -> str:
        full = f"{self.tag}-{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        return f"/run/netns/{full}"

    def drop_netns(self, path: str) -> None:
        full = os.path.basename(path)
        sh("ip", "netns", "del", full, check=False)
        if full in self.namespaces:
            self.namespaces.remove(full)

    def env(self, command: str, cid: str = "", netns: str = "", ifname: str = "net1") -> dict[str, str]:
        env = {"CNI_COMMAND": command, "CNI_PATH": f"{self.bin}:{REFERENCE}", "EKSNET_IPAMD_SOCKET": self.socket,
               "CNI_IFNAME": ifname, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        if cid:
            env["CNI_CONTAINERID"] = cid
        if netns:
            env["CNI_NETNS"] = netns
        return env

    def call(self, exe: Path, command: str, config: dict[str, Any], cid: str, netns: str = "") -> float:
        """Run one plugin command; returns its wall time in ms (raises if it failed)."""
        data = json.dumps(config).encode()
        started = time.perf_counter()
        proc = subprocess.run([str(exe)], input=data, env=self.env(command, cid, netns), capture_output=True)
        elapsed = (time.perf_counter() - started) * 1000
        if proc.returncode:
            raise RuntimeError(f"{exe.name} {command} failed: {proc.stdout[-500:]!r} {proc.stderr[-500:]!r}")
        return elapsed

    def close(self) -> None:
        self.stop_daemon()
        for full in list(self.namespaces):
            sh("ip", "netns", "del", full, check=False)
        if self.underlay:
            sh("ip", "link", "del", self.master, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _configs(rig: Rig, dual: bool) -> tuple[dict, dict]:
    v4 = [{"subnet": "10.200.0.0/16"}]
    v6 = [{"subnet": "fd20:0:0:1::/80"}]
    ours = {"cniVersion": "1.0.0", "name": "bench-ours", "type": "eksnet-macvlan", "master": rig.master,
            "ipam": {"type": "eksnet-ipam", "ranges": [v4, v6] if dual else [v4]}}
    ref = {"cniVersion": "1.0.0", "name": "bench-ref", "type": "macvlan", "master": rig.master, "mode": "bridge",
           "ipam": {"type": "host-local", "dataDir": str(rig.tmp / "host-local"),
                    "ranges": [[{"subnet": "10.201.0.0/16"}], [{"subnet": "fd21:0:0:1::/64"}]] if dual
                    else [[{"subnet": "10.201.0.0/16"}]]}}
    if dual:
        ours["name"], ref["name"] = "bench-ours-ds", "bench-ref-ds"
        ours["ipam"]["ranges"] = [[{"subnet": "10.202.0.0/16"}], [{"subnet": "fd22:0:0:1::/80"}]]
    return ours, ref


def _add_del(rig: Rig, samples: int, dual: bool, ref_samples: int | None = None) -> dict[str, dict[str, list]]:
    ours, ref = _configs(rig, dual)
    out = {"ours": {"add": [], "del": []}, "ref": {"add": [], "del": []}}
    for i in range(samples):
        for side, exe, config in (("ours", rig.bin / "eksnet-macvlan", ours), ("ref", REFERENCE / "macvlan", ref)):
            if side == "ref" and ref_samples is not None and i >= ref_samples:
                continue
            ns = rig.netns(f"{side}{int(dual)}{i}")
            cid = f"{side}-{int(dual)}-{i}"
            out[side]["add"].append(rig.call(exe, "ADD", config, cid, ns))
            out[side]["del"].append(rig.call(exe, "DEL", config, cid, ns))
            rig.drop_netns(ns)
    return out


def _parallel(rig: Rig, exe: Path, config: dict, side: str) -> float:
    namespaces = [rig.netns(f"par{side}{i}") for i in range(PARALLEL)]
    started = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda i: rig.call(exe, "ADD", config, f"par-{side}-{i}", namespaces[i]), range(PARALLEL)))
    elapsed = time.perf_counter() - started
    for i, ns in enumerate(namespaces):
        rig.call(exe, "DEL", config, f"par-{side}-{i}", ns)
        rig.drop_netns(ns)
    return PARALLEL / elapsed


def _metric(name: str, unit: str, ours: float, ref: float, **extra: Any) -> dict[str, Any]:
    return {"metric": name, "unit": unit, "ours": round(ours, 3), "reference": round(ref, 3),
            "ratio": round(ours / ref, 3) if ref else None, **extra}


def run() -> dict[str, Any]:
    if os.geteuid() != 0:
        raise RuntimeError("bench cni needs root (network namespaces)")
    rig = Rig()
    try:
        rig.make_underlay()
        rig.start_daemon()
        _add_del(rig, 3, dual=False)  # warm caches (page cache, bytecode) for both sides
        v4 = _add_del(rig, SAMPLES, dual=False)
        dual = _add_del(rig, SAMPLES // 2, dual=True, ref_samples=DUAL_SAMPLES_REFERENCE)
        ours_cfg, ref_cfg = _configs(rig, dual=False)
        par_ours = _parallel(rig, rig.bin / "eksnet-macvlan", ours_cfg, "o")
        par_ref = _parallel(rig, REFERENCE / "macvlan", ref_cfg, "r")
    finally:
        rig.close()
    o, r = v4["ours"], v4["ref"]
    metrics = [
        _metric("ipv4 ADD median", "ms", statistics.median(o["add"]), statistics.median(r["add"]), target="<= 1.5"),
        _metric("ipv4 ADD p99", "ms", pct(o["add"], 0.99), pct(r["add"], 0.99)),
        _metric("DEL median", "ms", statistics.median(o["del"]), statistics.median(r["del"]), target="< 1"),
        _metric("DEL p99", "ms", pct(o["del"], 0.99), pct(r["del"], 0.99)),
        _metric("dual-stack ADD median", "ms", statistics.median(dual["ours"]["add"]),
                statistics.median(dual["ref"]["add"]), target="< 1"),
        _metric("dual-stack ADD p99", "ms", pct(dual["ours"]["add"], 0.99), pct(dual["ref"]["add"], 0.99)),
        _metric(f"{PARALLEL} parallel ADDs throughput", "ADD/s", par_ours, par_ref, note="higher is better"),
    ]
    return {"metrics": metrics, "samples": {"ipv4": v4, "dual_stack": dual},
            "load_average": os.getloadavg(), "cpus": os.cpu_count()}
