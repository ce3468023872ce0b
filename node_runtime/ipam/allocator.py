"""The pure allocator: ranges, pools and the allocation rule. No I/O, no clock: time is passed in.

A pool is one range set (host-local's term): an ordered list of ranges, one address handed out per
request. Which addresses are taken (leased, or released and still cooling down) is not the pool's
business: the caller passes ``taken``, one registry for the whole node, so pools may overlap, be
edited, or gain a range while leases live, and still no address is ever held twice.

Every subnet has a *cursor*, the address after the last one handed out. Allocation scans from the
cursors, range by range, for the first address that is not excluded and not taken; when every
range is scanned to its end it starts over from the first addresses (round-robin, as host-local).
Before the first wrap every address past a cursor is fresh, so allocation is O(1) whatever the
range's size (an IPv6 /80 is never enumerated); after a wrap a scan skips at most the taken and
excluded addresses. Cursors are hints (persisted so a restart goes on where it stopped), never
what guarantees uniqueness.

Ranges a user writes reserve what host-local reserves: the network and broadcast addresses and,
when no ``gateway`` is given, the subnet's first address (.1 / ::1). A *delegated* range (an ENI
prefix written by the node setup, ``"delegated": true``) hands out every one of its addresses:
AWS routes the whole /28 or /80 to the ENI."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cni.keys import fold

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
RANGE_KEYS = ("subnet", "rangeStart", "rangeEnd", "gateway", "exclude", "delegated")


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
    delegated: bool = False

    @property
    def size(self) -> int:
        return self.last - self.first + 1 - sum(1 for a in self.excluded if self.first <= a <= self.last)

    @property
    def cursor_key(self) -> str:
        return str(self.subnet)

    def __contains__(self, address: int) -> bool:
        return self.first <= address <= self.last

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"subnet": str(self.subnet), "rangeStart": _addr(self, self.first),
                               "rangeEnd": _addr(self, self.last)}
        if self.gateway is not None:
            out["gateway"] = _addr(self, self.gateway)
        implied = set() if self.delegated else _reserved(self.subnet, self.gateway)
        extra = sorted(self.excluded - ({self.gateway} if self.gateway is not None else set()) - implied)
        if extra:
            out["exclude"] = [_addr(self, a) for a in extra]
        if self.delegated:
            out["delegated"] = True
        return out


def to_ip(version: int, value: int) -> str:
    return str(ipaddress.IPv6Address(value) if version == 6 else ipaddress.IPv4Address(value))


def _addr(rng: Range, value: int) -> str:
    return to_ip(rng.subnet.version, value)


def _reserved(subnet: IPNetwork, gateway: int | None) -> set[int]:
    """What host-local never hands out from a range a user writes: the IPv4 network and broadcast
    addresses and the IPv6 subnet-router anycast address (of subnets with room for them), and the
    first address when no gateway is given (host-local claims .1 / ::1 as the gateway)."""
    if (subnet.version == 4 and subnet.prefixlen > 30) or (subnet.version == 6 and subnet.prefixlen > 126):
        return set()
    out = {int(subnet.network_address)}
    if subnet.version == 4:
        out.add(int(subnet.broadcast_address))
    if gateway is None:
        out.add(int(subnet.network_address) + 1)
    return out


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


def parse_range(spec: Any, delegated: bool = False) -> Range:
    """One range; keys matched case-insensitively (as host-local); ``delegated`` is the pool's
    default for ranges that do not say."""
    if not isinstance(spec, dict):
        raise ConfigError("a range must be an object with a subnet")
    spec = fold(spec, RANGE_KEYS, "ipam range")
    raw = spec.get("subnet")
    if not isinstance(raw, str):
        raise ConfigError("a range needs a subnet (CIDR string)")
    try:
        subnet = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise ConfigError(f"subnet {raw!r} is not a CIDR") from None
    delegated = spec.get("delegated", delegated)
    if not isinstance(delegated, bool):
        raise ConfigError("delegated must be true or false")
    first, last = int(subnet.network_address), int(subnet.broadcast_address)
    if spec.get("rangeStart") is not None:
        first = _ip_in(subnet, spec["rangeStart"], "rangeStart")
    if spec.get("rangeEnd") is not None:
        last = _ip_in(subnet, spec["rangeEnd"], "rangeEnd")
    if first > last:
        raise ConfigError(f"rangeStart is after rangeEnd in {subnet}")
    gateway = None
    if spec.get("gateway") is not None:
        gateway = _ip_in(subnet, spec["gateway"], "gateway")
    excluded = set() if delegated else _reserved(subnet, gateway)
    if gateway is not None:
        excluded.add(gateway)
    exclude = spec.get("exclude") or []
    if not isinstance(exclude, list):
        raise ConfigError("exclude must be a list of addresses")
    for value in exclude:
        excluded.add(_ip_in(subnet, value, "exclude"))
    if len(excluded) > 4096:
        raise ConfigError("at most 4096 excluded addresses per range")
    rng = Range(subnet=subnet, first=first, last=last, gateway=gateway, excluded=frozenset(excluded),
                delegated=delegated)
    if rng.size <= 0:
        raise ConfigError(f"range {subnet} has no address to hand out")
    return rng


def parse_range_set(spec: Any, delegated: bool = False) -> tuple[Range, ...]:
    if not isinstance(spec, list) or not spec:
        raise ConfigError("a range set must be a non-empty list of ranges")
    ranges = tuple(parse_range(r, delegated) for r in spec)
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
    cursor_before: int | None  # the subnet's cursor before this allocation (None: it had none)
    cursor: int  # and after


@dataclass
class Pool:
    """One range set. Holds no allocation state but the cursors it is given."""

    key: str
    ranges: tuple[Range, ...]

    @classmethod
    def from_key(cls, key: str) -> Pool:
        return cls(key=key, ranges=ranges_from_key(key))

    @property
    def version(self) -> int:
        return self.ranges[0].subnet.version

    @property
    def delegated(self) -> bool:
        return all(r.delegated for r in self.ranges)

    def capacity(self) -> int:
        return sum(r.size for r in self.ranges)

    def range_of(self, address: int) -> int | None:
        for i, r in enumerate(self.ranges):
            if r.first <= address <= r.last:
                return i
        return None

    def __contains__(self, address: int) -> bool:
        return self.range_of(address) is not None

    def allocate(self, cursors: dict[str, int], taken: Callable[[int], bool]) -> Allocation:
        """The first address, from the cursors on, that is neither excluded nor ``taken``; wraps
        once to the ranges' first addresses. Updates ``cursors``. Raises Exhausted (the caller
        fills in how many addresses are cooling)."""
        for wrapped in (False, True):
            for i, r in enumerate(self.ranges):
                before = cursors.get(r.cursor_key)
                address = r.first if wrapped or before is None else min(max(before, r.first), r.last + 1)
                while address <= r.last:
                    if address not in r.excluded and not taken(address):
                        cursors[r.cursor_key] = address + 1
                        return Allocation(address, i, before, address + 1)
                    address += 1
                if not wrapped:
                    cursors[r.cursor_key] = r.last + 1
        raise Exhausted(self.key, 0, 0.0)

    def undo(self, alloc: Allocation) -> dict[str, int | None]:
        """The cursor change that takes ``alloc`` back (when nothing moved the cursor since)."""
        return {self.ranges[alloc.range_index].cursor_key: alloc.cursor_before}
