"""Properties of the Multus address plan (pure ``ipaddress`` arithmetic, no CDK): for any supernet,
zone count and interface count that fit, the subnets are disjoint /28-or-larger blocks of the
supernet and each pod range sits inside its subnet, leaving its lower addresses to ENI primaries."""

from __future__ import annotations

import ipaddress

from eksnet.vpc import CidrReservationType, MultusNetwork
from hypothesis import given
from hypothesis import strategies as st


@st.composite
def plans(draw):
    prefix = draw(st.integers(min_value=16, max_value=26))
    base = draw(st.integers(min_value=0, max_value=2**32 - 1)) >> (32 - prefix) << (32 - prefix)
    supernet = ipaddress.IPv4Network((base, prefix))
    azs = draw(st.integers(min_value=2, max_value=6))
    interfaces = draw(st.integers(min_value=1, max_value=4))
    return supernet, azs, interfaces


@given(plans())
def test_multus_subnets_are_disjoint_blocks_of_the_supernet(plan):
    supernet, azs, interfaces = plan
    network = MultusNetwork(ipv4_supernet=str(supernet), interfaces_per_node=interfaces)
    try:
        subnets = network.subnet_cidrs(azs)
    except ValueError as e:
        assert "smaller than EC2's /28 minimum" in str(e)
        return
    assert len(subnets) == azs * interfaces
    assert all(s.subnet_of(supernet) and s.prefixlen <= 28 for s in subnets)
    assert len({s.prefixlen for s in subnets}) == 1
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1:])


@given(plans(), st.integers(min_value=1, max_value=4))
def test_pod_ranges_leave_the_bottom_of_each_subnet_to_eni_primaries(plan, extra_bits):
    supernet, azs, interfaces = plan
    probe = MultusNetwork(ipv4_supernet=str(supernet), interfaces_per_node=interfaces,
                          reservation_type=CidrReservationType.EXPLICIT)
    try:
        subnets = probe.subnet_cidrs(azs)
    except ValueError:
        return
    length = min(subnets[0].prefixlen + extra_bits, 32)
    network = MultusNetwork(ipv4_supernet=str(supernet), interfaces_per_node=interfaces, pod_range_prefix_length=length,
                            reservation_type=CidrReservationType.EXPLICIT)
    for subnet in subnets:
        pod = network.pod_range(subnet)
        assert pod.subnet_of(subnet) and pod.prefixlen == length
        assert subnet.network_address not in pod  # ENI primaries keep the lower part
        assert pod.broadcast_address == subnet.broadcast_address
