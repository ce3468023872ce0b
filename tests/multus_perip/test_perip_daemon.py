"""Per-IP mode through the live daemon, as on a node: the CNI executables as `make cni-bin`
installs them, one eksnet-ipamd per "node" (each with its own ENI in moto), pods as network
namespaces with an eksnet-macvlan link (this kernel has no ipvlan; same plugin code path) on a
veth underlay that stands for the node's Multus ENI."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import pytest

from node_runtime.lab import CNI, Lab, addresses, install_bin

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("aws_env")]


@pytest.fixture(scope="module")
def cni_bin(tmp_path_factory) -> Path:
    return install_bin(tmp_path_factory.mktemp("cni-bin"))


class Node:
    """One node: its daemon (per-IP pool on its own ENI) and its Multus interface stand-in."""

    def __init__(self, lab: Lab, base: Path, cni_bin: Path, pool: dict) -> None:
        base.mkdir(parents=True, exist_ok=True)
        config = base / "ipamd.json"
        config.write_text(json.dumps({"pools": {"multus1-perip": pool}}))
        self.daemon = lab.daemon(base / "ipamd", cni_bin, extra=("--config", str(config)))
        self.underlay = lab.underlay()
        self.cni = CNI(cni_bin, self.daemon.env())
        self.eni = pool["eniId"]

    def nad(self) -> dict:
        """The NAD a per-IP interface gets: eksnet-ipam naming the pool of the range."""
        return {"cniVersion": "1.0.0", "name": "multus1-perip", "type": "eksnet-macvlan",
                "master": self.underlay.master, "ipam": {"type": "eksnet-ipam", "pool": "multus1-perip"}}

    def add(self, netns: str, container: str) -> tuple[int, dict]:
        return self.cni("eksnet-macvlan", "ADD", self.nad(), container_id=container, netns=netns, ifname="net1")

    def delete(self, netns: str, container: str) -> None:
        self.cni.ok("eksnet-macvlan", "DEL", self.nad(), container_id=container, netns=netns, ifname="net1")


@pytest.fixture
def nodes(tmp_path, cni_bin, world, lab):
    """Makes nodes; the lab stops their daemons and removes their underlays after the test."""
    def make(name: str, eni: str, **pool_kw) -> Node:
        node = Node(lab, tmp_path / name, cni_bin, world.pool(eni, **pool_kw))
        node.daemon.start()
        return node

    return make


@pytest.fixture
def pods(namespaces):
    """The pods' network namespaces."""
    return namespaces


def eventually(check, within: float = 10.0) -> bool:
    deadline = time.time() + within
    while not check():
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_add_assigns_the_pod_address_to_the_eni_and_del_unassigns_it(world, nodes, pods):
    node = nodes("a", world.eni_a)
    netns = pods.add("pod1")
    rc, result = node.add(netns, "pod1")
    assert rc == 0, result
    v4, v6 = addresses(result)
    assert v4 in {str(a) for a in world.range_v4} and v6 in {str(a) for a in world.range_v6}
    # Before ADD answered, both addresses were on the node's own ENI and on no other.
    assert {v4, v6} <= world.held(world.eni_a)
    assert not {v4, v6} & world.held(world.eni_b)
    assert pods.run(netns, "ip", "-o", "addr", "show", "net1").stdout.count(v4) == 1

    node.delete(netns, "pod1")
    assert eventually(lambda: not {v4, v6} & world.held(world.eni_a)), "DEL left the assignment on the ENI"
    assert pods.run(netns, "ip", "link", "show", "net1", check=False).returncode != 0
    assert node.daemon.status()["leases"] == 0


def test_two_nodes_contending_for_one_range_get_different_addresses(world, nodes, pods):
    node_a, node_b = nodes("a", world.eni_a), nodes("b", world.eni_b)
    first = addresses(node_a.cni.ok("eksnet-macvlan", "ADD", node_a.nad(), container_id="c-a0",
                                    netns=pods.add("a0"), ifname="net1"))
    # Node b's allocator starts at the same first addresses: EC2 refuses them and it moves on.
    second = addresses(node_b.cni.ok("eksnet-macvlan", "ADD", node_b.nad(), container_id="c-b0",
                                     netns=pods.add("b0"), ifname="net1"))
    assert not set(first) & set(second)
    assert node_b.daemon.status()["perip"]["counters"]["perip_skipped"] >= 1

    # Then both nodes at once, three pods each: every address on exactly one ENI, all distinct.
    jobs = [(node, f"c-{name}{i}", pods.add(f"{name}{i}")) for i in (1, 2, 3) for node, name in
            ((node_a, "a"), (node_b, "b"))]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda job: job[0].add(job[2], job[1]), jobs))
    assert all(rc == 0 for rc, _ in results), results
    got = [a for _, result in results for a in addresses(result)] + first + second
    assert len(got) == len(set(got)) == 16
    held_a, held_b = world.held(world.eni_a), world.held(world.eni_b)
    assert not held_a & held_b
    for (node, _, _), (_, result) in zip(jobs, results, strict=True):
        assert set(addresses(result)) <= (held_a if node is node_a else held_b)


def test_reconciliation_unassigns_what_has_no_lease(world, nodes, pods):
    node = nodes("a", world.eni_a)
    netns = pods.add("kept")
    kept = addresses(node.cni.ok("eksnet-macvlan", "ADD", node.nad(), container_id="kept", netns=netns,
                                 ifname="net1"))
    leaked_v4, leaked_v6 = str(world.range_v4[-1]), str(world.range_v6[-1])
    outside = str(world.subnet_v4[40])  # not in the per-IP range: not ours to touch
    world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.eni_a, PrivateIpAddresses=[leaked_v4, outside])
    world.ec2.assign_ipv6_addresses(NetworkInterfaceId=world.eni_a, Ipv6Addresses=[leaked_v6])

    code, out = node.daemon.ctl("reconcile")
    assert code == 0, out
    held = world.held(world.eni_a)
    assert leaked_v4 not in held and leaked_v6 not in held
    assert set(kept) <= held and outside in held
    assert node.daemon.status()["perip"]["counters"]["perip_reconciled"] == 2


def test_an_exhausted_range_is_a_cni_error_and_leaves_nothing(world, nodes, pods):
    # Node b holds the only two addresses of a range cut to two; node a must say so, not hang.
    for address in (world.range_v4[0], world.range_v4[1]):
        world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.eni_b, PrivateIpAddresses=[str(address)])
    node = nodes("a", world.eni_a, v4_last=1, ipv6=False)
    rc, err = node.add(pods.add("starved"), "starved")
    assert rc == 1
    assert err["code"] in (11, 100), err
    assert node.daemon.status()["leases"] == 0
    assert not world.held(world.eni_a)


def test_an_eni_ec2_refuses_is_a_cni_error_and_leaves_nothing(world, nodes, pods):
    node = nodes("a", "eni-0000000000000000f", ipv6=False)  # not an ENI EC2 knows
    netns = pods.add("refused")
    rc, err = node.add(netns, "refused")
    assert rc == 1
    assert err["code"] == 107 and "InvalidNetworkInterfaceID" in err["details"], err
    assert node.daemon.status()["leases"] == 0
    assert pods.run(netns, "ip", "link", "show", "net1", check=False).returncode != 0
