"""eksnet-macvlan / eksnet-ipvlan in network namespaces: every version and command, IPv6 without
DAD, failure paths that must release addresses and leave nothing behind."""

from __future__ import annotations

import subprocess
import time

import pytest
from cni_strategies import VERSIONS

from node_runtime import netlink
from node_runtime.lab import CNI, addresses, sh


def conf(master: str, version: str = "1.1.0", plugin: str = "eksnet-macvlan", **extra) -> dict:
    return {"cniVersion": version, "name": "pods", "type": plugin, "master": master,
            "ipam": {"type": "eksnet-ipam", "ranges": [[{"subnet": "10.50.0.0/24", "gateway": "10.50.0.1"}],
                                                       [{"subnet": "fd50::/80"}]],
                     "routes": [{"dst": "0.0.0.0/0"}, {"dst": "fd99::/64"}]}, **extra}


@pytest.fixture
def cni(cni_bin, daemon) -> CNI:
    return CNI(cni_bin, daemon.env())


def links(namespaces, ns: str) -> str:
    return namespaces.run(ns, "ip", "-o", "link").stdout


def gone(namespaces, ns: str, name: str = "net1", within: float = 5.0) -> bool:
    """The daemon deletes the link just after answering DEL: give it a moment."""
    deadline = time.time() + within
    while f" {name}@" in links(namespaces, ns):
        if time.time() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.netns
@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_add_check_del_with_our_ipam(cni, daemon, namespaces, underlay, version):
    config = conf(underlay.master, version)
    ns = namespaces.add("p")
    result = cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    assert result["cniVersion"] == version
    assert result["interfaces"] == [{"name": "net1", "mac": result["interfaces"][0]["mac"], "sandbox": ns}]
    assert [ip["interface"] for ip in result["ips"]] == [0, 0]
    assert [("version" in ip) for ip in result["ips"]] == [version < "1.0.0"] * 2
    shown = namespaces.run(ns, "ip", "-o", "addr", "show", "net1").stdout
    for address in addresses(result):
        assert address in shown
    routes = namespaces.run(ns, "ip", "route").stdout + namespaces.run(ns, "ip", "-6", "route").stdout
    assert "default via 10.50.0.1 dev net1" in routes and "fd99::/64 dev net1" in routes
    if version >= "0.4.0":
        cni.ok("eksnet-macvlan", "CHECK", dict(config, prevResult=result), container_id="c1", netns=ns, ifname="net1")
    cni.ok("eksnet-macvlan", "DEL", dict(config, prevResult=result), container_id="c1", netns=ns, ifname="net1")
    assert gone(namespaces, ns)
    assert daemon.status()["leases"] == 0
    cni.ok("eksnet-macvlan", "DEL", config, container_id="c1", netns=ns, ifname="net1")  # repeated DEL


@pytest.mark.netns
def test_an_add_right_after_a_del_of_the_same_name_succeeds(cni, namespaces, underlay):
    config = conf(underlay.master)
    ns = namespaces.add("p")
    for i in range(3):
        cni.ok("eksnet-macvlan", "ADD", config, container_id=f"c{i}", netns=ns, ifname="net1")
        cni.ok("eksnet-macvlan", "DEL", config, container_id=f"c{i}", netns=ns, ifname="net1")


@pytest.mark.netns
def test_ipv6_is_usable_at_once_without_waiting_for_dad(cni, namespaces, underlay):
    config = conf(underlay.master)
    a, b = namespaces.add("a"), namespaces.add("b")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="a", netns=a, ifname="net1")
    v6 = addresses(cni.ok("eksnet-macvlan", "ADD", config, container_id="b", netns=b, ifname="net1"))[1]
    shown = namespaces.run(b, "ip", "-6", "-o", "addr", "show", "net1", "scope", "global").stdout
    assert v6 in shown and "tentative" not in shown
    assert namespaces.ping(a, v6, within=0)


@pytest.mark.netns
def test_check_fails_when_the_interface_lost_its_address(cni, namespaces, underlay):
    config = conf(underlay.master)
    ns = namespaces.add("p")
    result = cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    namespaces.run(ns, "ip", "addr", "flush", "dev", "net1")
    rc, out = cni("eksnet-macvlan", "CHECK", dict(config, prevResult=result), container_id="c1", netns=ns,
                  ifname="net1")
    assert rc == 1 and out["code"] == 104


@pytest.mark.netns
def test_an_interface_name_already_present_is_an_error_and_keeps_its_addresses(cni, daemon, namespaces, underlay):
    config = conf(underlay.master)
    ns = namespaces.add("p")
    first = cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    rc, out = cni("eksnet-macvlan", "ADD", config, container_id="c2", netns=ns, ifname="net1")
    assert rc == 1 and out["code"] == 101
    assert daemon.status()["leases"] == 2  # c2's addresses were released, c1's kept
    assert addresses(first)[0] in namespaces.run(ns, "ip", "-o", "addr").stdout


@pytest.mark.netns
def test_a_failure_after_allocation_releases_the_addresses(cni, daemon, namespaces):
    ns = namespaces.add("p")
    rc, out = cni("eksnet-macvlan", "ADD", conf("eksntnomaster"), container_id="c1", netns=ns, ifname="net1")
    assert rc == 1 and out["code"] == 7 and "master" in out["msg"]
    assert daemon.status()["leases"] == 0


@pytest.mark.netns
def test_a_missing_namespace_is_an_environment_error_and_releases(cni, daemon, underlay):
    rc, out = cni("eksnet-macvlan", "ADD", conf(underlay.master), container_id="c1", netns="/run/netns/eksnt-absent",
                  ifname="net1")
    assert rc == 1 and out["code"] == 4
    assert daemon.status()["leases"] == 0


@pytest.mark.netns
def test_del_succeeds_with_the_namespace_gone_and_no_prev_result(cni, daemon, namespaces, underlay):
    config = conf(underlay.master)
    ns = namespaces.add("p")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    namespaces.delete(ns)
    assert cni("eksnet-macvlan", "DEL", config, container_id="c1", netns=ns, ifname="net1") == (0, None)
    assert daemon.status()["leases"] == 0


@pytest.mark.netns
def test_del_succeeds_with_the_daemon_down_and_removes_the_link(cni, daemon, namespaces, underlay):
    config = conf(underlay.master)
    ns = namespaces.add("p")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    daemon.stop()
    assert cni("eksnet-macvlan", "DEL", config, container_id="c1", netns=ns, ifname="net1") == (0, None)
    assert " net1@" not in links(namespaces, ns)  # the daemon is down: deleted before answering


@pytest.mark.netns
def test_gc_through_the_interface_plugin_releases_stale_attachments(cni, daemon, namespaces, underlay):
    config = conf(underlay.master)
    a, b = namespaces.add("a"), namespaces.add("b")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="a", netns=a, ifname="net1")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="b", netns=b, ifname="net1")
    cni.ok("eksnet-macvlan", "GC", dict(config, **{"cni.dev/valid-attachments": [{"containerID": "a",
                                                                                    "ifname": "net1"}]}))
    assert daemon.status()["attachments"] == 1
    assert cni("eksnet-macvlan", "STATUS", config) == (0, None)


@pytest.mark.netns
def test_bad_link_config_is_refused_before_allocating(cni, daemon, underlay):
    for bad in ({"mode": "l2"}, {"mtu": 10}, {"master": ""}, {"ipam": {}}):
        rc, out = cni("eksnet-macvlan", "ADD", dict(conf(underlay.master), **bad), container_id="c1",
                      netns="/run/netns/x", ifname="net1")
        assert rc == 1 and out["code"] == 7, (bad, out)
    assert daemon.status()["leases"] == 0


def _kernel_has_ipvlan() -> bool:
    probe = "eksntipvprobe"
    sh("ip", "link", "add", probe + "m", "type", "veth", "peer", "name", probe + "p")
    try:
        ok = subprocess.run(["ip", "link", "add", "link", probe + "m", probe, "type", "ipvlan", "mode", "l2"],
                            capture_output=True).returncode == 0
    finally:
        sh("ip", "link", "del", probe + "m", check=False)
    return ok


@pytest.mark.netns
def test_ipvlan_l2_link_is_created_in_the_pod_namespace(cni, namespaces, underlay):
    if not _kernel_has_ipvlan():
        pytest.skip("this kernel has no ipvlan module (CI's Debian 12 kernel): the same code path runs on macvlan")
    ns = namespaces.add("p")
    result = cni.ok("eksnet-ipvlan", "ADD", conf(underlay.master, plugin="eksnet-ipvlan"), container_id="c1",
                    netns=ns, ifname="net1")
    assert "ipvlan" in namespaces.run(ns, "ip", "-d", "link", "show", "net1").stdout
    assert result["interfaces"][0]["mac"] == open(f"/sys/class/net/{underlay.master}/address").read().strip()


@pytest.mark.netns
def test_ipvlan_on_a_kernel_without_it_fails_cleanly_and_releases(cni, daemon, namespaces, underlay):
    if _kernel_has_ipvlan():
        pytest.skip("this kernel has ipvlan: the failure path cannot be provoked")  # never on CI
    ns = namespaces.add("p")
    rc, out = cni("eksnet-ipvlan", "ADD", conf(underlay.master, plugin="eksnet-ipvlan"), container_id="c1",
                  netns=ns, ifname="net1")
    assert rc == 1 and out["code"] == 102 and "ipvlan" in out["details"]
    assert daemon.status()["leases"] == 0


@pytest.mark.parametrize("mode, number", [("l2", 0), ("l3", 1), ("l3s", 2)])
def test_the_ipvlan_request_carries_the_kernels_mode_number_and_target_namespace(mode, number):
    """What this kernel cannot run, checked on the wire: the RTM_NEWLINK request as the kernel
    decodes it (linux/if_link.h: IPVLAN_MODE_L2 = 0, L3 = 1, L3S = 2)."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    spec = netlink.LinkSpec(kind="ipvlan", master="eth1", mode=mode, netns="/run/netns/x", ifname="net1", mtu=9001)
    msg = netlink.link_message(spec, master=7, netns_fd=42, mac="02:00:00:00:00:01")
    msg.encode()
    decoded = ifinfmsg(bytes(msg.data))
    decoded.decode()
    info = decoded.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "ipvlan"
    assert info.get_attr("IFLA_INFO_DATA").get_attr("IFLA_IPVLAN_MODE") == number
    assert (decoded.get_attr("IFLA_LINK"), decoded.get_attr("IFLA_NET_NS_FD"), decoded.get_attr("IFLA_MTU")) == (7, 42, 9001)
    assert decoded.get_attr("IFLA_ADDRESS") is None  # ipvlan shares the master's MAC
