"""Capacity of a node carrying Multus ENIs: the VPC CNI may use only the ENIs left (``no_manage`` keeps it off the
Multus ones), in each CNI mode; a type that cannot hold 1 + the Multus ENIs is refused, naming it and its limit."""

from __future__ import annotations

import pytest
from eksnet.max_pods import check_multus_fit, limits, max_pods


@pytest.mark.parametrize(("multus", "expected"), [(0, 35), (1, 24), (2, 13)])
def test_secondary_ip_mode_counts_the_enis_left(multus, expected):
    # t3.large: 3 ENIs x 12 addresses; each ENI's first address is its own, +2 host-network pods
    assert max_pods("t3.large", multus_enis=multus) == expected


@pytest.mark.parametrize(("multus", "expected"), [(0, 434), (1, 290), (2, 146)])
def test_prefix_mode_counts_the_enis_left(multus, expected):
    lim = limits("m5.large")  # 3 ENIs x 10 addresses: (10 - 1) * 16 prefixes' addresses per ENI
    assert (lim.max_enis, lim.ipv4_per_eni) == (3, 10)
    assert max_pods("m5.large", prefix_delegation=True, multus_enis=multus, cap=False) == expected


def test_custom_networking_and_multus_both_take_enis():
    assert max_pods("m5.xlarge", custom_networking=True, multus_enis=1) == (4 - 1 - 1) * 14 + 2


def test_ipv6_is_not_limited_by_enis_but_the_enis_must_still_fit():
    assert max_pods("t3.large", ipv6=True, multus_enis=2) == 110
    with pytest.raises(ValueError, match="t3.large holds at most 3"):
        max_pods("t3.large", ipv6=True, multus_enis=3)


def test_no_eni_left_for_pods_is_refused():
    with pytest.raises(ValueError, match="custom networking and 2 Multus ENI"):
        max_pods("t3.large", custom_networking=True, multus_enis=2)


@pytest.mark.parametrize(("instance", "multus"), [("t3.medium", 3), ("t3.micro", 2)])
def test_fit_names_the_type_and_its_limit(instance, multus):
    lim = limits(instance)
    with pytest.raises(ValueError, match=rf"{instance} holds at most {lim.max_enis} network interface"):
        check_multus_fit(instance, multus)


def test_fit_accepts_exactly_full():
    check_multus_fit("t3.medium", 2)  # 3 ENIs: the primary and two Multus
