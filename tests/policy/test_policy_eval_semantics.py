"""Evaluator semantics beyond the documentation's examples: selectors, named ports, IPv6, errors."""

from __future__ import annotations

import pytest
from eksnet import policy
from eksnet.policy import LabelSelector, Peer, Requirement, SelectorOperator, tcp
from eksnet.policy_eval import Cluster, ContainerPort, Namespace, Pod, Protocol

WEB = Pod("web", "shop", {"app": "web", "tier": "front"}, ips=("10.0.0.1", "2001:db8::1"),
          ports=(ContainerPort("http", 8080),))
API = Pod("api", "shop", {"app": "api"}, ips=("10.0.0.2", "2001:db8::2"), ports=(ContainerPort("grpc", 9090),))
BATCH = Pod("batch", "shop", {"app": "batch", "env": "dev"}, ips=("10.0.0.3",))


def test_not_in_matches_pods_without_the_key():
    sel = LabelSelector(match_expressions=(Requirement("env", SelectorOperator.NOT_IN, ("dev",)),))
    pol = policy.allow_ingress("shop", "not-dev", peers=[Peer.pods(sel)], pod_selector=LabelSelector.labels(app="api"))
    cluster = Cluster(pods=[WEB, API, BATCH], policies=[pol])
    assert (cluster.allowed(WEB, API, 9090), cluster.allowed(BATCH, API, 9090)) == (True, False)


def test_exists_and_does_not_exist():
    has_tier = LabelSelector(match_expressions=(Requirement("tier", SelectorOperator.EXISTS),))
    no_tier = LabelSelector(match_expressions=(Requirement("tier", SelectorOperator.DOES_NOT_EXIST),))
    cluster = Cluster(pods=[WEB, API, BATCH], policies=[
        policy.allow_ingress("shop", "tiered", peers=[Peer.pods(has_tier)], pod_selector=no_tier)])
    assert (cluster.allowed(WEB, API, 1), cluster.allowed(BATCH, API, 1), cluster.allowed(API, WEB, 1)) == (
        True, False, True)


def test_match_labels_and_expressions_are_anded():
    sel = LabelSelector(match_labels={"app": "web"},
                        match_expressions=(Requirement("tier", SelectorOperator.IN, ("back",)),))
    cluster = Cluster(pods=[WEB, API], policies=[
        policy.allow_ingress("shop", "x", peers=[Peer.pods(sel)], pod_selector=LabelSelector.labels(app="api"))])
    assert not cluster.allowed(WEB, API, 9090)


def test_named_ingress_port_resolves_on_the_destination_pod():
    pol = policy.allow_ingress("shop", "grpc", peers=[Peer.pods(LabelSelector())], ports=[tcp("grpc")],
                               pod_selector=LabelSelector.labels(app="api"))
    cluster = Cluster(pods=[WEB, API], policies=[pol])
    assert (cluster.allowed(WEB, API, 9090), cluster.allowed(WEB, API, 8080)) == (True, False)


def test_named_egress_port_resolves_on_the_destination_pod():
    pol = policy.allow_egress("shop", "to-http", peers=[Peer.pods(LabelSelector())], ports=[tcp("http")],
                              pod_selector=LabelSelector.labels(app="api"))
    cluster = Cluster(pods=[WEB, API], policies=[pol])
    assert (cluster.allowed(API, WEB, 8080), cluster.allowed(API, WEB, 9090)) == (True, False)


def test_named_port_never_matches_an_address_outside_the_cluster():
    pol = policy.allow_egress("shop", "to-http", peers=[Peer.cidr("0.0.0.0/0")], ports=[tcp("http")])
    assert not Cluster(pods=[API], policies=[pol]).allowed(API, "198.51.100.1", 8080)


def test_ipv6_ip_block_with_except():
    pol = policy.allow_ingress("shop", "v6", peers=[Peer.cidr("2001:db8:1::/48", ["2001:db8:1:ff::/64"])],
                               pod_selector=LabelSelector.labels(app="web"))
    cluster = Cluster(pods=[WEB], policies=[pol])
    assert (cluster.allowed("2001:db8:1::5", WEB, 80), cluster.allowed("2001:db8:1:ff::5", WEB, 80)) == (True, False)


def test_ipv4_ip_block_never_matches_an_ipv6_connection():
    pol = policy.allow_ingress("shop", "v4", peers=[Peer.cidr("0.0.0.0/0")], pod_selector=LabelSelector.labels(app="web"))
    cluster = Cluster(pods=[WEB], policies=[pol])
    assert not cluster.allowed("2001:db8:9::1", WEB, 80)


def test_dual_stack_pods_connect_over_the_family_they_share():
    verdict = Cluster(pods=[WEB, BATCH]).check(WEB, BATCH, 80)
    assert (verdict.src_ip, verdict.dst_ip) == ("10.0.0.1", "10.0.0.3")


def test_ip_block_matches_pod_addresses_as_calico_does():
    pol = policy.allow_ingress("shop", "cidr", peers=[Peer.cidr("10.0.0.0/31")], pod_selector=LabelSelector.labels(app="api"))
    cluster = Cluster(pods=[WEB, API, BATCH], policies=[pol])
    assert (cluster.allowed(WEB, API, 1), cluster.allowed(BATCH, API, 1)) == (True, False)


def test_an_address_of_a_known_pod_is_that_pod():
    pol = policy.default_deny_egress("shop")
    assert not Cluster(pods=[WEB, API], policies=[pol]).allowed("10.0.0.1", API, 80)


def test_a_pod_can_always_reach_itself():
    assert Cluster(pods=[WEB], policies=[policy.default_deny_all("shop")]).allowed(WEB, WEB, 8080)


def test_policies_of_other_namespaces_do_not_isolate():
    other = Pod("o", "other", ips=("10.9.0.1",))
    assert Cluster(pods=[WEB, other], policies=[policy.default_deny_all("other")]).allowed(WEB, API, 80)


def test_verdict_names_the_isolating_and_allowing_policies():
    cluster = Cluster(pods=[WEB, API], policies=[
        policy.default_deny_ingress("shop"),
        policy.allow_ingress("shop", "web-to-api", peers=[Peer.pods(LabelSelector.labels(app="web"))])])
    verdict = cluster.check(WEB, API, 9090)
    assert (verdict.ingress.isolated_by, verdict.ingress.allowed_by) == (
        ("default-deny-ingress", "web-to-api"), ("web-to-api",))
    assert "allowed by web-to-api" in verdict.reason


def test_namespace_labels_come_from_the_namespace_objects():
    pol = policy.allow_ingress("shop", "from-team", peers=[Peer.namespaces(LabelSelector.labels(team="a"))])
    member = Pod("m", "team-a", ips=("10.8.0.1",))
    with_labels = Cluster(namespaces=[Namespace("team-a", {"team": "a"})], pods=[member, API], policies=[pol])
    without = Cluster(pods=[member, API], policies=[pol])
    assert (with_labels.allowed(member, API, 1), without.allowed(member, API, 1)) == (True, False)


def test_no_shared_ip_family_is_an_error():
    with pytest.raises(ValueError, match="share no IP family"):
        Cluster(pods=[BATCH]).check(BATCH, "2001:db8::9", 80)


def test_icmp_takes_no_port():
    with pytest.raises(ValueError, match="ICMP has no port"):
        Cluster(pods=[WEB]).check(WEB, "10.0.0.9", 1, Protocol.ICMP)


def test_tcp_needs_a_port():
    with pytest.raises(ValueError, match="needs a port"):
        Cluster(pods=[WEB]).check(WEB, "10.0.0.9")


def test_two_pods_with_one_address_are_refused():
    with pytest.raises(ValueError, match="belongs to both"):
        Cluster(pods=[WEB, Pod("dup", "shop", ips=("10.0.0.1",))])


def test_a_non_networkpolicy_manifest_is_refused():
    with pytest.raises(ValueError, match="not a networking.k8s.io/v1 NetworkPolicy"):
        Cluster(policies=[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])


def test_the_policy_modules_protocol_enum_is_accepted():
    pol = policy.allow_ingress("shop", "udp", peers=[Peer.pods(LabelSelector())], ports=[policy.udp(53)])
    cluster = Cluster(pods=[WEB, API], policies=[pol])
    assert cluster.allowed(WEB, API, 53, policy.Protocol.UDP)


def test_a_protocol_string_is_refused():
    with pytest.raises(TypeError, match="protocol must be"):
        Cluster(pods=[WEB]).check(WEB, "10.0.0.9", 80, "TCP")  # type: ignore[arg-type]
