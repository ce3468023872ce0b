"""The pure allocator: uniqueness, cooldown, exclusions and O(1) allocation (property-based)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node_runtime.ipam.allocator import (
    ConfigError,
    Exhausted,
    Pool,
    overlaps,
    parse_range,
    parse_range_set,
    pool_key,
    ranges_from_key,
    to_ip,
)


def pool(*specs: dict) -> Pool:
    ranges = parse_range_set(list(specs))
    return Pool(key=pool_key(ranges), ranges=ranges)


class Registry:
    """What the service passes the allocator: leased addresses and cooldowns (address -> ready time)."""

    def __init__(self, cooldown: float = 30.0) -> None:
        self.cooldown = cooldown
        self.leased: set[int] = set()
        self.cooling: dict[int, float] = {}
        self.cursors: dict[str, int] = {}

    def allocate(self, p: Pool, now: float) -> int:
        a = p.allocate(self.cursors, lambda x: x in self.leased or self.cooling.get(x, 0.0) > now).address
        self.leased.add(a)
        self.cooling.pop(a, None)
        return a

    def release(self, a: int, now: float) -> None:
        self.leased.discard(a)
        self.cooling[a] = now + self.cooldown


ops = st.lists(st.tuples(st.sampled_from(["alloc", "release"]), st.integers(0, 40), st.floats(0, 5)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ops=ops, cooldown=st.sampled_from([0.0, 1.0, 30.0]))
def test_no_address_is_ever_held_twice_and_none_is_reused_before_its_cooldown(ops, cooldown):
    p = pool({"subnet": "10.0.0.0/28", "gateway": "10.0.0.1"})
    reg = Registry(cooldown)
    held: list[int] = []
    released_at: dict[int, float] = {}
    now = 0.0
    for op, pick, step in ops:
        now += step
        if op == "alloc":
            try:
                a = reg.allocate(p, now)
            except Exhausted:
                assert len(held) + sum(1 for r in reg.cooling.values() if r > now) == p.capacity()
                continue
            assert a not in held
            assert a not in (int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.0.0.1")),
                             int(ipaddress.ip_address("10.0.0.15")))
            if a in released_at:
                assert now >= released_at[a] + cooldown
            held.append(a)
        elif held:
            address = held.pop(pick % len(held))
            reg.release(address, now)
            released_at[address] = now
    assert reg.leased == set(held)


def test_fresh_addresses_come_before_released_ones():
    p, reg = pool({"subnet": "10.0.0.0/29"}), Registry(cooldown=0)
    first = reg.allocate(p, 0)
    reg.release(first, 0)
    assert reg.allocate(p, 1) != first


def test_after_the_last_address_allocation_wraps_to_the_first_free_one():
    p, reg = pool({"subnet": "10.0.0.0/29"}), Registry(cooldown=0)
    got = [to_ip(4, reg.allocate(p, 0)) for _ in range(5)]
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    reg.release(int(ipaddress.ip_address("10.0.0.4")), 0)
    assert to_ip(4, reg.allocate(p, 1)) == "10.0.0.4"


def test_an_exhausted_pool_raises_and_a_cooled_address_comes_back_after_its_cooldown():
    p, reg = pool({"subnet": "10.0.0.0/30", "gateway": "10.0.0.1"}), Registry(cooldown=30)
    a = reg.allocate(p, 0)
    reg.release(a, 0)
    with pytest.raises(Exhausted):
        reg.allocate(p, 10)
    assert reg.allocate(p, 31) == a


def test_a_users_range_reserves_the_first_address_when_no_gateway_is_given():
    p, reg = pool({"subnet": "10.0.0.0/29"}), Registry()
    assert to_ip(4, reg.allocate(p, 0)) == "10.0.0.2"
    p6 = pool({"subnet": "fd00:1::/120"})
    assert to_ip(6, reg.allocate(p6, 0)) == "fd00:1::2"
    assert pool({"subnet": "10.0.0.0/28", "gateway": "10.0.0.14"}).capacity() == 13  # .1 handed out then


def test_a_delegated_prefix_hands_out_all_its_addresses():
    p, reg = pool({"subnet": "10.0.96.16/28", "delegated": True}), Registry()
    got = {to_ip(4, reg.allocate(p, 0)) for _ in range(16)}
    assert got == {f"10.0.96.{i}" for i in range(16, 32)}
    with pytest.raises(Exhausted):
        reg.allocate(p, 0)
    assert pool({"subnet": "2600:1f14:1:2:3::/80", "delegated": True}).capacity() == 2**48


def test_range_keys_match_case_insensitively_as_host_local():
    assert parse_range({"Subnet": "10.0.0.0/24", "rangestart": "10.0.0.10", "RANGEEND": "10.0.0.12",
                        "someOtherTool": 1}) == parse_range({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10",
                                                             "rangeEnd": "10.0.0.12"})


def test_overlapping_pools_share_one_registry_so_an_edit_never_hands_out_a_held_address():
    before = pool({"subnet": "10.0.0.0/29", "rangeEnd": "10.0.0.3"})
    after = pool({"subnet": "10.0.0.0/29"})
    reg = Registry()
    held = {reg.allocate(before, 0) for _ in range(2)}
    assert {reg.allocate(after, 0) for _ in range(3)}.isdisjoint(held)


def test_an_ipv6_80_is_never_enumerated():
    p, reg = pool({"subnet": "2600:1f14:1:2:3::/80"}), Registry()
    assert p.capacity() == 2**48 - 2  # the subnet-router anycast address and ::1 (no gateway given)
    got = [reg.allocate(p, 0) for _ in range(3)]
    assert [to_ip(6, a) for a in got] == ["2600:1f14:1:2:3::2", "2600:1f14:1:2:3::3", "2600:1f14:1:2:3::4"]


def test_later_ranges_of_a_set_are_used_when_the_first_is_full():
    p, reg = pool({"subnet": "10.0.0.0/30", "gateway": "10.0.0.1"}, {"subnet": "10.0.1.0/30", "gateway": "10.0.1.1"}), \
        Registry()
    got = [to_ip(4, reg.allocate(p, 0)) for _ in range(2)]
    assert got == ["10.0.0.2", "10.0.1.2"]


def test_range_start_end_and_exclude_bound_what_is_handed_out():
    p, reg = pool({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.12",
                   "exclude": ["10.0.0.11"]}), Registry()
    got = {to_ip(4, reg.allocate(p, 0)) for _ in range(2)}
    assert got == {"10.0.0.10", "10.0.0.12"}
    with pytest.raises(Exhausted):
        reg.allocate(p, 0)


@pytest.mark.parametrize("spec, message", [
    ({"subnet": "nope"}, "not a CIDR"),
    ({}, "needs a subnet"),
    ({"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"}, "outside"),
    ({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.2"}, "after"),
    ({"subnet": "10.0.0.0/24", "gateway": 5}, "string"),
    ({"subnet": "10.0.0.0/32", "exclude": ["10.0.0.0"]}, "no address"),
])
def test_bad_ranges_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_range(spec)


def test_a_range_set_cannot_mix_families_or_overlap():
    with pytest.raises(ConfigError, match="mixes"):
        parse_range_set([{"subnet": "10.0.0.0/24"}, {"subnet": "fd00::/64"}])
    with pytest.raises(ConfigError, match="overlap"):
        parse_range_set([{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.128/25"}])


def test_a_pool_key_rebuilds_the_same_ranges():
    ranges = parse_range_set([{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "exclude": ["10.0.0.7"]}])
    assert ranges_from_key(pool_key(ranges)) == ranges
    assert overlaps(ranges, parse_range_set([{"subnet": "10.0.0.0/16"}]))
