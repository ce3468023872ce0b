"""The pure allocator: ranges, pools and the allocation rule. No I/O, no clock: time is passed in.

A pool is one range set (host-local's term): an ordered list of ranges, one address handed out per
request. Every range keeps a *cursor*: addresses at or past it were never handed out; addresses
before it are either leased or cooling down in a FIFO of released addresses. Allocation takes the
cursor (and advances it) while the range has fresh addresses, and otherwise the oldest released
address whose cooldown is over. Both are O(1), whatever the range's size: an IPv6 /80 (2^48
addresses) is never enumerated. Only excluded addresses (gateway, network, broadcast, ``exclude``)
are skipped, and there are few of them."""

from __future__ import annotations

import ipaddress
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """A range configuration that cannot be used (reported as CNI code 7)."""


class Exhausted(Exception):
    """No address is free. ``cooling`` counts the released addresses still in their cooldown."""

    def __init__(self, pool: str, cooling: int, ready_in: float) -> None:
        super().__init__(pool)
        self.pool = pool
        self.cooling = cooling
        self.ready_in = ready_in


@dataclass(frozen=True)
class Range:
    subnet: IPNetwork
    first: int  # addresses as integers, inclusive bounds
    last: int
    gateway: int | None = None
    excluded: frozenset[int] = frozenset()

    @property
    def size(self) -> int:
        return self.last - self.first + 1 - sum(1 for a in self.excluded if self.first <= a <= self.last)

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"subnet": str(self.subnet), "rangeStart": _addr(self, self.first),
                               "rangeEnd": _addr(self, self.last)}
        if self.gateway is not None:
            out["gateway"] = _addr(self, self.gateway)
        extra = sorted(self.excluded - ({self.gateway} if self.gateway is not None else set()) - _edges(self.subnet))
        if extra:
            out["exclude"] = [_addr(self, a) for a in extra]
        return out


def to_ip(version: int, value: int) -> str:
    return str(ipaddress.IPv6Address(value) if version == 6 else ipaddress.IPv4Address(value))


def _addr(rng: Range, value: int) -> str:
    return to_ip(rng.subnet.version, value)


def _edges(subnet: IPNetwork) -> set[int]:
    """Never handed out: IPv4 network and broadcast addresses (of a /30 or larger), and the IPv6
    subnet-router anycast address (the all-zero one, of a /126 or larger)."""
    if subnet.version == 4 and subnet.prefixlen <= 30:
        return {int(subnet.network_address), int(subnet.broadcast_address)}
    if subnet.version == 6 and subnet.prefixlen <= 126:
        return {int(subnet.network_address)}
    return set()


def _ip_in(subnet: IPNetwork, value: Any, what: str) -> int:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be an IP address string")
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not an IP address") from None
    if ip not in subnet:
        raise ConfigError(f"{what} {value} is outside {subnet}")
    return int(ip)


def parse_range(spec: Any) -> Range:
    if not isinstance(spec, dict):
        raise ConfigError("a range must be an object with a subnet")
    raw = spec.get("subnet")
    if not isinstance(raw, str):
        raise ConfigError("a range needs a subnet (CIDR string)")
    try:
        subnet = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise ConfigError(f"subnet {raw!r} is not a CIDR") from None
    first, last = int(subnet.network_address), int(subnet.broadcast_address)
    if "rangeStart" in spec:
        first = _ip_in(subnet, spec["rangeStart"], "rangeStart")
    if "rangeEnd" in spec:
        last = _ip_in(subnet, spec["rangeEnd"], "rangeEnd")
    if first > last:
        raise ConfigError(f"rangeStart is after rangeEnd in {subnet}")
    excluded = set(_edges(subnet))
    gateway = None
    if spec.get("gateway") is not None:
        gateway = _ip_in(subnet, spec["gateway"], "gateway")
        excluded.add(gateway)
    exclude = spec.get("exclude", [])
    if not isinstance(exclude, list):
        raise ConfigError("exclude must be a list of addresses")
    for value in exclude:
        excluded.add(_ip_in(subnet, value, "exclude"))
    if len(excluded) > 4096:
        raise ConfigError("at most 4096 excluded addresses per range")
    rng = Range(subnet=subnet, first=first, last=last, gateway=gateway, excluded=frozenset(excluded))
    if rng.size <= 0:
        raise ConfigError(f"range {subnet} has no address to hand out")
    return rng


def parse_range_set(spec: Any) -> tuple[Range, ...]:
    if not isinstance(spec, list) or not spec:
        raise ConfigError("a range set must be a non-empty list of ranges")
    ranges = tuple(parse_range(r) for r in spec)
    if len({r.subnet.version for r in ranges}) != 1:
        raise ConfigError("a range set mixes IPv4 and IPv6: use one range set per family")
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                raise ConfigError(f"ranges {a.subnet} and {b.subnet} overlap")
    return ranges


def pool_key(ranges: tuple[Range, ...]) -> str:
    """The pool's identity: the canonical JSON of its ranges (a pool can be rebuilt from its key)."""
    return json.dumps([r.spec() for r in ranges], sort_keys=True, separators=(",", ":"))


def ranges_from_key(key: str) -> tuple[Range, ...]:
    return parse_range_set(json.loads(key))


def overlaps(a: tuple[Range, ...], b: tuple[Range, ...]) -> bool:
    return any(x.subnet.version == y.subnet.version and x.first <= y.last and y.first <= x.last for x in a for y in b)


@dataclass(frozen=True)
class Allocation:
    address: int
    range_index: int
    cursor_before: int
    cursor: int | None  # the range's new cursor when the address was fresh
    reused_ready_at: float | None  # when the address came from cooling: its ready time


@dataclass
class Pool:
    """Allocation state of one range set. Mutations return what the store must persist."""

    key: str
    ranges: tuple[Range, ...]
    cooldown: float
    cursors: list[int] = field(default_factory=list)
    leased: set[int] = field(default_factory=set)
    cooling: deque[tuple[int, float]] = field(default_factory=deque)  # (address, ready_at), ready_at ascending

    def __post_init__(self) -> None:
        if not self.cursors:
            self.cursors = [r.first for r in self.ranges]

    @classmethod
    def from_key(cls, key: str, cooldown: float) -> Pool:
        return cls(key=key, ranges=ranges_from_key(key), cooldown=cooldown)

    @property
    def version(self) -> int:
        return self.ranges[0].subnet.version

    def capacity(self) -> int:
        return sum(r.size for r in self.ranges)

    def free(self) -> int:
        return self.capacity() - len(self.leased) - len(self.cooling)

    def range_of(self, address: int) -> int | None:
        for i, r in enumerate(self.ranges):
            if r.first <= address <= r.last:
                return i
        return None

    def _fresh(self, i: int) -> int | None:
        r, cursor = self.ranges[i], self.cursors[i]
        while cursor <= r.last and (cursor in r.excluded or cursor in self.leased):
            cursor += 1
        self.cursors[i] = cursor
        return cursor if cursor <= r.last else None

    def allocate(self, now: float) -> Allocation:
        """Hand out one address: a fresh one while any range has some, else the oldest cooled one."""
        for i in range(len(self.ranges)):
            before = self.cursors[i]
            address = self._fresh(i)
            if address is not None:
                self.cursors[i] = address + 1
                self.leased.add(address)
                return Allocation(address, i, before, self.cursors[i], None)
        while self.cooling:
            address, ready_at = self.cooling[0]
            if ready_at > now:
                break
            self.cooling.popleft()
            index = self.range_of(address)
            if address in self.leased or index is None:
                continue  # stale entry (the store guarantees neither, but never hand out twice)
            self.leased.add(address)
            return Allocation(address, index, self.cursors[index], None, ready_at)
        ready_in = self.cooling[0][1] - now if self.cooling else 0.0
        raise Exhausted(self.key, len(self.cooling), ready_in)

    def undo(self, alloc: Allocation) -> None:
        """Take back an allocation that could not be recorded: the pool is as before it."""
        self.leased.discard(alloc.address)
        self.cursors[alloc.range_index] = alloc.cursor_before
        if alloc.reused_ready_at is not None:
            self.cooling.appendleft((alloc.address, alloc.reused_ready_at))

    def take(self, address: int) -> None:
        """Mark an address leased while restoring state."""
        self.leased.add(address)

    def release(self, address: int, now: float) -> float | None:
        """Return a leased address to the pool; returns its ready time, or None if it was not leased."""
        if address not in self.leased:
            return None
        self.leased.discard(address)
        ready_at = now + self.cooldown
        if self.cooling and self.cooling[-1][1] > ready_at:
            # Keep the FIFO ordered even if the clock stepped back: never reuse before the cooldown.
            ready_at = self.cooling[-1][1]
        self.cooling.append((address, ready_at))
        return ready_at
