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


def pool(*specs: dict, cooldown: float = 30.0) -> Pool:
    ranges = parse_range_set(list(specs))
    return Pool(key=pool_key(ranges), ranges=ranges, cooldown=cooldown)


ops = st.lists(st.tuples(st.sampled_from(["alloc", "release"]), st.integers(0, 40), st.floats(0, 5)), max_size=120)


@settings(max_examples=150, deadline=None)
@given(ops=ops, cooldown=st.sampled_from([0.0, 1.0, 30.0]))
def test_no_address_is_ever_held_twice_and_none_is_reused_before_its_cooldown(ops, cooldown):
    p = pool({"subnet": "10.0.0.0/28", "gateway": "10.0.0.1"}, cooldown=cooldown)
    held: list[int] = []
    released_at: dict[int, float] = {}
    now = 0.0
    for op, pick, step in ops:
        now += step
        if op == "alloc":
            try:
                a = p.allocate(now)
            except Exhausted:
                assert p.free() == 0
                continue
            assert a.address not in held
            assert a.address not in (int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.0.0.1")),
                                     int(ipaddress.ip_address("10.0.0.15")))
            if a.address in released_at:
                assert now >= released_at[a.address] + cooldown
            held.append(a.address)
        elif held:
            address = held.pop(pick % len(held))
            assert p.release(address, now) is not None
            released_at[address] = now
    assert len(p.leased) == len(held)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 13))
def test_undo_puts_the_pool_back_exactly(n):
    p = pool({"subnet": "10.0.0.0/28"}, cooldown=0)
    allocs = [p.allocate(0) for _ in range(n)]
    p.release(allocs[0].address, 0)
    before = (list(p.cursors), set(p.leased), list(p.cooling))
    a = p.allocate(1)
    p.undo(a)
    assert (list(p.cursors), set(p.leased), list(p.cooling)) == before


def test_fresh_addresses_come_before_released_ones():
    p = pool({"subnet": "10.0.0.0/29"}, cooldown=0)
    first = p.allocate(0).address
    p.release(first, 0)
    assert p.allocate(1).address != first


def test_exhausted_pool_says_how_many_addresses_are_cooling():
    p = pool({"subnet": "10.0.0.0/30"}, cooldown=30)
    a, b = p.allocate(0), p.allocate(0)
    p.release(a.address, 0)
    with pytest.raises(Exhausted) as err:
        p.allocate(10)
    assert err.value.cooling == 1 and err.value.ready_in == pytest.approx(20)
    assert p.allocate(31).address == a.address
    del b


def test_an_ipv6_80_is_never_enumerated():
    p = pool({"subnet": "2600:1f14:1:2:3::/80"})
    assert p.capacity() == 2**48 - 1
    got = [p.allocate(0).address for _ in range(3)]
    assert [to_ip(6, a) for a in got] == ["2600:1f14:1:2:3::1", "2600:1f14:1:2:3::2", "2600:1f14:1:2:3::3"]
    assert p.free() == 2**48 - 4


def test_later_ranges_of_a_set_are_used_when_the_first_is_full():
    p = pool({"subnet": "10.0.0.0/30"}, {"subnet": "10.0.1.0/30"})
    got = {to_ip(4, p.allocate(0).address) for _ in range(4)}
    assert got == {"10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2"}


def test_range_start_end_and_exclude_bound_what_is_handed_out():
    p = pool({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.12", "exclude": ["10.0.0.11"]})
    got = {to_ip(4, p.allocate(0).address) for _ in range(2)}
    assert got == {"10.0.0.10", "10.0.0.12"}
    with pytest.raises(Exhausted):
        p.allocate(0)


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
