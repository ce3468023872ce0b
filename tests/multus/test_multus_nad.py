"""NetworkAttachmentDefinition builder: what it renders, and what it refuses (with a message that says why)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from eksnet.multus import (
    NAD_CRD,
    CniVersion,
    EksnetIpam,
    HostDevice,
    HostLocalIpam,
    IpRange,
    Ipvlan,
    IpvlanMode,
    Macvlan,
    MacvlanMode,
    MultusConfigError,
    NetworkAttachmentDefinition,
    Route,
    StaticAddress,
    StaticIpam,
)

SEED = Path(__file__).parent / "data" / "walkthrough_multus.yaml"


def seed_objects() -> list[dict]:
    return list(yaml.safe_load_all(SEED.read_text()))


def seed_ipvlan_private_a() -> NetworkAttachmentDefinition:
    return NetworkAttachmentDefinition(
        name="ipvlan-private-a",
        cni_version=CniVersion.V0_3_0,
        interface=Ipvlan(master="multus", mode=IpvlanMode.L3),
        ipam=HostLocalIpam(ranges=(IpRange(subnet="192.168.96.0/19", range_start="192.168.96.20",
                                           range_end="192.168.96.40", gateway="192.168.96.1"),)),
    )


def crd_schema() -> dict:
    return NAD_CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_seed_ipvlan_private_a_is_expressible_one_to_one():
    seed = seed_objects()[0]
    ours = seed_ipvlan_private_a().to_manifest()
    assert {k: ours[k] for k in ("apiVersion", "kind", "metadata")} == {k: seed[k] for k in ("apiVersion", "kind", "metadata")}
    assert json.loads(ours["spec"]["config"]) == json.loads(seed["spec"]["config"])


def test_rendered_nad_matches_the_vendored_crd_schema():
    jsonschema.validate(seed_ipvlan_private_a().to_manifest(), crd_schema())


def test_crd_schema_rejects_a_config_that_is_not_a_string():
    bad = seed_ipvlan_private_a().to_manifest()
    bad["spec"]["config"] = {"type": "ipvlan"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, crd_schema())


def test_config_is_compact_json_with_the_cni_version_first():
    config = seed_ipvlan_private_a().to_manifest()["spec"]["config"]
    assert config.startswith('{"cniVersion":"0.3.0"')
    assert " " not in config


@pytest.mark.parametrize("version", list(CniVersion))
def test_every_cni_version_renders(version):
    nad = NetworkAttachmentDefinition(name="n", cni_version=version, interface=Macvlan(master="multus1"))
    assert nad.cni_config()["cniVersion"] == version.value


def test_cni_version_must_be_the_enum():
    with pytest.raises(MultusConfigError, match="CniVersion"):
        NetworkAttachmentDefinition(name="n", cni_version="1.0.0", interface=Macvlan(master="multus1"))


def test_namespace_goes_into_metadata():
    nad = NetworkAttachmentDefinition(name="n", namespace="telco", interface=Macvlan(master="multus1"))
    assert nad.to_manifest()["metadata"] == {"name": "n", "namespace": "telco"}


def test_network_name_is_left_to_multus_unless_given():
    nad = NetworkAttachmentDefinition(name="n", interface=Macvlan(master="multus1"))
    assert "name" not in nad.cni_config()
    named = NetworkAttachmentDefinition(name="n", network_name="net-a", interface=Macvlan(master="multus1"))
    assert named.cni_config()["name"] == "net-a"


@pytest.mark.parametrize("mode", list(IpvlanMode))
def test_ipvlan_modes(mode):
    nad = NetworkAttachmentDefinition(name="n", interface=Ipvlan(master="multus1", mode=mode),
                                      ipam=EksnetIpam(pool="multus1"))
    assert nad.cni_config()["mode"] == mode.value


def test_ipvlan_defaults_to_l2():
    assert Ipvlan(master="multus1").render()["mode"] == "l2"


def test_ipvlan_can_use_the_node_runtime_plugin():
    nad = NetworkAttachmentDefinition(name="n", interface=Ipvlan(master="multus1", plugin="eksnet-ipvlan"),
                                      ipam=EksnetIpam(pool="multus1"))
    assert nad.cni_config()["type"] == "eksnet-ipvlan"


def test_ipvlan_refuses_an_unknown_plugin():
    with pytest.raises(MultusConfigError, match="eksnet-ipvlan"):
        Ipvlan(master="multus1", plugin="ipvlan2")


def test_ipvlan_needs_an_ipam():
    with pytest.raises(MultusConfigError, match="needs an IPAM"):
        NetworkAttachmentDefinition(name="n", interface=Ipvlan(master="multus1"))


def test_ipvlan_cannot_take_a_pod_mac():
    with pytest.raises(MultusConfigError, match="share the master's MAC"):
        NetworkAttachmentDefinition(name="n", interface=Ipvlan(master="multus1"), ipam=EksnetIpam(pool="p"),
                                    capabilities=("mac",))


@pytest.mark.parametrize("mode", list(MacvlanMode))
def test_macvlan_modes_without_ipam(mode):
    config = NetworkAttachmentDefinition(name="n", interface=Macvlan(master="multus1", mode=mode)).cni_config()
    assert config == {"cniVersion": "0.4.0", "type": "macvlan", "master": "multus1", "mode": mode.value}


def test_node_runtime_macvlan_needs_an_ipam():
    with pytest.raises(MultusConfigError, match="needs an IPAM"):
        NetworkAttachmentDefinition(name="n", interface=Macvlan(master="multus1", plugin="eksnet-macvlan"))


def test_mtu_is_rendered_and_bounded():
    assert Ipvlan(master="multus1", mtu=9001).render()["mtu"] == 9001
    with pytest.raises(MultusConfigError, match="mtu 9002"):
        Ipvlan(master="multus1", mtu=9002)


@pytest.mark.parametrize("master", ["", "a" * 16, "eth/1", "eth:1", "eth 1", ".."])
def test_master_must_be_a_linux_interface_name(master):
    with pytest.raises(MultusConfigError, match="not a valid Linux interface name"):
        Ipvlan(master=master)


def test_host_device_by_each_selector():
    assert HostDevice(device="multus2").render() == {"type": "host-device", "device": "multus2"}
    assert HostDevice(hwaddr="0a:1b:2c:3d:4e:5f").render()["hwaddr"] == "0a:1b:2c:3d:4e:5f"
    assert HostDevice(pci_bus_id="0000:00:06.0").render()["pciBusID"] == "0000:00:06.0"
    assert HostDevice(kernelpath="/sys/devices/pci0000:00/0000:00:06.0").render()["kernelpath"].startswith("/sys/")


@pytest.mark.parametrize("kwargs", [{}, {"device": "eth1", "hwaddr": "0a:1b:2c:3d:4e:5f"}])
def test_host_device_needs_exactly_one_selector(kwargs):
    with pytest.raises(MultusConfigError, match="exactly one of"):
        HostDevice(**kwargs)


def test_host_device_refuses_a_malformed_mac():
    with pytest.raises(MultusConfigError, match="not a MAC"):
        HostDevice(hwaddr="0a:1b:2c")


def test_host_local_several_ranges_render_as_range_sets():
    ipam = HostLocalIpam(ranges=(IpRange("192.168.96.0/19"), IpRange("2600:1f14:1:2::/64")),
                         routes=(Route("0.0.0.0/0", "192.168.96.1"), Route("::/0")))
    assert ipam.render() == {
        "type": "host-local",
        "ranges": [[{"subnet": "192.168.96.0/19"}], [{"subnet": "2600:1f14:1:2::/64"}]],
        "routes": [{"dst": "0.0.0.0/0", "gw": "192.168.96.1"}, {"dst": "::/0"}],
    }


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"subnet": "192.168.96.1/19"}, "has host bits set"),
    ({"subnet": "192.168.96.0/19", "range_start": "192.168.128.1"}, "outside subnet"),
    ({"subnet": "192.168.96.0/19", "gateway": "10.0.0.1"}, "outside subnet"),
    ({"subnet": "192.168.96.0/19", "range_start": "192.168.96.40", "range_end": "192.168.96.20"}, "after rangeEnd"),
    ({"subnet": "192.168.96.0/19", "range_end": "not-an-ip"}, "not an IP address"),
])
def test_host_local_range_errors(kwargs, message):
    with pytest.raises(MultusConfigError, match=message):
        IpRange(**kwargs)


def test_host_local_refuses_overlapping_ranges():
    with pytest.raises(MultusConfigError, match="overlap"):
        HostLocalIpam(ranges=(IpRange("192.168.96.0/19"), IpRange("192.168.100.0/24")))


def test_host_local_needs_a_range():
    with pytest.raises(MultusConfigError, match="at least one"):
        HostLocalIpam(ranges=())


def test_route_gateway_must_match_the_family():
    with pytest.raises(MultusConfigError, match="same IP family"):
        Route("::/0", "192.168.96.1")


def test_static_ipam_with_addresses():
    ipam = StaticIpam(addresses=(StaticAddress("192.168.96.50/19", "192.168.96.1"),), routes=(Route("10.0.0.0/8"),))
    assert ipam.render() == {"type": "static", "addresses": [{"address": "192.168.96.50/19", "gateway": "192.168.96.1"}],
                             "routes": [{"dst": "10.0.0.0/8"}]}
    assert ipam.capabilities == ()


def test_static_ipam_without_addresses_declares_the_ips_capability():
    nad = NetworkAttachmentDefinition(name="n", interface=Macvlan(master="multus1"), ipam=StaticIpam())
    assert nad.cni_config()["capabilities"] == {"ips": True}


@pytest.mark.parametrize(("address", "message"), [
    ("192.168.96.50", "needs a prefix length"),
    ("192.168.96.500/19", "not an address with a prefix length"),
])
def test_static_address_errors(address, message):
    with pytest.raises(MultusConfigError, match=message):
        StaticAddress(address)


def test_static_refuses_a_duplicate_address():
    with pytest.raises(MultusConfigError, match="twice"):
        StaticIpam(addresses=(StaticAddress("10.0.0.5/24"), StaticAddress("10.0.0.5/25")))


def test_eksnet_ipam_by_pool():
    assert EksnetIpam(pool="multus1", routes=(Route("10.0.0.0/8"),)).render() == {
        "type": "eksnet-ipam", "pool": "multus1", "routes": [{"dst": "10.0.0.0/8"}]}


def test_eksnet_ipam_by_ranges_renders_the_node_runtime_readme_example():
    ipam = EksnetIpam(ranges=(IpRange("10.0.96.16/28"), IpRange("2600:1f14:abcd:1200:1234::/80")),
                      routes=(Route("0.0.0.0/0"), Route("::/0")))
    assert ipam.render() == {
        "type": "eksnet-ipam",
        "ranges": [[{"subnet": "10.0.96.16/28"}], [{"subnet": "2600:1f14:abcd:1200:1234::/80"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
    }


def test_eksnet_ipam_range_set_of_several_prefixes():
    ipam = EksnetIpam(ranges=((IpRange("10.0.96.16/28"), IpRange("10.0.96.32/28")),))
    assert ipam.render()["ranges"] == [[{"subnet": "10.0.96.16/28"}, {"subnet": "10.0.96.32/28"}]]


@pytest.mark.parametrize("kwargs", [{}, {"pool": "p", "ranges": (IpRange("10.0.0.0/28"),)}])
def test_eksnet_ipam_needs_exactly_one_of_pool_or_ranges(kwargs):
    with pytest.raises(MultusConfigError, match="exactly one of pool"):
        EksnetIpam(**kwargs)


def test_eksnet_ipam_refuses_a_mixed_family_range_set():
    with pytest.raises(MultusConfigError, match="mixes IPv4 and IPv6"):
        EksnetIpam(ranges=((IpRange("10.0.0.0/28"), IpRange("2600::/80")),))


@pytest.mark.parametrize("name", ["Ipvlan", "ipvlan_a", "-a", "a" * 254, ""])
def test_nad_name_must_be_a_kubernetes_name(name):
    with pytest.raises(MultusConfigError, match="must be a DNS-1123 subdomain"):
        NetworkAttachmentDefinition(name=name, interface=Macvlan(master="multus1"))


def test_nad_namespace_must_be_a_dns_label():
    with pytest.raises(MultusConfigError, match="DNS-1123 label"):
        NetworkAttachmentDefinition(name="n", namespace="a.b", interface=Macvlan(master="multus1"))


def test_unknown_capability_is_refused():
    with pytest.raises(MultusConfigError, match="unknown CNI capability"):
        NetworkAttachmentDefinition(name="n", interface=Macvlan(master="multus1"), capabilities=("ip",))


# --- IPv6 routes and CNI 1.1.0 (issue 11, item 7) -------------------------------------------------------------

def dual_stack_ranges():
    return (IpRange("10.0.96.0/24"), IpRange("2600:1f14::/64"))


def test_cni_1_1_0_is_offered():
    nad = NetworkAttachmentDefinition(name="n", cni_version=CniVersion.V1_1_0,
                                      interface=Ipvlan(master="multus1", plugin="eksnet-ipvlan"),
                                      ipam=EksnetIpam(pool="multus1"))
    assert nad.cni_config()["cniVersion"] == "1.1.0"


def test_ipv6_addresses_with_only_ipv4_routes_are_refused():
    with pytest.raises(MultusConfigError, match="IPv6 addresses but its routes are all IPv4"):
        NetworkAttachmentDefinition(name="n", interface=Ipvlan(master="multus1"),
                                    ipam=EksnetIpam(ranges=dual_stack_ranges(), routes=(Route("10.0.0.0/16"),)))


def test_ipv6_addresses_with_an_ipv6_route_render_both_routes():
    nad = NetworkAttachmentDefinition(name="n", interface=Ipvlan(master="multus1"),
                                      ipam=HostLocalIpam(ranges=dual_stack_ranges(),
                                                         routes=(Route("10.0.0.0/16"), Route("2600:1f14::/56"))))
    assert nad.cni_config()["ipam"]["routes"] == [{"dst": "10.0.0.0/16"}, {"dst": "2600:1f14::/56"}]


def test_a_route_may_be_a_deploy_time_token_with_its_family():
    import aws_cdk as cdk

    token = cdk.Token.as_string(cdk.Fn.get_att("MultusSubnet", "Ipv6CidrBlock"))  # known at deploy time only
    assert Route(token, family=6).family == 6
    with pytest.raises(MultusConfigError, match="needs family=4 or family=6"):
        Route(token)
    with pytest.raises(MultusConfigError, match="is IPv4, not IPv6"):
        Route("10.0.0.0/16", family=6)
    assert Route("10.0.0.0/16").family == 4
