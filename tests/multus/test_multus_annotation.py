"""The pod annotation k8s.v1.cni.cncf.io/networks: short form, JSON form, and the checks between them."""

from __future__ import annotations

import json

import pytest
from eksnet.multus import (
    NETWORKS_ANNOTATION,
    EksnetIpam,
    Ipvlan,
    Macvlan,
    MultusConfigError,
    NetworkAttachmentDefinition,
    NetworkSelection,
    StaticIpam,
    network_selection_annotation,
)


def nad(name="ipvlan-private-a", namespace=None, **kwargs):
    return NetworkAttachmentDefinition(name=name, namespace=namespace,
                                       interface=kwargs.pop("interface", Ipvlan(master="multus1")),
                                       ipam=kwargs.pop("ipam", EksnetIpam(pool="multus1")), **kwargs)


def test_seed_pod_annotation_is_the_bare_name():
    assert network_selection_annotation("ipvlan-private-a") == {NETWORKS_ANNOTATION: "ipvlan-private-a"}


def test_short_form_with_namespace_and_interface():
    value = network_selection_annotation(
        NetworkSelection("a", namespace="telco", interface="net1"), nad("b", namespace="ops"))[NETWORKS_ANNOTATION]
    assert value == "telco/a@net1,ops/b"


def test_a_nad_object_brings_its_namespace():
    assert network_selection_annotation(NetworkSelection(nad("b", "ops"), interface="data0")) == {
        NETWORKS_ANNOTATION: "ops/b@data0"}


def test_ips_switch_to_the_json_form():
    static = nad("fixed", interface=Macvlan(master="multus1"), ipam=StaticIpam())
    value = network_selection_annotation(
        NetworkSelection(static, interface="net1", ips=("192.168.96.30/19",)), "other")[NETWORKS_ANNOTATION]
    assert json.loads(value) == [{"name": "fixed", "interface": "net1", "ips": ["192.168.96.30/19"]},
                                 {"name": "other"}]


def test_mac_in_json_form():
    macnad = nad("m", interface=Macvlan(master="multus1"), ipam=None, capabilities=("mac",))
    value = network_selection_annotation(NetworkSelection(macnad, mac="0a:1b:2c:3d:4e:5f"))[NETWORKS_ANNOTATION]
    assert json.loads(value) == [{"name": "m", "mac": "0a:1b:2c:3d:4e:5f"}]


def test_force_json():
    value = network_selection_annotation("a", force_json=True)[NETWORKS_ANNOTATION]
    assert json.loads(value) == [{"name": "a"}]


def test_ips_need_the_nads_ips_capability():
    with pytest.raises(MultusConfigError, match="does not take pod-chosen ips"):
        NetworkSelection(nad("pooled"), ips=("192.168.96.30/19",))


def test_mac_needs_the_nads_mac_capability():
    with pytest.raises(MultusConfigError, match="does not take a pod MAC"):
        NetworkSelection(nad("m", interface=Macvlan(master="multus1"), ipam=None), mac="0a:1b:2c:3d:4e:5f")


def test_ips_need_a_prefix_length():
    with pytest.raises(MultusConfigError, match="needs a prefix length"):
        NetworkSelection("a", ips=("192.168.96.30",))


def test_the_same_pod_interface_twice_is_refused():
    with pytest.raises(MultusConfigError, match="selected twice"):
        network_selection_annotation(NetworkSelection("a", interface="net1"), NetworkSelection("b", interface="net1"))


def test_namespace_mismatch_with_the_nad_is_refused():
    with pytest.raises(MultusConfigError, match="lives in ops"):
        NetworkSelection(nad("b", "ops"), namespace="telco")


def test_a_pod_interface_name_longer_than_the_kernel_allows_is_refused():
    with pytest.raises(MultusConfigError, match="not a valid Linux interface name"):
        NetworkSelection("a", interface="x" * 16)


def test_a_network_name_that_is_not_a_kubernetes_name_is_refused():
    with pytest.raises(MultusConfigError, match="must be a DNS-1123 subdomain"):
        network_selection_annotation("UPPER")


def test_no_network_is_refused():
    with pytest.raises(MultusConfigError, match="at least one"):
        network_selection_annotation()
