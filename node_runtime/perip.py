"""Per-IP mode: pod addresses taken one at a time from a range that every node shares (the seed's
NAD range), made routable in the VPC by assigning each to the node's own Multus ENI.

The daemon's allocator picks the address (leases, cooldown and crash safety as for any pool); this
module makes EC2 the arbiter between nodes:

- ADD: the lease is recorded first, then the address is assigned to the pool's ENI
  (``AssignPrivateIpAddresses`` / ``AssignIpv6Addresses``, never ``AllowReassignment``) before ADD
  answers. An address another interface holds is skipped: the attachment is released (that
  address cools down, so it is retried only after the cooldown) and the next address is tried, up
  to ``MAX_ATTEMPTS`` times. Any other refusal releases the attachment and answers a CNI error.
- DEL: the lease is released at once; the unassignment runs after the pod's link is gone (the
  daemon's deferred link deletion is awaited first), so no live interface ever holds an address
  that EC2 may hand to another node.
- Reconciliation (the daemon's timer and ``eksnet-ipamd reconcile``): every address of a per-IP
  range that the ENI holds without a lease is unassigned (a crash between the two steps, a DEL
  whose unassignment failed).

One asyncio lock per (ENI, address) orders the EC2 calls on that address, and every decision is
re-checked against the leases under the lock, so an unassignment can never undo a newer claim.

Config (a pool of ``ipamd.json``)::

    "multus1": {"mode": "per-ip", "eniId": "eni-0123456789abcdef0",
                 "ranges": [[{"subnet": "192.168.192.0/24", "rangeStart": "192.168.192.128",
                              "rangeEnd": "192.168.192.255"}]]}

``region`` is optional (default: botocore's chain, which ends at IMDS).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .cni.protocol import Code
from .cni.types import TRY_AGAIN_LATER, CNIError
from .ec2assign import Ec2Assigner, Ec2Error, HeldElsewhere
from .ipam.allocator import ConfigError, parse_range_set, pool_key

log = logging.getLogger("eksnet-ipamd.perip")

MODE = "per-ip"
MAX_ATTEMPTS = 16  # addresses tried for one ADD before answering "try again later"
EC2_REFUSED = Code.EC2_REFUSED  # EC2 refused the assignment for good (not throttling, not an address held elsewhere)
_ENI_ID = re.compile(r"^eni-[0-9a-f]{8,17}$")
_POOL_KEYS = frozenset({"mode", "eniId", "region", "ranges"})

Blocking = Callable[..., Awaitable[Any]]


def is_per_ip(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("mode") == MODE


def validate_pools(pools: dict[str, Any]) -> None:
    """Each pool's ``mode``: ``prefix`` (default: the node's delegated prefixes) or ``per-ip``."""
    for name, spec in pools.items():
        mode = spec.get("mode", "prefix")
        if mode not in ("prefix", MODE):
            raise ValueError(f'pool {name!r}: mode must be "prefix" (the default) or "{MODE}", got {mode!r}')
        if mode == MODE:
            validate_pool(name, spec)


def validate_pool(name: str, spec: dict[str, Any]) -> None:
    """Refuse a per-IP pool that cannot work, naming the key to fix (raises ValueError)."""
    unknown = sorted(set(spec) - _POOL_KEYS)
    if unknown:
        raise ValueError(f"pool {name!r} (mode per-ip) has unknown keys {unknown}; known: {sorted(_POOL_KEYS)}")
    eni = spec.get("eniId")
    if not isinstance(eni, str) or not _ENI_ID.match(eni):
        raise ValueError(f"pool {name!r} (mode per-ip) needs eniId: the node's Multus ENI id (eni-...), got {eni!r}")
    region = spec.get("region")
    if region is not None and (not isinstance(region, str) or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d+$", region)):
        raise ValueError(f"pool {name!r}: region must be an AWS region such as eu-central-1, got {region!r}")
    try:
        for ranges in spec["ranges"]:
            parse_range_set(ranges)
    except ConfigError as exc:
        raise ValueError(f"pool {name!r}: {exc}") from None


@dataclass(frozen=True)
class PerIpPool:
    name: str
    eni: str
    region: str | None


class PerIp:
    """The per-IP pools of one daemon, keyed by allocator pool key (the ranges' identity)."""

    def __init__(self, pools: dict[str, Any], host: Any,
                 assigner_for: Callable[[str | None], Ec2Assigner] | None = None) -> None:
        self.by_key: dict[str, PerIpPool] = {}
        self.by_name: dict[str, PerIpPool] = {}
        self.ranges: dict[str, tuple[Any, ...]] = {}  # pool key -> its ranges (allocator Range objects)
        for name, spec in pools.items():
            if not is_per_ip(spec):
                continue
            validate_pool(name, spec)
            pool = self.by_name[name] = PerIpPool(name, spec["eniId"], spec.get("region"))
            for ranges in spec["ranges"]:
                parsed = parse_range_set(ranges)
                self.by_key[pool_key(parsed)] = pool
                self.ranges[pool_key(parsed)] = parsed
        self.host = host  # the daemon's: worker threads (blocking) and deferred link deletions (settle)
        self.service: Any = host.ipam  # the IPAM service whose leases decide what stays assigned
        self.blocking: Blocking = host.blocking
        self._assigner_for = assigner_for or (lambda region: Ec2Assigner(region=region))
        self._assigners: dict[str | None, Ec2Assigner] = {}
        self._refused: set[tuple[str, str]] = set()  # (ENI, address) another ENI holds: nothing to unassign
        self._locks: dict[tuple[str, str], list[Any]] = {}  # (ENI, address) -> [lock, users]
        self._tasks: set[asyncio.Task] = set()
        self.counters = {"perip_assigned": 0, "perip_unassigned": 0, "perip_skipped": 0, "perip_refused": 0,
                         "perip_reconciled": 0}

    @classmethod
    def from_config(cls, pools: dict[str, Any], host: Any) -> PerIp | None:
        if not any(is_per_ip(p) for p in pools.values()):
            return None
        perip = cls(pools, host)
        workers = getattr(host, "pool", None)  # the daemon's worker threads
        if workers is not None:
            workers.submit(perip.warm)
        return perip

    def warm(self) -> None:
        """Build the EC2 clients now (botocore loads EC2's model: ~1 s) rather than on the first pod's ADD."""
        for pool in self._one_per_region():
            try:
                _ = self.assigner(pool).client
            except Ec2Error as exc:  # no botocore: the first per-IP ADD reports it as a CNI error
                log.warning("per-IP pools cannot call EC2: %s", exc)

    # -- helpers -------------------------------------------------------------------------------------
    def assigner(self, pool: PerIpPool) -> Ec2Assigner:
        if pool.region not in self._assigners:
            self._assigners[pool.region] = self._assigner_for(pool.region)
        return self._assigners[pool.region]

    @contextlib.asynccontextmanager
    async def _exclusive(self, eni: str, address: str) -> AsyncIterator[None]:
        """One EC2 change at a time per (ENI, address); the lock lives only while someone uses it."""
        entry = self._locks.setdefault((eni, address), [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[(eni, address)]

    def pool_of(self, lease: Any) -> PerIpPool | None:
        """The per-IP pool a lease came from: by the daemon pool's name when the service records it
        (``lease.source``), else by its ranges (a network config naming the same ranges inline)."""
        return self.by_name.get(getattr(lease, "source", "") or "") or self.by_key.get(lease.pool.key)

    def in_range(self, key: str, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(r.subnet.version == ip.version and r.first <= int(ip) <= r.last for r in self.ranges[key])

    @staticmethod
    def _leased(service: Any) -> set[str]:
        """Every address the IPAM service has leased now (a few hundred at most on a node)."""
        return {lease.ip for owned in service.owners.values() for lease in owned.leases}

    # -- ADD -----------------------------------------------------------------------------------------
    async def claim(self, service: Any, network: str, container_id: str, ifname: str, netns: str,
                    ipam: dict[str, Any], leases: list[Any]) -> list[Any]:
        """Make every per-IP lease of the attachment assigned to its ENI, skipping addresses held
        elsewhere. Returns the attachment's leases; raises CNIError (the attachment released)."""
        for _ in range(MAX_ATTEMPTS):
            mine = [lease for lease in leases if self.pool_of(lease) is not None]
            if not mine:
                return leases
            refused = []
            try:
                for lease in mine:
                    if not await self._assign(self.pool_of(lease), lease):
                        refused.append(lease.ip)
            except Ec2Error as exc:
                service.release(network, container_id, ifname)
                self.counters["perip_refused"] += 1
                code = TRY_AGAIN_LATER if exc.transient else EC2_REFUSED
                raise CNIError(code, "EC2 did not assign the pod address to the Multus ENI", str(exc)) from None
            if service.lookup(network, container_id, ifname) is None:  # a DEL came while EC2 answered
                raise CNIError(TRY_AGAIN_LATER, "the attachment was deleted while its address was assigned")
            if not refused:
                return leases
            self.counters["perip_skipped"] += len(refused)
            log.info("addresses %s are assigned to other interfaces: trying the next ones", refused)
            service.release(network, container_id, ifname)  # the refused addresses cool down: skipped
            leases = service.add(network, container_id, ifname, netns, ipam)
        service.release(network, container_id, ifname)
        raise CNIError(TRY_AGAIN_LATER, "per-IP range contended",
                       f"{MAX_ATTEMPTS} addresses in a row are assigned to other interfaces; retry later")

    async def _assign(self, pool: PerIpPool, lease: Any) -> bool:
        """True once the lease's address is on the pool's ENI; False if another interface holds it.
        Always asks EC2 (one call per ADD): a remembered answer could be stale, and a wrong "ours"
        would leave a pod with an address the VPC does not deliver."""
        async with self._exclusive(pool.eni, lease.ip):
            try:
                await self.blocking(self.assigner(pool).assign, pool.eni, lease.ip)
            except HeldElsewhere:
                self._refused.add((pool.eni, lease.ip))
                return False
            self.counters["perip_assigned"] += 1
        return True

    # -- DEL -----------------------------------------------------------------------------------------
    def released(self, netns: str, ifname: str, leases: list[Any]) -> None:
        """Called by the IPAM service when an attachment's leases are released (DEL, GC, reconcile):
        unassign its per-IP addresses once its link is gone, off the caller's path."""
        mine = [(self.pool_of(lease), lease) for lease in leases if self.pool_of(lease) is not None]
        if not mine:
            return
        task = asyncio.get_running_loop().create_task(self._unassign_after_link(netns, ifname, mine))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unassign_after_link(self, netns: str, ifname: str, mine: list[tuple[PerIpPool, Any]]) -> None:
        await asyncio.sleep(0)  # the DEL that released the leases registers its link deletion first
        await self.host.settle(("link", netns, ifname))
        for pool, lease in mine:
            try:
                await self._unassign(pool, lease.ip)
            except Ec2Error as exc:  # reconciliation retries
                log.warning("cannot unassign %s from %s yet: %s", lease.ip, pool.eni, exc)

    async def _unassign(self, pool: PerIpPool, address: str) -> bool:
        async with self._exclusive(pool.eni, address):
            if address in self._leased(self.service):
                return False  # leased again meanwhile: the new owner keeps it
            if (pool.eni, address) in self._refused:
                self._refused.discard((pool.eni, address))
                return False  # another ENI holds it: never ours
            await self.blocking(self.assigner(pool).unassign, pool.eni, address)
            self.counters["perip_unassigned"] += 1
        return True

    async def drain(self) -> None:
        """Wait for pending unassignments (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    # -- reconciliation ------------------------------------------------------------------------------
    async def reconcile(self, service: Any) -> int:
        """Unassign every address of a per-IP range that our ENI holds without a lease."""
        unassigned = 0
        by_eni: dict[str, list[tuple[str, PerIpPool]]] = {}
        for key, pool in self.by_key.items():
            by_eni.setdefault(pool.eni, []).append((key, pool))
        for eni, keyed in by_eni.items():
            try:
                held = set(await self.blocking(self.assigner(keyed[0][1]).held, eni))
            except Ec2Error as exc:
                log.warning("cannot list the addresses of %s: %s", eni, exc)
                continue
            leased = self._leased(service)
            for key, pool in keyed:
                for address in sorted(held - leased):
                    if not self.in_range(key, address):
                        continue
                    try:
                        unassigned += await self._unassign(pool, address)
                    except Ec2Error as exc:
                        log.warning("cannot unassign %s from %s: %s", address, eni, exc)
        self.counters["perip_reconciled"] += unassigned
        if unassigned:
            log.info("unassigned %d per-IP addresses that had no lease", unassigned)
        return unassigned

    def _one_per_region(self) -> list[PerIpPool]:
        return list({p.region: p for p in self.by_key.values()}.values())

    def status(self) -> dict[str, Any]:
        return {"pools": sorted({p.name for p in self.by_key.values()}),
                "ec2_client_ready": all(self.assigner(p).ready for p in self._one_per_region()),
                "enis": sorted({p.eni for p in self.by_key.values()}), "counters": dict(self.counters)}


def ranges_in_subnet(range_sets: Any, subnets: Any) -> list[list[dict[str, str]]]:
    """The node setup's choice among a per-IP interface's range sets (one per zone, as
    ``MultusNetworking`` lists them in ``/etc/eksnet/multus.json``): those inside one of ``subnets``,
    the ENI's own subnet CIDRs (from IMDS). Another zone's range would be refused by EC2."""
    nets = [ipaddress.ip_network(s, strict=False) for s in subnets if s]
    return [list(r) for r in range_sets
            if r and all(any(ipaddress.ip_network(x["subnet"], strict=False) == n for n in nets) for x in r)]
