"""The typed NetworkPolicy builders: what they render, and the mistakes they refuse."""

from __future__ import annotations

import pytest
from eksnet import policy
from eksnet.policy import (
    IpBlock,
    LabelSelector,
    NetworkPolicy,
    Peer,
    Port,
    Protocol,
    Requirement,
    Rule,
    SelectorOperator,
    tcp,
    udp,
)
from policy_docs import TEST_NETWORK_POLICY


def test_typed_policy_renders_the_documentations_test_network_policy():
    built = NetworkPolicy(
        name="test-network-policy", namespace="default", pod_selector=LabelSelector.labels(role="db"),
        ingress=(Rule(peers=(Peer.cidr("172.17.0.0/16", ["172.17.1.0/24"]),
                             Peer.namespaces(LabelSelector.labels(project="myproject")),
                             Peer.pods(LabelSelector.labels(role="frontend"))),
                      ports=(tcp(6379),)),),
        egress=(Rule(peers=(Peer.cidr("10.0.0.0/24"),), ports=(tcp(5978),)),),
    )
    assert built.to_manifest() == TEST_NETWORK_POLICY


def test_default_deny_egress_is_the_seeds_deny_all():
    assert policy.default_deny_egress("deploy2").to_manifest()["spec"] == {"podSelector": {}, "policyTypes": ["Egress"]}


def test_default_deny_ingress_has_only_the_ingress_type():
    assert policy.default_deny_ingress("ns").to_manifest()["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_default_deny_all_isolates_both_directions():
    spec = policy.default_deny_all("ns").to_manifest()["spec"]
    assert spec == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_allow_all_ingress_is_one_empty_rule():
    assert policy.allow_all_ingress("ns").to_manifest()["spec"]["ingress"] == [{}]


def test_allow_dns_egress_targets_coredns_pods_in_kube_system_on_udp_and_tcp_53():
    egress = policy.allow_dns_egress("deploy2").to_manifest()["spec"]["egress"]
    assert egress == [{
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }]


def test_pods_in_namespaces_is_one_peer_and():
    peer = Peer.pods_in_namespaces(policy.namespace_named("prod"), LabelSelector.labels(app="api"))
    assert peer.to_dict() == {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}},
                              "podSelector": {"matchLabels": {"app": "api"}}}


def test_match_expressions_render_with_and_without_values():
    sel = LabelSelector(match_expressions=(Requirement("env", SelectorOperator.IN, ("a", "b")),
                                           Requirement("tier", SelectorOperator.EXISTS)))
    assert sel.to_dict() == {"matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]},
                                                  {"key": "tier", "operator": "Exists"}]}


def test_port_range_renders_end_port():
    assert Port(32000, Protocol.TCP, 32768).to_dict() == {"protocol": "TCP", "port": 32000, "endPort": 32768}


def test_named_port_and_protocol_only_ports_render():
    assert (udp("dns").to_dict(), Port(protocol=Protocol.SCTP).to_dict()) == (
        {"protocol": "UDP", "port": "dns"}, {"protocol": "SCTP"})


def test_ipv6_block_with_except_renders():
    assert IpBlock("2001:db8::/32", ("2001:db8:ff::/48",)).to_dict() == {"cidr": "2001:db8::/32",
                                                                        "except": ["2001:db8:ff::/48"]}


@pytest.mark.parametrize(("make", "message"), [
    (lambda: IpBlock("10.0.0.0/16", ("10.1.0.0/24",)), "strictly inside"),
    (lambda: IpBlock("10.0.0.0/16", ("10.0.0.0/16",)), "strictly inside"),
    (lambda: IpBlock("10.0.0.0/16", ("2001:db8::/64",)), "is IPv6 but cidr"),
    (lambda: IpBlock("10.0.0.1/16"), "host bits set"),
    (lambda: IpBlock("10.0.0.0"), "needs a prefix length"),
    (lambda: IpBlock("10.0.0.300/24"), "is not a CIDR"),
    (lambda: Port(0), "1-65535"),
    (lambda: Port(70000), "1-65535"),
    (lambda: Port("HTTP"), "IANA service name"),
    (lambda: Port("this-name-is-too-long"), "IANA service name"),
    (lambda: Port("http", end_port=90), "numeric port"),
    (lambda: Port(100, end_port=99), "between port"),
    (lambda: Requirement("env", SelectorOperator.IN), "at least one value"),
    (lambda: Requirement("env", SelectorOperator.EXISTS, ("x",)), "takes no values"),
    (lambda: LabelSelector(match_labels={"bad key!": "x"}), "label key"),
    (lambda: LabelSelector(match_labels={"app": "-bad"}), "value must be"),
    (lambda: Peer(), "needs a pod_selector"),
    (lambda: Peer(pod_selector=LabelSelector(), ip_block=IpBlock("10.0.0.0/8")), "not both"),
    (lambda: NetworkPolicy(name="x", namespace="ns"), "affects no direction"),
    (lambda: NetworkPolicy(name="Bad_Name", namespace="ns", ingress=()), "policy name"),
    (lambda: NetworkPolicy(name="x", namespace="Bad.NS", ingress=()), "policy namespace"),
    (lambda: policy.allow_ingress("ns", "x", peers=[]), "at least one peer"),
    (lambda: policy.allow_egress("ns", "x", peers=[]), "at least one peer"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_mistakes_are_refused_with_a_message_saying_what_to_change(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_single_rule_instead_of_a_tuple_is_refused():
    with pytest.raises(TypeError, match="tuple of rules"):
        NetworkPolicy(name="x", namespace="ns", ingress=Rule())  # type: ignore[arg-type]


def test_protocol_must_be_the_enum():
    with pytest.raises(TypeError, match="Protocol"):
        Port(80, "TCP")  # type: ignore[arg-type]


def test_policy_modules_import_no_cdk():
    import subprocess
    import sys

    code = ("import sys, eksnet.policy, eksnet.policy_eval; "
            "print(sorted(m for m in sys.modules if m.startswith(('aws_cdk', 'jsii', 'constructs'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"
