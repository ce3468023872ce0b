"""The IPAM service: pools (pure allocator) plus the store, keyed by lease owner
(network, container id, ifname). Every method must be called from one thread (the daemon's event
loop): that is what makes concurrent requests safe, without locks.

One registry per address family holds every leased address and every released address still in
its cooldown, whatever pool it came from: pools may overlap, change (a node gains or loses a
delegated prefix, a user edits ``rangeEnd``) and no address is ever held twice. A lease that a
change leaves outside its pool's ranges stays until its pod goes, and is reported (log, status,
metric) meanwhile.

Memory is decided at once, on the loop; the write is handed to the store and the ``*_async``
methods return once it is committed (the daemon answers only then). The plain methods wait for it
in place (tests, benchmarks). Work proportional to the number of leases never runs in one go on
the loop: counters are kept up to date, indexes by network, namespace and named pool bound each
scan to what it concerns, and expired cooldowns are pruned as they end."""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import ipaddress
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..cni.keys import fold
from .allocator import (
    Allocation,
    ConfigError,
    Exhausted,
    Pool,
    Range,
    overlaps,
    parse_range_set,
    pool_key,
    to_ip,
)
from .store import Store, grant_op, prune_op, release_op, text_in

log = logging.getLogger("eksnet-ipamd")

Owner = tuple[str, str, str]  # (network, container id, ifname)
IPAM_KEYS = ("type", "ranges", "routes", "dns", "pool", "subnet", "rangeStart", "rangeEnd", "gateway")
IPAM_QUIET = ("dataDir", "resolvConf")  # host-local's own keys: meaningless here, not worth a log line
POOL_KEYS = ("ranges", "delegated")
POOL_QUIET = ("mode", "eniId")  # per-IP mode's keys (read by its own module from NamedPool.spec)
STORE_PRUNE_INTERVAL = 5.0  # seconds between deletions of expired cooling rows
OUTSIDE_LOG_LIMIT = 100

# Prometheus histogram buckets for allocation latency, seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True)
class Lease:
    pool: Pool  # the range set it was handed out from (its prefix length and gateway)
    address: int
    source: str = ""  # the daemon's named pool it came from, "" for ranges in the network config

    @property
    def ip(self) -> str:
        return to_ip(self.pool.version, self.address)

    @property
    def version(self) -> int:
        return self.pool.version

    def _range(self) -> Range:
        return self.pool.ranges[self.pool.range_of(self.address) or 0]

    def interface(self) -> str:
        """address/prefixlen of the range it came from."""
        return f"{self.ip}/{self._range().subnet.prefixlen}"

    def gateway(self) -> str | None:
        rng = self._range()
        return None if rng.gateway is None else to_ip(self.pool.version, rng.gateway)


@dataclass
class _Owned:
    leases: list[Lease]
    netns: str
    created: float
    pending: concurrent.futures.Future | None = None  # the write that records it, until committed


@dataclass
class _Counts:
    leased: int = 0
    cooling: int = 0


@dataclass
class NamedPool:
    """A pool of the daemon's config: range sets (one per family) and whether it is served."""

    name: str
    sets: list[tuple[Range, ...]] = field(default_factory=list)
    error: str = ""
    spec: dict[str, Any] = field(default_factory=dict)  # as the config file has it (keys folded)

    @property
    def served(self) -> bool:
        return not self.error and bool(self.sets)


class Histogram:
    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.sum += seconds

    def lines(self, name: str) -> list[str]:
        out, total = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            total += count
            out.append(f'{name}_bucket{{le="{bound}"}} {total}')
        total += self.counts[-1]
        out += [f'{name}_bucket{{le="+Inf"}} {total}', f"{name}_sum {self.sum:.6f}", f"{name}_count {total}"]
        return out


def parse_named_pool(name: str, spec: Any) -> NamedPool:
    """``{"ranges": [[range, ...], ...], "delegated": bool}``; errors are kept, not raised."""
    try:
        if not isinstance(spec, dict):
            raise ConfigError('a pool must be {"ranges": [[{"subnet": ...}]]}')
        spec = fold(spec, POOL_KEYS, f"pool {name}", passthrough=POOL_QUIET)
        delegated = spec.get("delegated", False)
        if not isinstance(delegated, bool):
            raise ConfigError("delegated must be true or false")
        ranges = spec.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise ConfigError("ranges must be a non-empty list of range sets")
        sets = [parse_range_set(s, delegated) for s in ranges]
        for i, a in enumerate(sets):
            for b in sets[i + 1:]:
                if overlaps(a, b):
                    raise ConfigError("two range sets of the pool overlap")
        return NamedPool(name, sets, spec=spec)
    except ConfigError as exc:
        return NamedPool(name, error=str(exc), spec=spec if isinstance(spec, dict) else {})


class IpamService:
    def __init__(self, store: Store, cooldown: float = 30.0, named_pools: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.cooldown = cooldown
        self.clock = clock
        self.pools: dict[str, Pool] = {}
        self.counts: dict[str, _Counts] = {}  # per pool key: registry entries inside its ranges
        self.pool_users: dict[str, str] = {}  # pool key -> first network seen using it (for status)
        self.named: dict[str, NamedPool] = {}
        self.held: dict[int, dict[int, Owner]] = {4: {}, 6: {}}
        self.cooling: dict[int, dict[int, float]] = {4: {}, 6: {}}
        self.cooling_fifo: deque[tuple[float, int, int]] = deque()  # (ready_at, version, address), ascending
        self.cursors: dict[str, int] = {}
        self.owners: dict[Owner, _Owned] = {}
        self.by_network: dict[str, set[Owner]] = {}
        self.by_netns: dict[str, set[Owner]] = {}
        self.by_source: dict[str, set[Owner]] = {}
        self.network_keys: dict[str, tuple[str, ...]] = {}  # last inline range sets each network named
        self.outside: dict[Owner, list[str]] = {}
        self.rechecks: deque[tuple[list[Owner], str, list[tuple[Range, ...]]]] = deque()
        self.on_recheck: Callable[[], None] | None = None  # set by the daemon: schedule recheck_async
        self.leases_total = 0
        self.counters = {"adds": 0, "dels": 0, "gc_released": 0, "reconciled": 0, "exhausted": 0}
        self.latency = Histogram()
        self._outside_logged = 0
        self._store_pruned_at = 0.0
        self.perip: Any = None  # per-IP mode (node_runtime/perip.py): told of every release
        self._restore()
        self.set_named_pools(named_pools or {})

    # -- registry --------------------------------------------------------------------------------
    def _track(self, version: int, address: int, what: str, delta: int) -> None:
        counts = self.counts
        for key, pool in self.pools.items():
            if pool.ranges[0].subnet.version == version and any(r.first <= address <= r.last for r in pool.ranges):
                if what == "leased":
                    counts[key].leased += delta
                else:
                    counts[key].cooling += delta

    def _hold(self, version: int, address: int, owner: Owner) -> None:
        self.held[version][address] = owner
        self._track(version, address, "leased", 1)

    def _unhold(self, version: int, address: int) -> None:
        if self.held[version].pop(address, None) is not None:
            self._track(version, address, "leased", -1)

    def _cool(self, version: int, address: int, ready_at: float) -> None:
        if self.cooling_fifo and self.cooling_fifo[-1][0] > ready_at:
            # Keep the FIFO ordered even if the clock stepped back: never reuse before the cooldown.
            ready_at = self.cooling_fifo[-1][0]
        if address not in self.cooling[version]:
            self._track(version, address, "cooling", 1)
        self.cooling[version][address] = ready_at
        self.cooling_fifo.append((ready_at, version, address))

    def _uncool(self, version: int, address: int) -> None:
        if self.cooling[version].pop(address, None) is not None:
            self._track(version, address, "cooling", -1)

    def _prune(self, now: float) -> None:
        """Forget cooldowns that are over (memory now; the store's rows a few seconds later)."""
        fifo = self.cooling_fifo
        while fifo and fifo[0][0] <= now:
            ready_at, version, address = fifo.popleft()
            if self.cooling[version].get(address) == ready_at:
                self._uncool(version, address)
        if now - self._store_pruned_at >= STORE_PRUNE_INTERVAL:
            self._store_pruned_at = now
            self.store.write(prune_op(now))  # nobody waits: an expired row is free either way

    async def prune_store(self) -> int:
        """Delete every expired cooling row, a chunk per transaction (ADDs go on between chunks)."""
        total, now = 0, self.clock()
        while True:
            removed = await _wait(self.store.write(prune_op(now)))
            total += removed
            if removed < 5000:
                return total

    def _pool(self, key: str, ranges: tuple[Range, ...] | None = None, network: str = "") -> Pool:
        pool = self.pools.get(key)
        if pool is None:
            pool = Pool(key=key, ranges=ranges) if ranges else Pool.from_key(key)
            self.pools[key] = pool
            self.counts[key] = self._count(pool)
            self.pool_users[key] = network
        elif network and not self.pool_users.get(key):
            self.pool_users[key] = network
        return pool

    def _count(self, pool: Pool) -> _Counts:
        """Registry entries inside a new pool's ranges (the smaller of the range or the registry)."""
        out = _Counts()
        held, cooling = self.held[pool.version], self.cooling[pool.version]
        for r in pool.ranges:
            if r.last - r.first + 1 <= len(held) + len(cooling):
                out.leased += sum(1 for a in range(r.first, r.last + 1) if a in held)
                out.cooling += sum(1 for a in range(r.first, r.last + 1) if a in cooling)
            else:
                out.leased += sum(1 for a in held if a in r)
                out.cooling += sum(1 for a in cooling if a in r)
        return out

    def _index(self, owner: Owner, owned: _Owned, add: bool) -> None:
        sources = {lease.source for lease in owned.leases}
        for index, key in [(self.by_network, owner[0]), (self.by_netns, owned.netns),
                           *[(self.by_source, s) for s in sources]]:
            if add:
                index.setdefault(key, set()).add(owner)
            else:
                members = index.get(key)
                if members is not None:
                    members.discard(owner)
                    if not members:
                        del index[key]

    def _restore(self) -> None:
        self.cursors = self.store.cursors()
        pools, owners, held = self.pools, self.owners, self.held
        for row in self.store.leases():
            pool = pools.get(row.pool)
            if pool is None:
                try:
                    pool = self._pool(row.pool, network=row.network)
                except (ConfigError, ValueError):
                    pool = _single(row.address)
                    self.pools.setdefault(pool.key, pool)
                    self.counts.setdefault(pool.key, _Counts())
            address = _parse_ip(row.address)
            owner = (row.network, row.container_id, row.ifname)
            owned = owners.get(owner)
            if owned is None:
                owned = owners[owner] = _Owned([], row.netns, row.created)
            owned.leases.append(Lease(pool, address, row.source))
            held[pool.ranges[0].subnet.version][address] = owner
            self.leases_total += 1
        by_network, by_netns, by_source = self.by_network, self.by_netns, self.by_source
        for owner, owned in self.owners.items():
            by_network.setdefault(owner[0], set()).add(owner)
            by_netns.setdefault(owned.netns, set()).add(owner)
            for lease in owned.leases:
                by_source.setdefault(lease.source, set()).add(owner)
        for _, address, ready_at in self.store.cooling(self.clock()):
            value = _parse_ip(address)
            version = 6 if ":" in address else 4
            if value not in self.held[version]:
                self._cool(version, value, ready_at)
        for key, pool in self.pools.items():
            self.counts[key] = self._count(pool)

    # -- configuration ---------------------------------------------------------------------------
    def set_named_pools(self, specs: dict[str, Any]) -> dict[str, NamedPool]:
        """Apply the daemon config's pools (start and reload). Live leases stay; leases now outside
        their pool's ranges are reported. Returns the parsed pools (with their errors)."""
        named = {name: parse_named_pool(name, spec) for name, spec in specs.items()}
        self.named = named
        for pool in named.values():
            for s in pool.sets:
                self._pool(pool_key(s), s, f"pool:{pool.name}")
        for name in list(self.by_source):
            if name:
                self._recheck(self.by_source.get(name, set()), name, named[name].sets if name in named else [])
        return named

    def _recheck(self, owners: set[Owner], source: str, sets: list[tuple[Range, ...]]) -> None:
        """Queue a check of the leases of ``owners`` from ``source`` against ``sets`` (a pool or a
        network's ranges changed). The daemon drains the queue in steps (``recheck_async``, through
        ``on_recheck``) so a change under 1e5 leases never holds the loop; without a daemon it runs now."""
        if not owners:
            return
        self.rechecks.append((list(owners), source, sets))
        if self.on_recheck is not None:
            self.on_recheck()
        else:
            self.recheck_now()

    def _recheck_owners(self, owners: list[Owner], source: str, sets: list[tuple[Range, ...]]) -> None:
        """Mark the leases of ``owners`` from ``source`` that no range of ``sets`` holds."""
        for owner in owners:
            owned = self.owners.get(owner)
            if owned is None:
                continue  # released meanwhile
            out = [lease.ip for lease in owned.leases if lease.source == source
                   and not any(s[0].subnet.version == lease.version and any(lease.address in r for r in s)
                               for s in sets)]
            if out:
                if owner not in self.outside:
                    self._report_outside(owner, out, source)
                self.outside[owner] = out
            else:
                self.outside.pop(owner, None)

    def recheck_now(self) -> None:
        while self.rechecks:
            self._recheck_owners(*self.rechecks.popleft())

    async def recheck_async(self, chunk: int = 256) -> None:
        """Drain the queued checks, ``chunk`` owners per loop iteration."""
        while self.rechecks:
            owners, source, sets = self.rechecks.popleft()
            for i in range(0, len(owners), chunk):
                self._recheck_owners(owners[i:i + chunk], source, sets)
                await asyncio.sleep(0)

    def _report_outside(self, owner: Owner, ips: list[str], source: str) -> None:
        if self._outside_logged < OUTSIDE_LOG_LIMIT:
            self._outside_logged += 1
            where = f"pool {source!r}" if source else f"network {owner[0]!r}'s ranges"
            log.warning("lease %s of %s/%s/%s is outside %s now: it stays until the pod goes",
                        ", ".join(ips), *owner, where)

    def resolve_sources(self, ipam: dict[str, Any], network: str) -> list[tuple[Pool, str]]:
        """The pools an IPAM config names, each with its source (the named pool, or ""). Raises ConfigError."""
        if not isinstance(ipam, dict):
            raise ConfigError("ipam must be an object")
        ipam = fold(ipam, IPAM_KEYS, "ipam", passthrough=IPAM_QUIET)
        if ipam.get("pool") is not None:
            name = ipam["pool"]
            if not isinstance(name, str) or name not in self.named:
                raise ConfigError(f"unknown pool {name!r}: the daemon defines {sorted(self.named)}")
            pool = self.named[name]
            if not pool.served:
                raise ConfigError(f"pool {name!r} is not served: {pool.error}")
            return [(self._pool(pool_key(s), s, network), name) for s in pool.sets]
        ranges = ipam.get("ranges")
        if ranges is None and ipam.get("subnet") is not None:  # host-local's older single-range form
            ranges = [[{k: ipam[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in ipam}]]
        if not isinstance(ranges, list) or not ranges:
            raise ConfigError("ipam.ranges must be a non-empty list of range sets")
        sets = [parse_range_set(s) for s in ranges]
        for i, a in enumerate(sets):
            for b in sets[i + 1:]:
                if overlaps(a, b):
                    raise ConfigError("two range sets of one network overlap")
        keys = tuple(pool_key(s) for s in sets)
        pools = [self._pool(k, s, network) for k, s in zip(keys, sets, strict=True)]
        if self.network_keys.get(network) != keys:
            self.network_keys[network] = keys
            self._recheck(self.by_network.get(network, set()) & self.by_source.get("", set()), "", sets)
        return [(p, "") for p in pools]

    def resolve(self, ipam: dict[str, Any], network: str) -> list[Pool]:
        return [p for p, _ in self.resolve_sources(ipam, network)]

    # -- requests --------------------------------------------------------------------------------
    def _add(self, network: str, container_id: str, ifname: str, netns: str,
             ipam: dict[str, Any]) -> tuple[list[Lease], concurrent.futures.Future | None]:
        refs = self.resolve_sources(ipam, network)
        owner = (network, container_id, ifname)
        owned = self.owners.get(owner)
        if owned is not None:
            return list(owned.leases), owned.pending
        started, now = time.perf_counter(), self.clock()
        self._prune(now)
        done: list[tuple[Pool, str, Allocation, float | None]] = []
        try:
            for pool, source in refs:
                held, cooling = self.held[pool.version], self.cooling[pool.version]
                alloc = pool.allocate(self.cursors, _taken(held, cooling, now))
                reused = cooling.get(alloc.address)
                self._uncool(pool.version, alloc.address)
                self._hold(pool.version, alloc.address, owner)
                done.append((pool, source, alloc, reused))
        except Exhausted:
            self._undo_add(owner, done)
            self.counters["exhausted"] += 1
            cooling = [(r, a) for r, v, a in self.cooling_fifo
                       if v == pool.version and a in pool and self.cooling[v].get(a) == r]
            raise Exhausted(pool.key, len(cooling), cooling[0][0] - now if cooling else 0.0) from None
        leases = [Lease(p, a.address, s) for p, s, a, _ in done]
        rows = [(p.key, to_ip(p.version, a.address), network, container_id, ifname, text_in(netns), now, s)
                for p, s, a, _ in done]
        reused = [(p.key, to_ip(p.version, a.address)) for p, _, a, r in done if r is not None]
        cursors = {p.ranges[a.range_index].cursor_key: a.cursor for p, _, a, _ in done}
        future = self.store.write(grant_op(rows, reused, cursors))
        owned = self.owners[owner] = _Owned(leases, netns, now, future)
        self._index(owner, owned, True)
        self.leases_total += len(leases)
        self.counters["adds"] += 1
        self.latency.observe(time.perf_counter() - started)
        return list(leases), future

    def _undo_add(self, owner: Owner, done: list[tuple[Pool, str, Allocation, float | None]]) -> None:
        for pool, _, alloc, reused in reversed(done):
            self._unhold(pool.version, alloc.address)
            if reused is not None:
                self._cool(pool.version, alloc.address, reused)
            for key, before in pool.undo(alloc).items():
                if self.cursors.get(key) == alloc.cursor:
                    if before is None:
                        self.cursors.pop(key, None)
                    else:
                        self.cursors[key] = before

    def _add_failed(self, owner: Owner, leases: list[Lease]) -> None:
        """The store could not record an ADD: forget it, so memory stays what the disk says."""
        owned = self.owners.pop(owner, None)
        if owned is None:
            return
        self._index(owner, owned, False)
        for lease in leases:
            if self.held[lease.version].get(lease.address) == owner:
                self._unhold(lease.version, lease.address)
        self.leases_total -= len(leases)
        self.counters["adds"] -= 1

    def add(self, network: str, container_id: str, ifname: str, netns: str, ipam: dict[str, Any]) -> list[Lease]:
        """Leases for an attachment: the existing ones (idempotent ADD) or one new address per pool."""
        leases, future = self._add(network, container_id, ifname, netns, ipam)
        self._settle_add((network, container_id, ifname), leases, future, future.exception() if future else None)
        return leases

    async def add_async(self, network: str, container_id: str, ifname: str, netns: str,
                        ipam: dict[str, Any]) -> list[Lease]:
        leases, future = self._add(network, container_id, ifname, netns, ipam)
        error = None
        if future is not None:
            try:
                await _wait(future)
            except Exception as exc:  # noqa: BLE001 - handled below
                error = exc
        self._settle_add((network, container_id, ifname), leases, future, error)
        return leases

    def _settle_add(self, owner: Owner, leases: list[Lease], future, error: BaseException | None) -> None:
        owned = self.owners.get(owner)
        if error is None:
            if owned is not None and owned.pending is future:
                owned.pending = None
            return
        if owned is not None and owned.pending is future:
            self._add_failed(owner, leases)
        raise error

    def lookup(self, network: str, container_id: str, ifname: str) -> list[Lease] | None:
        owned = self.owners.get((network, container_id, ifname))
        return None if owned is None else list(owned.leases)

    def release(self, network: str, container_id: str, ifname: str) -> int:
        """Release an attachment's addresses; unknown attachments release nothing (DEL never fails)."""
        return self._release_sync([(network, container_id, ifname)])

    async def release_async(self, network: str, container_id: str, ifname: str) -> int:
        return await self._release_wait([(network, container_id, ifname)])

    def _release(self, owners: list[Owner]):
        now = self.clock()
        self._prune(now)
        rows, gone = [], []
        for owner in owners:
            owned = self.owners.pop(owner, None)
            if owned is None:
                continue
            self._index(owner, owned, False)
            self.outside.pop(owner, None)
            for lease in owned.leases:
                if self.held[lease.version].get(lease.address) == owner:
                    self._unhold(lease.version, lease.address)
                    self._cool(lease.version, lease.address, now + self.cooldown)
                    rows.append((lease.pool.key, lease.ip, self.cooling[lease.version][lease.address]))
            self.leases_total -= len(owned.leases)
            gone.append((owner, owned))
        future = self.store.write(release_op(rows)) if rows else None
        self.counters["dels"] += len(gone)
        return gone, future

    def _release_failed(self, gone: list[tuple[Owner, _Owned]]) -> None:
        """The store could not record a release: the addresses stay leased, as on disk."""
        for owner, owned in gone:
            if owner in self.owners:
                continue  # leased again meanwhile (cannot be the same addresses: they are cooling)
            for lease in owned.leases:
                self._uncool(lease.version, lease.address)
                self._hold(lease.version, lease.address, owner)
            self.owners[owner] = owned
            self._index(owner, owned, True)
            self.leases_total += len(owned.leases)
        self.counters["dels"] -= len(gone)

    def _released(self, gone: list[tuple[Owner, _Owned]]) -> int:
        """The releases are recorded: tell per-IP mode (it unassigns the addresses once the link is gone)."""
        if self.perip is not None:
            for owner, owned in gone:
                self.perip.released(owned.netns, owner[2], owned.leases)
        return len(gone)

    def _release_sync(self, owners: list[Owner]) -> int:
        gone, future = self._release(owners)
        if future is not None and future.exception() is not None:
            self._release_failed(gone)
            raise future.exception()
        return self._released(gone)

    async def _release_wait(self, owners: list[Owner]) -> int:
        gone, future = self._release(owners)
        if future is not None:
            try:
                await _wait(future)
            except Exception:
                self._release_failed(gone)
                raise
        return self._released(gone)

    def _gc_stale(self, network: str, valid: set[tuple[str, str]]) -> list[Owner]:
        return [o for o in self.by_network.get(network, ()) if (o[1], o[2]) not in valid]

    def gc(self, network: str, valid: set[tuple[str, str]]) -> int:
        """Release every lease of ``network`` whose (container id, ifname) is not in ``valid``."""
        released = self._release_sync(self._gc_stale(network, valid))
        self.counters["gc_released"] += released
        return released

    async def gc_async(self, network: str, valid: set[tuple[str, str]]) -> int:
        released = await self._release_wait(self._gc_stale(network, valid))
        self.counters["gc_released"] += released
        return released

    def stale(self, grace: float, gone: set[str]) -> list[Owner]:
        """Owners older than ``grace`` whose namespace path is in ``gone``."""
        now = self.clock()
        return [o for path in gone for o in self.by_netns.get(path, ())
                if now - self.owners[o].created >= grace]

    def reconcile(self, grace: float, exists: Callable[[str], bool] = os.path.exists) -> int:
        """Release leases whose pod network namespace is gone (runtimes do not all send GC)."""
        gone = {p for p in list(self.by_netns) if p and not exists(p)}
        released = self._release_sync(self.stale(grace, gone))
        self.counters["reconciled"] += released
        return released

    async def reconcile_async(self, grace: float, gone: set[str], chunk: int = 64) -> int:
        """Release, a chunk of namespace paths at a time (the loop serves ADDs in between), the
        owners of ``gone`` paths (found off the loop by the caller) older than ``grace``."""
        paths, released = list(gone), 0
        for i in range(0, len(paths), chunk):
            released += await self._release_wait(self.stale(grace, set(paths[i:i + chunk])))
            await asyncio.sleep(0)
        self.counters["reconciled"] += released
        return released

    # -- observability ---------------------------------------------------------------------------
    def _pool_status(self, pool: Pool) -> dict[str, Any]:
        c = self.counts[pool.key]
        return {"ranges": [r.spec() for r in pool.ranges], "network": self.pool_users.get(pool.key, ""),
                "leased": c.leased, "cooling": c.cooling, "free": max(pool.capacity() - c.leased - c.cooling, 0),
                "capacity": pool.capacity()}

    def free(self, pool: Pool) -> int:
        c = self.counts[pool.key]
        return max(pool.capacity() - c.leased - c.cooling, 0)

    def status(self) -> dict[str, Any]:
        """O(pools): never proportional to the leases, so it never holds up an ADD."""
        self._prune(self.clock())
        named = {}
        for name, pool in self.named.items():
            entry: dict[str, Any] = {"served": pool.served,
                                     "leases": len(self.by_source.get(name, ())),
                                     "outside": sum(1 for o in self.by_source.get(name, ()) if o in self.outside)
                                     if self.outside else 0}
            if pool.error:
                entry["error"] = pool.error
            entry["sets"] = [self._pool_status(self.pools[pool_key(s)]) for s in pool.sets]
            named[name] = entry
        return {
            "ready": all(p.served for p in self.named.values()),
            "leases": self.leases_total,
            "attachments": len(self.owners),
            "outside": sum(len(v) for v in self.outside.values()),
            "outside_pending": sum(len(owners) for owners, _, _ in self.rechecks),
            "named_pools": named,
            "pools": [self._pool_status(p) for p in self.pools.values()],
            "counters": dict(self.counters),
            "cooldown_seconds": self.cooldown,
        }

    def outside_list(self, limit: int = 100) -> list[dict[str, Any]]:
        return [{"network": o[0], "containerID": o[1], "ifname": o[2], "addresses": ips}
                for o, ips in list(self.outside.items())[:limit]]

    def metrics(self) -> str:
        lines = ["# HELP eksnet_ipam_leases Addresses handed out inside each pool's ranges.",
                 "# TYPE eksnet_ipam_leases gauge"]
        for key in self.pools:
            lines.append(f'eksnet_ipam_leases{{pool="{label(key)}"}} {self.counts[key].leased}')
        lines += ["# HELP eksnet_ipam_free_addresses Addresses never handed out or cooled down (excludes cooling).",
                  "# TYPE eksnet_ipam_free_addresses gauge"]
        for key, p in self.pools.items():
            lines.append(f'eksnet_ipam_free_addresses{{pool="{label(key)}"}} {self.free(p)}')
        lines += ["# HELP eksnet_ipam_cooling_addresses Released addresses waiting for their cooldown.",
                  "# TYPE eksnet_ipam_cooling_addresses gauge"]
        for key in self.pools:
            lines.append(f'eksnet_ipam_cooling_addresses{{pool="{label(key)}"}} {self.counts[key].cooling}')
        lines += ["# HELP eksnet_ipam_outside_leases Live leases outside their pool's current ranges "
                  "(released when their pod goes).", "# TYPE eksnet_ipam_outside_leases gauge",
                  f"eksnet_ipam_outside_leases {sum(len(v) for v in self.outside.values())}",
                  "# HELP eksnet_ipam_pool_served Whether a pool of the daemon config is served (1) or not (0).",
                  "# TYPE eksnet_ipam_pool_served gauge"]
        for name, pool in self.named.items():
            lines.append(f'eksnet_ipam_pool_served{{name="{label(name)}"}} {int(pool.served)}')
        for name, value in self.counters.items():
            lines += [f"# TYPE eksnet_ipam_{name}_total counter", f"eksnet_ipam_{name}_total {value}"]
        lines += ["# HELP eksnet_ipam_allocation_seconds Time to allocate one ADD's addresses (commit excluded).",
                  "# TYPE eksnet_ipam_allocation_seconds histogram", *self.latency.lines("eksnet_ipam_allocation_seconds")]
        return "\n".join(lines) + "\n"


def _taken(held: dict[int, Owner], cooling: dict[int, float], now: float) -> Callable[[int], bool]:
    """Leased, or released and still cooling down at ``now``."""
    return lambda a: a in held or cooling.get(a, 0.0) > now


async def _wait(future: concurrent.futures.Future) -> Any:
    if future.done():
        return future.result()
    return await asyncio.wrap_future(future)


def label(value: str) -> str:
    """A Prometheus label value, escaped; bytes that are not UTF-8 (surrogates) become U+FFFD."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _parse_ip(text: str) -> int:
    """An address as an integer (inet_pton: ~20x faster than ipaddress, which start-up feels)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text), "big")
    except OSError:
        return int(ipaddress.ip_address(text))


def _single(address: str) -> Pool:
    """A stand-in pool for a restored lease whose range set no longer parses: just its address."""
    net = ipaddress.ip_network(address)
    ranges = parse_range_set([{"subnet": str(net), "delegated": True}])
    return Pool(key=pool_key(ranges), ranges=ranges)
