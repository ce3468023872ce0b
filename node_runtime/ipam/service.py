"""The IPAM service: pools (pure allocator) plus the store, keyed by lease owner
(network, container id, ifname). Every public method is synchronous and must be called from one
thread (the daemon's event loop): that is what makes concurrent requests safe, without locks.
Each change is committed to the store before the method returns."""

from __future__ import annotations

import bisect
import ipaddress
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .allocator import (
    ConfigError,
    Exhausted,
    Pool,
    Range,
    overlaps,
    parse_range_set,
    pool_key,
    to_ip,
)
from .store import Grant, Store

Owner = tuple[str, str, str]  # (network, container id, ifname)

# Prometheus histogram buckets for allocation latency, seconds.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True)
class Lease:
    pool: Pool
    address: int

    @property
    def ip(self) -> str:
        return to_ip(self.pool.version, self.address)

    def interface(self) -> str:
        """address/prefixlen of the range it came from."""
        rng = self.pool.ranges[self.pool.range_of(self.address) or 0]
        return f"{self.ip}/{rng.subnet.prefixlen}"

    def gateway(self) -> str | None:
        rng = self.pool.ranges[self.pool.range_of(self.address) or 0]
        return None if rng.gateway is None else to_ip(self.pool.version, rng.gateway)


@dataclass
class _Owned:
    leases: list[Lease]
    netns: str
    created: float


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


class IpamService:
    def __init__(self, store: Store, cooldown: float = 30.0, named_pools: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.cooldown = cooldown
        self.named_pools = named_pools or {}
        self.clock = clock
        self.pools: dict[str, Pool] = {}
        self.pool_users: dict[str, str] = {}  # pool key -> first network seen using it (for messages)
        self.owners: dict[Owner, _Owned] = {}
        self.counters = {"adds": 0, "dels": 0, "gc_released": 0, "reconciled": 0, "exhausted": 0}
        self.latency = Histogram()
        self.perip: Any = None  # per-IP mode (node_runtime/perip.py): told of every release
        self._restore()

    # -- state ---------------------------------------------------------------------------------------
    def _pool(self, key: str, ranges: tuple[Range, ...] | None = None, network: str = "") -> Pool:
        pool = self.pools.get(key)
        if pool is None:
            pool = Pool(key=key, ranges=ranges, cooldown=self.cooldown) if ranges else Pool.from_key(key, self.cooldown)
            for other in self.pools.values():
                if overlaps(pool.ranges, other.ranges):
                    raise ConfigError(f"ranges {key} overlap a different pool in use by network "
                                      f"{self.pool_users.get(other.key, '?')!r}: {other.key}")
            self.pools[key] = pool
            self.pool_users[key] = network
        return pool

    def _restore(self) -> None:
        for key, index, cursor in self.store.cursors():
            pool = self._pool(key)
            if index < len(pool.cursors):
                pool.cursors[index] = int(cursor)
        for row in self.store.leases():
            pool = self._pool(row.pool, network=row.network)
            address = _parse_ip(row.address)
            pool.take(address)
            owned = self.owners.setdefault((row.network, row.container_id, row.ifname),
                                           _Owned([], row.netns, row.created))
            owned.leases.append(Lease(pool, address))
        for key, address, ready_at in self.store.cooling():
            self._pool(key).cooling.append((_parse_ip(address), ready_at))

    # -- requests ------------------------------------------------------------------------------------
    def resolve(self, ipam: dict[str, Any], network: str) -> list[Pool]:
        """The pools an IPAM config names (``ranges`` or a daemon ``pool``). Raises ConfigError."""
        if not isinstance(ipam, dict):
            raise ConfigError("ipam must be an object")
        ranges = ipam.get("ranges")
        if "pool" in ipam:
            name = ipam["pool"]
            if not isinstance(name, str) or name not in self.named_pools:
                raise ConfigError(f"unknown pool {name!r}: the daemon defines {sorted(self.named_pools)}")
            ranges = self.named_pools[name].get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise ConfigError("ipam.ranges must be a non-empty list of range sets")
        sets = [parse_range_set(s) for s in ranges]
        for i, a in enumerate(sets):
            for b in sets[i + 1:]:
                if overlaps(a, b):
                    raise ConfigError("two range sets of one network overlap")
        return [self._pool(pool_key(s), s, network) for s in sets]

    def add(self, network: str, container_id: str, ifname: str, netns: str, ipam: dict[str, Any]) -> list[Lease]:
        """Leases for an attachment: the existing ones (idempotent ADD) or one new address per pool."""
        pools = self.resolve(ipam, network)
        owner = (network, container_id, ifname)
        if owner in self.owners:
            return list(self.owners[owner].leases)
        started, now = time.perf_counter(), self.clock()
        done = []
        try:
            for pool in pools:
                done.append((pool, pool.allocate(now)))
            self.store.grant([Grant(p.key, to_ip(p.version, a.address), a.range_index,
                                    None if a.cursor is None else str(a.cursor)) for p, a in done],
                             network, container_id, ifname, netns, now)
        except BaseException as exc:
            for pool, alloc in reversed(done):
                pool.undo(alloc)
            if isinstance(exc, Exhausted):
                self.counters["exhausted"] += 1
            raise
        leases = [Lease(p, a.address) for p, a in done]
        self.owners[owner] = _Owned(leases, netns, now)
        self.counters["adds"] += 1
        self.latency.observe(time.perf_counter() - started)
        return leases

    def lookup(self, network: str, container_id: str, ifname: str) -> list[Lease] | None:
        owned = self.owners.get((network, container_id, ifname))
        return None if owned is None else list(owned.leases)

    def release(self, network: str, container_id: str, ifname: str) -> int:
        """Release an attachment's addresses; unknown attachments release nothing (DEL never fails)."""
        return self._release_owners([(network, container_id, ifname)])

    def _release_owners(self, owners: list[Owner]) -> int:
        now = self.clock()
        rows, undo = [], []
        for owner in owners:
            owned = self.owners.get(owner)
            if owned is None:
                continue
            for lease in owned.leases:
                ready_at = lease.pool.release(lease.address, now)
                if ready_at is not None:
                    rows.append((lease.pool.key, lease.ip, ready_at))
                    undo.append(lease)
        try:
            self.store.release(rows)
        except BaseException:
            for lease in undo:  # keep memory equal to disk: the addresses stay leased
                lease.pool.cooling.pop()
                lease.pool.take(lease.address)
            raise
        released = 0
        for owner in owners:
            owned = self.owners.pop(owner, None)
            if owned is not None:
                released += 1
                if self.perip is not None:  # unassign per-IP addresses from the ENI once the link is gone
                    self.perip.released(owned.netns, owner[2], owned.leases)
        self.counters["dels"] += released
        return released

    def gc(self, network: str, valid: set[tuple[str, str]]) -> int:
        """Release every lease of ``network`` whose (container id, ifname) is not in ``valid``."""
        stale = [o for o in self.owners if o[0] == network and (o[1], o[2]) not in valid]
        released = self._release_owners(stale)
        self.counters["gc_released"] += released
        return released

    def reconcile(self, grace: float, exists: Callable[[str], bool] = os.path.exists) -> int:
        """Release leases whose pod network namespace is gone (runtimes do not all send GC)."""
        now = self.clock()
        stale = [o for o, owned in self.owners.items()
                 if now - owned.created >= grace and owned.netns and not exists(owned.netns)]
        released = self._release_owners(stale)
        self.counters["reconciled"] += released
        return released

    # -- observability -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "leases": sum(len(o.leases) for o in self.owners.values()),
            "attachments": len(self.owners),
            "pools": [{"ranges": [r.spec() for r in p.ranges], "network": self.pool_users.get(k, ""),
                       "leased": len(p.leased), "cooling": len(p.cooling), "free": p.free(),
                       "capacity": p.capacity()} for k, p in self.pools.items()],
            "counters": dict(self.counters),
            "cooldown_seconds": self.cooldown,
        }

    def metrics(self) -> str:
        lines = ["# HELP eksnet_ipam_leases Addresses handed out, per pool.", "# TYPE eksnet_ipam_leases gauge"]
        for key, p in self.pools.items():
            lines.append(f'eksnet_ipam_leases{{pool="{label(key)}"}} {len(p.leased)}')
        lines += ["# HELP eksnet_ipam_free_addresses Addresses never handed out or cooled down (excludes cooling).",
                  "# TYPE eksnet_ipam_free_addresses gauge"]
        for key, p in self.pools.items():
            lines.append(f'eksnet_ipam_free_addresses{{pool="{label(key)}"}} {p.free()}')
        lines += ["# HELP eksnet_ipam_cooling_addresses Released addresses waiting for their cooldown.",
                  "# TYPE eksnet_ipam_cooling_addresses gauge"]
        for key, p in self.pools.items():
            lines.append(f'eksnet_ipam_cooling_addresses{{pool="{label(key)}"}} {len(p.cooling)}')
        for name, value in self.counters.items():
            lines += [f"# TYPE eksnet_ipam_{name}_total counter", f"eksnet_ipam_{name}_total {value}"]
        lines += ["# HELP eksnet_ipam_allocation_seconds Time to allocate and record one ADD's addresses.",
                  "# TYPE eksnet_ipam_allocation_seconds histogram", *self.latency.lines("eksnet_ipam_allocation_seconds")]
        return "\n".join(lines) + "\n"


def label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _parse_ip(text: str) -> int:
    return int(ipaddress.ip_address(text))
