"""Node bootstrap and NAD together with the node runtime, on one "node" namespace: the interface script names
the ENI and writes the daemon's pools from the ENI's delegated prefixes (fake IMDSv2), eksnet-ipamd serves them,
and a NAD built with ``EksnetIpam(pool="multus1")`` gives a pod an address from those prefixes.
(The node runtime's macvlan type stands in for ipvlan, which this kernel lacks: see TESTING.md.)"""

from __future__ import annotations

import ipaddress

import pytest
from eksnet.multus import CniVersion, EksnetIpam, Macvlan, NetworkAttachmentDefinition
from eksnet.multus.node import MultusInterfaces

from node_runtime.lab import CNI, install_bin

pytestmark = [pytest.mark.netns]


@pytest.fixture
def runtime(node, run_interfaces, tmp_path, lab):
    """The node runtime installed into a temporary bin dir, its daemon running in the node namespace, and a pod
    namespace; the CNI executables run in the node namespace, as kubelet runs them."""
    assert run_interfaces(MultusInterfaces(device_indexes=(1,), wait_seconds=5)).returncode == 0
    bin_dir = install_bin(tmp_path / "bin", "auto", compile_=False)
    daemon = lab.daemon(tmp_path / "ipamd", bin_dir, netns=node["ns"], cooldown=None,
                        extra=("--config", str(node["root"] / "etc/eksnet/ipamd.json")))
    daemon.start()
    return {"cni": CNI(bin_dir, daemon.env(), netns=node["ns"]), "pod": lab.namespaces.add("pod")}


def cni(runtime, command: str, nad: NetworkAttachmentDefinition) -> tuple[int, dict]:
    config = {"name": nad.name, **nad.cni_config()}
    rc, out = runtime["cni"](config["type"], command, config, container_id="c-e2e", netns=runtime["pod"],
                             ifname="net1")
    return rc, out or {}


def test_pod_gets_addresses_from_its_nodes_delegated_prefixes(node, runtime):
    nad = NetworkAttachmentDefinition(name="macvlan-multus1", cni_version=CniVersion.V1_0_0,
                                      interface=Macvlan(master="multus1", plugin="eksnet-macvlan"),
                                      ipam=EksnetIpam(pool="multus1"))
    rc, result = cni(runtime, "ADD", nad)
    try:
        assert rc == 0, result
        addresses = [ipaddress.ip_interface(ip["address"]).ip for ip in result["ips"]]
        prefixes = [ipaddress.ip_network(p) for p in ("10.0.96.16/28", "10.0.96.48/28", "2600:1f14:1:2:3::/80")]
        assert {a.version for a in addresses} == {4, 6}
        assert all(any(a in p for p in prefixes) for a in addresses), addresses
    finally:
        assert cni(runtime, "DEL", nad)[0] == 0
