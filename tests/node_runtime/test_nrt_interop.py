"""Both directions against the reference plugins of Debian's containernetworking-plugins: our
IPAM under the reference macvlan and bridge, our interface plugin over the reference host-local;
pods ping each other over IPv4 and IPv6 (only inside namespaces made by the test)."""

from __future__ import annotations

import pytest

from node_runtime.lab import CNI, addresses

V4 = "10.77.0.0/24"
V6 = "fd77:0:0:1::/80"


def ipam(version_ranges=((V4,), (V6,))):
    return {"type": "eksnet-ipam", "ranges": [[{"subnet": s} for s in rs] for rs in version_ranges]}


def attach(cni: CNI, plugin: str, conf: dict, netns: str, cid: str) -> list[str]:
    return addresses(cni.ok(plugin, "ADD", conf, container_id=cid, netns=netns, ifname="net1"))


def ping_both_ways(namespaces, a: str, b: str, ips_a: list[str], ips_b: list[str]) -> None:
    for target in ips_b:
        assert namespaces.ping(a, target), f"{a} cannot reach {target}"
    for target in ips_a:
        assert namespaces.ping(b, target), f"{b} cannot reach {target}"


@pytest.mark.netns
def test_reference_macvlan_delegates_to_our_ipam_and_pods_ping_over_ipv4_and_ipv6(cni_bin, daemon, namespaces,
                                                                                   underlay):
    cni = CNI(cni_bin, daemon.env())
    conf = {"cniVersion": "1.0.0", "name": "ref-macvlan", "type": "macvlan", "master": underlay.master,
            "mode": "bridge", "ipam": ipam()}
    a, b = namespaces.add("a"), namespaces.add("b")
    ips_a, ips_b = attach(cni, "macvlan", conf, a, "ctr-a"), attach(cni, "macvlan", conf, b, "ctr-b")
    assert len(ips_a) == 2 and len(set(ips_a) | set(ips_b)) == 4
    ping_both_ways(namespaces, a, b, ips_a, ips_b)
    cni.ok("macvlan", "DEL", conf, container_id="ctr-a", netns=a, ifname="net1")
    assert daemon.status()["leases"] == 2


@pytest.mark.netns
def test_reference_bridge_delegates_to_our_ipam_and_pods_ping(cni_bin, daemon, namespaces):
    node = namespaces.add("node")  # bridge (isGateway) changes forwarding where it runs: its own namespace
    cni = CNI(cni_bin, daemon.env())
    conf = {"cniVersion": "1.0.0", "name": "ref-bridge", "type": "bridge", "bridge": "eksntbr0",
            "ipam": ipam(((V4,),))}
    a, b = namespaces.add("a"), namespaces.add("b")
    ips = {}
    for ns, cid in ((a, "ctr-a"), (b, "ctr-b")):
        out = run_in(namespaces, node, cni, "bridge", "ADD", conf, cid, ns)
        ips[ns] = addresses(out)
    ping_both_ways(namespaces, a, b, ips[a], ips[b])
    for ns, cid in ((a, "ctr-a"), (b, "ctr-b")):
        run_in(namespaces, node, cni, "bridge", "DEL", conf, cid, ns)
    assert daemon.status()["leases"] == 0


def run_in(namespaces, node: str, cni: CNI, plugin: str, command: str, conf: dict, cid: str, ns: str):
    import json
    import subprocess

    env = cni.env(command, cid, ns, "net1")
    proc = subprocess.run(["ip", "netns", "exec", node.rsplit("/", 1)[1], f"/usr/lib/cni/{plugin}"],
                          input=json.dumps(conf).encode(), env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.mark.netns
def test_our_macvlan_delegates_to_reference_host_local_and_pods_ping(cni_bin, daemon, namespaces, underlay, tmp_path):
    cni = CNI(cni_bin, daemon.env())
    conf = {"cniVersion": "1.0.0", "name": "ours-hl", "type": "eksnet-macvlan", "master": underlay.master,
            "ipam": {"type": "host-local", "dataDir": str(tmp_path / "hl"),
                     "ranges": [[{"subnet": "10.78.0.0/24"}], [{"subnet": "fd78::/64"}]]}}
    a, b = namespaces.add("a"), namespaces.add("b")
    ips_a, ips_b = attach(cni, "eksnet-macvlan", conf, a, "ctr-a"), attach(cni, "eksnet-macvlan", conf, b, "ctr-b")
    assert len(ips_a) == 2
    ping_both_ways(namespaces, a, b, ips_a, ips_b)
    for ns, cid in ((a, "ctr-a"), (b, "ctr-b")):
        cni.ok("eksnet-macvlan", "DEL", conf, container_id=cid, netns=ns, ifname="net1")
    assert not list((tmp_path / "hl" / "ours-hl").glob("10.78.*")), "host-local still holds the addresses"


@pytest.mark.netns
def test_our_macvlan_with_our_ipam_pings_over_ipv4_and_ipv6(cni_bin, daemon, namespaces, underlay):
    cni = CNI(cni_bin, daemon.env())
    conf = {"cniVersion": "1.1.0", "name": "ours", "type": "eksnet-macvlan", "master": underlay.master, "ipam": ipam()}
    a, b = namespaces.add("a"), namespaces.add("b")
    ips_a, ips_b = attach(cni, "eksnet-macvlan", conf, a, "ctr-a"), attach(cni, "eksnet-macvlan", conf, b, "ctr-b")
    ping_both_ways(namespaces, a, b, ips_a, ips_b)
