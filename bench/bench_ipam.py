"""The IPAM daemon's costs that grow, or must not grow, with its history.

Allocation latency as the pool fills (at 10 and at 100,000 leases), three views:
- the pure allocator, on an IPv6 /80 (never enumerated);
- the IPAM service (allocate + commit to SQLite), on the same /80;
- a whole IPAM ADD through the executable, eksnet-ipam (daemon) against the reference host-local
  (one file per address; it scans them all to find a container's existing lease), on the same
  IPv4 /12, seeded with the same number of leases.
The metric that matters is the growth ratio (latency at 100,000 / at 10): flat is 1.

Daemon start-up (executable started to socket answering, and its memory) with 100 live leases and
1e5 / 1e6 historic ones (addresses released long ago, as a daemon down longer than the cooldown,
or one upgraded from the first store version, finds them), side by side with the daemon as it was
before (``git main`` at the time of writing: ``BEFORE_REF``), which loaded every row.

First ADD after a start (eksnet-macvlan + eksnet-ipam, a real namespace) against the steady-state
ADD and the reference macvlan + host-local ADD, and ADD latency while ``status`` and
``reconcile`` run against 1e5 live leases (they must not hold the loop)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_cni import REFERENCE, Rig, pct
from node_runtime.ipam.allocator import Pool, parse_range_set, pool_key, to_ip
from node_runtime.ipam.service import IpamService
from node_runtime.ipam.store import Store

BEFORE_REF = "6f25a94"  # the daemon before issue 12 (loads every cooling row at start)
HISTORIC = (100_000, 1_000_000)
LIVE = 100
STARTS = 3
FIRST_ADD_STARTS = 5
BUSY_LEASES = 100_000
BUSY_SAMPLES = 400

SMALL, LARGE = 10, 100_000
SERVICE_SAMPLES = 300
EXEC_SAMPLES = 30
HOST_LOCAL_LARGE_SAMPLES = 5
V6 = [[{"subnet": "fd30:0:0:1::/80"}]]
V4 = [[{"subnet": "10.64.0.0/12"}]]


def _addresses(ranges: list, count: int) -> tuple[str, list[str], dict[str, int]]:
    rset = parse_range_set(ranges[0])
    pool, cursors = Pool(key=pool_key(rset), ranges=rset), {}
    return pool.key, [to_ip(pool.version, pool.allocate(cursors, lambda a: False).address)
                      for _ in range(count)], cursors


def seed(state_dir: Path, ranges: list, count: int, network: str = "bench", historic: int = 0,
         netns: str = "/run/netns/seed") -> None:
    """Write ``count`` live leases and ``historic`` released ones (cooldown long over) straight into
    the store (one transaction), as if handed out one by one."""
    key, ips, cursors = _addresses(ranges, count + historic)
    store, now = Store(state_dir), time.time()
    with store.transaction() as db:
        db.executemany("INSERT INTO leases (pool, address, network, container_id, ifname, netns, created, source) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, '')",
                       ((key, ip, network, f"seed{i}", "net1", netns.format(i=i), now)
                        for i, ip in enumerate(ips[:count])))
        db.executemany("INSERT INTO cooling VALUES (?, ?, 1.0)", ((key, ip) for ip in ips[count:]))
        db.executemany("INSERT OR REPLACE INTO range_cursors VALUES (?, ?)", [(k, str(v)) for k, v in cursors.items()])
    store.close()


def seed_before(state_dir: Path, ranges: list, count: int, historic: int) -> None:
    """The same rows in the first store version (what the daemon of BEFORE_REF reads)."""
    import sqlite3

    key, ips, cursors = _addresses(ranges, count + historic)
    state_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(state_dir / "leases.db")
    db.executescript("""
        CREATE TABLE leases (pool TEXT NOT NULL, address TEXT NOT NULL, network TEXT NOT NULL,
            container_id TEXT NOT NULL, ifname TEXT NOT NULL, netns TEXT NOT NULL, created REAL NOT NULL,
            PRIMARY KEY (pool, address), UNIQUE (network, container_id, ifname, pool));
        CREATE TABLE cooling (pool TEXT NOT NULL, address TEXT NOT NULL, ready_at REAL NOT NULL,
            PRIMARY KEY (pool, address));
        CREATE TABLE cursors (pool TEXT NOT NULL, range_index INTEGER NOT NULL, cursor TEXT NOT NULL,
            PRIMARY KEY (pool, range_index));""")
    db.executemany("INSERT INTO leases VALUES (?, ?, 'bench', ?, 'net1', '/run/netns/seed', 0.0)",
                   ((key, ip, f"seed{i}") for i, ip in enumerate(ips[:count])))
    db.executemany("INSERT INTO cooling VALUES (?, ?, 1.0)", ((key, ip) for ip in ips[count:]))
    db.execute("INSERT INTO cursors VALUES (?, 0, ?)", (key, str(next(iter(cursors.values())))))
    db.commit()
    db.close()


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
    pool, cursors, held = Pool(key=pool_key(rset), ranges=rset), {}, set()
    taken = held.__contains__
    for _ in range(leases):
        held.add(pool.allocate(cursors, taken).address)
    out = []
    for _ in range(samples):
        started = time.perf_counter_ns()
        held.add(pool.allocate(cursors, taken).address)
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


class IpamRig(Rig):
    """bench_cni's rig with one installation (the forwarder a node picks) and its daemon run from this checkout's
    source with this interpreter, as ``start_daemon`` runs the other daemons here."""

    def __init__(self, cooldown: float = 30.0) -> None:
        super().__init__(cooldown, forwarders=("auto",))
        self.bin = self.bins["auto"]
        self.daemon.command = [sys.executable, "-c", LAUNCHER, str(Path(__file__).resolve().parent.parent)]


LAUNCHER = "import sys; sys.path.insert(0, sys.argv.pop(1)); from node_runtime.ipamd.__main__ import main; sys.exit(main())"


def _before_tree(tmp: Path) -> Path | None:
    """node_runtime as of BEFORE_REF, from this checkout's git history (None when unavailable)."""
    root = Path(__file__).resolve().parent.parent
    out = tmp / "before"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(root), "archive", BEFORE_REF, "node_runtime"], capture_output=True)
    if archive.returncode:
        return None
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_daemon(tree: Path, state: Path, sock: str, *extra: str) -> tuple[subprocess.Popen, float, float]:
    """Start the daemon of ``tree`` on ``state``; returns (process, seconds until it answers, RSS MiB)."""
    from node_runtime.cni.protocol import call

    argv = [sys.executable, "-c", LAUNCHER, str(tree), "serve", "--socket", sock, "--state-dir", str(state),
            "--reconcile-interval", "0", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while True:
        try:
            if call(sock, b"ctl:status", b"", b"", timeout=60)[0] == 0:
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon of {tree} exited with {proc.returncode}") from None
            time.sleep(0.005)
    return proc, time.perf_counter() - started, _rss_mib(proc.pid)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def startup(tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    ours_tree = Path(__file__).resolve().parent.parent
    before = _before_tree(tmp)
    metrics, raw = [], {}
    for n in HISTORIC:
        template = tmp / f"tpl{n}"
        seed(template, V6, LIVE, historic=n)
        times, rss = [], []
        for k in range(STARTS):
            run_dir = tmp / f"run{n}-{k}"
            run_dir.mkdir()
            shutil.copy(template / "leases.db", run_dir / "leases.db")
            proc, seconds, mib = start_daemon(ours_tree, run_dir, str(tmp / "s.sock"))
            stop(proc)
            times.append(seconds)
            rss.append(mib)
            shutil.rmtree(run_dir)
        shutil.rmtree(template)
        ref_t = ref_rss = upgrade_t = None
        if before is not None:
            old = tmp / f"before{n}"
            seed_before(old, V6, LIVE, n)
            proc, ref_t, ref_rss = start_daemon(before, old, str(tmp / "b.sock"))
            stop(proc)
            proc, upgrade_t, _ = start_daemon(ours_tree, old, str(tmp / "u.sock"))  # first start after upgrading
            stop(proc)
            shutil.rmtree(old)
        raw[f"startup_s@{n}"] = {"ours": times, "before": ref_t, "ours_first_start_on_v1_store": upgrade_t}
        label = f"{n:.0e}".replace("+0", "")
        metrics += [
            _m(f"daemon startup, {LIVE} live + {label} historic leases (vs before)", "s", statistics.median(times),
               ref_t, target="< 1 s"),
            _m(f"daemon memory after start, {label} historic (vs before)", "MiB", statistics.median(rss), ref_rss),
            _m(f"daemon first start on a v1 store, {label} historic (migration)", "s", upgrade_t, None),
        ]
    return metrics, raw


def first_add(tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The first ADD after each start, against later ADDs and the reference, through the executables."""
    rig = IpamRig()
    firsts, steady, ref = [], [], []
    try:
        rig.make_underlay()
        ours = {"cniVersion": "1.0.0", "name": "first", "type": "eksnet-macvlan", "master": rig.master,
                "ipam": {"type": "eksnet-ipam", "ranges": [[{"subnet": "10.66.0.0/16"}]]}}
        theirs = {"cniVersion": "1.0.0", "name": "first-ref", "type": "macvlan", "master": rig.master,
                  "ipam": {"type": "host-local", "dataDir": str(rig.tmp / "hl"), "ranges": [[{"subnet": "10.67.0.0/16"}]]}}
        for k in range(FIRST_ADD_STARTS):
            spaces = [rig.netns(f"f{k}-{i}") for i in range(6)]
            refs = [rig.netns(f"r{k}-{i}") for i in range(5)]
            proc, _, _ = start_daemon(Path(__file__).resolve().parent.parent, rig.state, rig.socket)
            try:
                firsts.append(rig.call(rig.bin / "eksnet-macvlan", "ADD", ours, f"f{k}-0", spaces[0]))
                for i, ns in enumerate(spaces[1:], 1):
                    steady.append(rig.call(rig.bin / "eksnet-macvlan", "ADD", ours, f"f{k}-{i}", ns))
                    ref.append(rig.call(REFERENCE / "macvlan", "ADD", theirs, f"r{k}-{i}", refs[i - 1]))
                for i, ns in enumerate(spaces):
                    rig.call(rig.bin / "eksnet-macvlan", "DEL", ours, f"f{k}-{i}", ns)
                for i, ns in enumerate(refs):
                    rig.call(REFERENCE / "macvlan", "DEL", theirs, f"r{k}-{i + 1}", ns)
            finally:
                stop(proc)
            for ns in spaces + refs:
                rig.drop_netns(ns)
    finally:
        rig.close()
    med = statistics.median
    return [
        _m("first ADD after daemon start (vs reference ADD)", "ms", med(firsts), med(ref)),
        _m("first ADD after start / steady ADD", "x", med(firsts) / med(steady), None, target="~1"),
    ], {"first_add_ms": firsts, "steady_add_ms": steady, "reference_add_ms": ref}


def busy(tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """IPAM ADD latency over the socket (no process start) with 1e5 live leases, idle and while
    status and reconciliation run in a loop: they must not hold the event loop."""
    import threading

    from node_runtime.cni.protocol import call

    state = tmp / "busy"
    seed(state, V4, BUSY_LEASES, netns="/run/netns/eksnet-bench-gone-{i}")
    sock = str(tmp / "busy.sock")
    proc, _, _ = start_daemon(Path(__file__).resolve().parent.parent, state, sock, "--reconcile-grace", "1e9")
    body = json.dumps({"cniVersion": "1.0.0", "name": "bench", "type": "eksnet-ipam",
                       "ipam": {"type": "eksnet-ipam", "ranges": V4}}).encode()

    def adds(tag: str) -> list[float]:
        out = []
        for i in range(BUSY_SAMPLES):
            env = f"CNI_COMMAND=ADD\0CNI_CONTAINERID={tag}{i}\0CNI_IFNAME=net1\0CNI_NETNS=/run/netns/x".encode()
            started = time.perf_counter()
            code, answer = call(sock, b"cni:eksnet-ipam", env, body)
            out.append((time.perf_counter() - started) * 1000)
            if code:
                raise RuntimeError(f"ADD failed: {answer[-300:]!r}")
        return out

    stopping, background = threading.Event(), {"status": 0, "reconcile": 0}

    def hammer() -> None:
        while not stopping.is_set():
            for op in ("status", "reconcile"):
                call(sock, b"ctl:" + op.encode(), b"", b"", timeout=120)
                background[op] += 1

    try:
        idle = adds("idle")
        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            loaded = adds("busy")
        finally:
            stopping.set()
            worker.join()
    finally:
        stop(proc)
    return [
        _m("IPAM ADD p99 over the socket, 1e5 leases: during status+reconcile vs idle", "ms", pct(loaded, 0.99),
           pct(idle, 0.99)),
        _m("IPAM ADD max, 1e5 leases: during status+reconcile vs idle", "ms", max(loaded), max(idle)),
    ], {"busy_add_ms": loaded, "idle_add_ms": idle, "background_ops": background}


def loop_steps(tmp: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """CPU time (of the loop's thread, so other processes' load does not count) of the longest
    step status and reconciliation take on the event loop, with 1e5 live leases: the time an ADD
    can wait behind them. Reconciliation's steps are the daemon's: STAT_CHUNK path checks, then
    64 owners released (the store's commit runs on its writer thread)."""
    from node_runtime.ipamd.server import STAT_CHUNK

    state = tmp / "steps"
    seed(state, V4, BUSY_LEASES, netns="/run/netns/eksnet-bench-gone-{i}")
    svc = IpamService(Store(state, background=True), cooldown=30)
    status = []
    for _ in range(20):
        started = time.thread_time()
        json.dumps(svc.status(), indent=2)
        status.append((time.thread_time() - started) * 1000)
    paths = list(svc.by_netns)
    stat_steps, release_steps = [], []
    for i in range(0, 200 * STAT_CHUNK, STAT_CHUNK):
        started = time.thread_time()
        gone = {p for p in paths[i:i + STAT_CHUNK] if not os.path.exists(p)}
        stat_steps.append((time.thread_time() - started) * 1000)
        owners = svc.stale(0, gone)[:64]
        started = time.thread_time()
        svc._release(owners)
        release_steps.append((time.thread_time() - started) * 1000)
    svc.store.close()
    return [
        _m("status on the loop, 1e5 live leases: CPU per call (max)", "ms", max(status), None, target="< 1"),
        _m("reconciliation step on the loop, 1e5 live leases: CPU (max of stat / release steps)", "ms",
           max(max(stat_steps), max(release_steps)), None, target="< 1"),
    ], {"status_ms": status, "stat_step_ms": stat_steps, "release_step_ms": release_steps}


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
            rig = IpamRig()
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
        start_metrics, raw["startup"] = startup(tmp)
        first_metrics, raw["first_add"] = first_add(tmp)
        busy_metrics, raw["busy"] = busy(tmp)
        step_metrics, raw["loop_steps"] = loop_steps(tmp)
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
        *start_metrics, *first_metrics, *busy_metrics, *step_metrics,
    ]
    return {"metrics": metrics, "raw": raw, "load_average": os.getloadavg()}
