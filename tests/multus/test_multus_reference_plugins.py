"""The CNI configs our NADs carry are accepted by the reference plugins EKS nodes run (Debian's
containernetworking-plugins in /usr/lib/cni): each is run as Multus would run it (with the NAD's name as the
network name), in network namespaces this module creates and removes."""

from __future__ import annotations

import ipaddress
import os

import pytest
from eksnet.multus import (
    CniVersion,
    HostDevice,
    HostLocalIpam,
    IpRange,
    Ipvlan,
    IpvlanMode,
    Macvlan,
    NetworkAttachmentDefinition,
    StaticAddress,
    StaticIpam,
)

from node_runtime.lab import CNI, REFERENCE, Lab, ip, unique_prefix

pytestmark = [pytest.mark.netns]


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory):
    """A "node" namespace holding veth links to enslave, and a "pod" namespace; both removed afterwards."""
    if os.geteuid() != 0 or not REFERENCE.is_dir():
        pytest.fail("these tests need root and the reference CNI plugins in /usr/lib/cni (see TESTING.md)")
    with Lab(unique_prefix("ek")) as lab:
        node, pod = lab.namespaces.add("node"), lab.namespaces.add("pod")
        for a, b in (("multus1", "peer1"), ("multus2", "peer2")):
            lab.veth(a, b, netns=node)
            lab.namespaces.run(node, "ip", "link", "set", a, "up")
        yield {"cni": CNI(REFERENCE, netns=node), "pod": pod, "data": tmp_path_factory.mktemp("cni")}


def run_cni(ns: dict, command: str, nad: NetworkAttachmentDefinition, ifname: str, container: str) -> tuple[int, dict]:
    """The NAD's config through the reference plugin it names, run in the node namespace as Multus runs it."""
    config = {"name": nad.name, **nad.cni_config()}
    if config.get("ipam", {}).get("type") == "host-local":
        config["ipam"]["dataDir"] = str(ns["data"])
    rc, out = ns["cni"](config["type"], command, config, container_id=container, netns=ns["pod"], ifname=ifname)
    return rc, out or {}


def test_macvlan_with_the_seeds_host_local_range(namespaces):
    nad = NetworkAttachmentDefinition(
        name="macvlan-private-a", cni_version=CniVersion.V0_3_0, interface=Macvlan(master="multus1"),
        ipam=HostLocalIpam(ranges=(IpRange("192.168.96.0/19", "192.168.96.20", "192.168.96.40", "192.168.96.1"),)))
    rc, result = run_cni(namespaces, "ADD", nad, "net1", "c-macvlan")
    try:
        assert rc == 0, result
        address = ipaddress.ip_interface(result["ips"][0]["address"])
        assert ipaddress.ip_address("192.168.96.20") <= address.ip <= ipaddress.ip_address("192.168.96.40")
        assert address.network == ipaddress.ip_network("192.168.96.0/19")
    finally:
        assert run_cni(namespaces, "DEL", nad, "net1", "c-macvlan")[0] == 0


@pytest.mark.parametrize("version", [CniVersion.V0_4_0, CniVersion.V1_0_0])
def test_macvlan_with_a_static_address(namespaces, version):
    nad = NetworkAttachmentDefinition(
        name="macvlan-static", cni_version=version, interface=Macvlan(master="multus1"),
        ipam=StaticIpam(addresses=(StaticAddress("192.168.96.50/19", "192.168.96.1"),)))
    rc, result = run_cni(namespaces, "ADD", nad, "net2", f"c-static-{version.name}")
    try:
        assert rc == 0, result
        assert result["cniVersion"] == version.value
        assert result["ips"][0]["address"] == "192.168.96.50/19"
    finally:
        assert run_cni(namespaces, "DEL", nad, "net2", f"c-static-{version.name}")[0] == 0


def test_host_device_moves_the_link_into_the_pod(namespaces):
    nad = NetworkAttachmentDefinition(name="whole-eni", cni_version=CniVersion.V1_0_0,
                                      interface=HostDevice(device="multus2"))
    rc, result = run_cni(namespaces, "ADD", nad, "net3", "c-hostdev")
    try:
        assert rc == 0, result
        links = ip("-n", os.path.basename(namespaces["pod"]), "-o", "link")
        assert "net3" in links
    finally:
        assert run_cni(namespaces, "DEL", nad, "net3", "c-hostdev")[0] == 0


def test_ipvlan_config_passes_the_plugins_parsing(namespaces):
    # This kernel has no ipvlan (TESTING.md): the plugin then fails only when it creates the link, after it
    # has parsed and accepted the whole config (a config error would say so instead). Where the kernel has
    # ipvlan the same config must simply work.
    nad = NetworkAttachmentDefinition(
        name="ipvlan-private-a", cni_version=CniVersion.V0_3_0, interface=Ipvlan(master="multus1", mode=IpvlanMode.L3),
        ipam=HostLocalIpam(ranges=(IpRange("192.168.96.0/19", "192.168.96.20", "192.168.96.40", "192.168.96.1"),)))
    rc, result = run_cni(namespaces, "ADD", nad, "net4", "c-ipvlan")
    try:
        if rc != 0:
            assert "failed to create ipvlan" in result.get("msg", ""), result
            assert "operation not supported" in result.get("msg", "") + result.get("details", ""), result
        else:
            assert result["ips"][0]["address"].startswith("192.168.96.")
    finally:
        assert run_cni(namespaces, "DEL", nad, "net4", "c-ipvlan")[0] == 0
