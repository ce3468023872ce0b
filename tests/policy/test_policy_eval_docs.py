"""The evaluator against the examples of the Kubernetes NetworkPolicy documentation
(https://kubernetes.io/docs/concepts/services-networking/network-policies/), each policy
written as the documentation's YAML (as a dict), with a table of connections and the answer
the documentation's text gives for each."""

from __future__ import annotations

import pytest
from eksnet.policy_eval import Cluster, Namespace, Pod, Protocol
from policy_docs import TEST_NETWORK_POLICY, np

DB = Pod("db", "default", {"role": "db"}, ips=("192.168.0.10",))
FRONTEND = Pod("frontend", "default", {"role": "frontend"}, ips=("192.168.0.11",))
OTHER = Pod("other", "default", {"role": "cache"}, ips=("192.168.0.12",))
MYPROJECT_POD = Pod("anything", "myproject-ns", {"app": "x"}, ips=("192.168.1.10",))
FOREIGN_FRONTEND = Pod("frontend", "elsewhere", {"role": "frontend"}, ips=("192.168.2.10",))

DOCS_CLUSTER = Cluster(
    namespaces=[Namespace("default"), Namespace("myproject-ns", {"project": "myproject"}), Namespace("elsewhere")],
    pods=[DB, FRONTEND, OTHER, MYPROJECT_POD, FOREIGN_FRONTEND],
    policies=[TEST_NETWORK_POLICY],
)

TEST_NETWORK_POLICY_CASES = [
    # (case, src, dst, port, protocol, allowed)
    ("frontend pod of the same namespace on TCP 6379", FRONTEND, DB, 6379, Protocol.TCP, True),
    ("frontend pod on another TCP port", FRONTEND, DB, 6380, Protocol.TCP, False),
    ("frontend pod on UDP 6379", FRONTEND, DB, 6379, Protocol.UDP, False),
    ("pod not selected by any peer", OTHER, DB, 6379, Protocol.TCP, False),
    ("any pod of a namespace labelled project=myproject", MYPROJECT_POD, DB, 6379, Protocol.TCP, True),
    ("role=frontend in another namespace (podSelector alone is the policy's namespace)",
     FOREIGN_FRONTEND, DB, 6379, Protocol.TCP, False),
    ("address inside 172.17.0.0/16", "172.17.0.5", DB, 6379, Protocol.TCP, True),
    ("address inside the except block 172.17.1.0/24", "172.17.1.5", DB, 6379, Protocol.TCP, False),
    ("address outside the block", "172.18.0.1", DB, 6379, Protocol.TCP, False),
    ("db to 10.0.0.0/24 on TCP 5978", DB, "10.0.0.5", 5978, Protocol.TCP, True),
    ("db to 10.0.0.0/24 on another port", DB, "10.0.0.5", 80, Protocol.TCP, False),
    ("db to an address outside 10.0.0.0/24", DB, "10.0.1.5", 5978, Protocol.TCP, False),
    ("db to a pod (its egress is isolated)", DB, FRONTEND, 5978, Protocol.TCP, False),
    ("pods not selected by the policy are not isolated", FRONTEND, OTHER, 80, Protocol.TCP, True),
    ("ICMP to db: the ingress rule has ports, so it matches only TCP 6379", FRONTEND, DB, None, Protocol.ICMP, False),
]


@pytest.mark.parametrize(("src", "dst", "port", "protocol", "allowed"),
                         [c[1:] for c in TEST_NETWORK_POLICY_CASES], ids=[c[0] for c in TEST_NETWORK_POLICY_CASES])
def test_test_network_policy_example(src, dst, port, protocol, allowed):
    assert DOCS_CLUSTER.allowed(src, dst, port, protocol) is allowed


# --- "Behavior of to and from selectors": AND versus OR -------------------------------------------

AND_POLICY = np("and", "default", {
    "podSelector": {}, "policyTypes": ["Ingress"],
    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"user": "alice"}},
                           "podSelector": {"matchLabels": {"role": "client"}}}]}],
})
OR_POLICY = np("or", "default", {
    "podSelector": {}, "policyTypes": ["Ingress"],
    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"user": "alice"}}},
                          {"podSelector": {"matchLabels": {"role": "client"}}}]}],
})
TARGET = Pod("target", "default", {"app": "t"}, ips=("10.1.0.1",))
SELECTOR_PODS = {
    "client in alice's namespace": Pod("c", "alice", {"role": "client"}, ips=("10.1.1.1",)),
    "non-client in alice's namespace": Pod("n", "alice", {"role": "server"}, ips=("10.1.1.2",)),
    "client in the policy's namespace": Pod("c", "default", {"role": "client"}, ips=("10.1.0.2",)),
    "client in bob's namespace": Pod("c", "bob", {"role": "client"}, ips=("10.1.2.1",)),
}
AND_OR_CASES = [
    ("client in alice's namespace", True, True),
    ("non-client in alice's namespace", False, True),
    ("client in the policy's namespace", False, True),
    ("client in bob's namespace", False, False),
]


def _selector_cluster(policy: dict) -> Cluster:
    return Cluster(namespaces=[Namespace("default"), Namespace("alice", {"user": "alice"}),
                               Namespace("bob", {"user": "bob"})],
                   pods=[TARGET, *SELECTOR_PODS.values()], policies=[policy])


@pytest.mark.parametrize(("source", "and_allows", "or_allows"), AND_OR_CASES, ids=[c[0] for c in AND_OR_CASES])
def test_one_peer_with_both_selectors_is_and(source, and_allows, or_allows):
    assert _selector_cluster(AND_POLICY).allowed(SELECTOR_PODS[source], TARGET, 80) is and_allows


@pytest.mark.parametrize(("source", "and_allows", "or_allows"), AND_OR_CASES, ids=[c[0] for c in AND_OR_CASES])
def test_two_peers_are_or(source, and_allows, or_allows):
    assert _selector_cluster(OR_POLICY).allowed(SELECTOR_PODS[source], TARGET, 80) is or_allows


# --- Default policies ---------------------------------------------------------------------------

DEFAULT_DENY_INGRESS = np("default-deny-ingress", "default", {"podSelector": {}, "policyTypes": ["Ingress"]})
ALLOW_ALL_INGRESS = np("allow-all-ingress", "default", {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]})
DEFAULT_DENY_EGRESS = np("default-deny-egress", "default", {"podSelector": {}, "policyTypes": ["Egress"]})
ALLOW_ALL_EGRESS = np("allow-all-egress", "default", {"podSelector": {}, "egress": [{}], "policyTypes": ["Egress"]})
DEFAULT_DENY_ALL = np("default-deny-all", "default", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})

INSIDE = Pod("inside", "default", {"app": "a"}, ips=("10.2.0.1",))
OUTSIDE = Pod("outside", "other", {"app": "b"}, ips=("10.2.1.1",))

DEFAULT_CASES = [
    # (case, policies, into "default" allowed, out of "default" allowed)
    ("no policy", [], True, True),
    ("default deny ingress", [DEFAULT_DENY_INGRESS], False, True),
    ("default deny ingress plus allow all ingress", [DEFAULT_DENY_INGRESS, ALLOW_ALL_INGRESS], True, True),
    ("allow all ingress alone", [ALLOW_ALL_INGRESS], True, True),
    ("default deny egress", [DEFAULT_DENY_EGRESS], True, False),
    ("default deny egress plus allow all egress", [DEFAULT_DENY_EGRESS, ALLOW_ALL_EGRESS], True, True),
    ("default deny all", [DEFAULT_DENY_ALL], False, False),
    ("policy without policyTypes and without egress rules defaults to Ingress",
     [np("implicit", "default", {"podSelector": {}})], False, True),
    ("policy without policyTypes but with egress rules is also Egress",
     [np("implicit", "default", {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}]})],
     False, False),
]


@pytest.mark.parametrize(("policies", "into", "out_of"), [c[1:] for c in DEFAULT_CASES], ids=[c[0] for c in DEFAULT_CASES])
def test_default_policies_example(policies, into, out_of):
    cluster = Cluster(pods=[INSIDE, OUTSIDE], policies=policies)
    assert (cluster.allowed(OUTSIDE, INSIDE, 443), cluster.allowed(INSIDE, OUTSIDE, 443)) == (into, out_of)


# --- "Targeting a range of ports": endPort --------------------------------------------------------

MULTI_PORT_EGRESS = np("multi-port-egress", "default", {
    "podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
                "ports": [{"protocol": "TCP", "port": 32000, "endPort": 32768}]}],
})


@pytest.mark.parametrize(("port", "allowed"), [(31999, False), (32000, True), (32500, True), (32768, True),
                                               (32769, False)])
def test_end_port_range_is_inclusive(port, allowed):
    cluster = Cluster(pods=[DB], policies=[MULTI_PORT_EGRESS])
    assert cluster.allowed(DB, "10.0.0.7", port) is allowed


# --- "Targeting a Namespace by its name" ----------------------------------------------------------

def test_namespace_selected_by_its_automatic_name_label():
    policy = np("from-prod", "default", {
        "podSelector": {}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}}]}]})
    prod, dev = Pod("p", "prod", ips=("10.3.0.1",)), Pod("d", "dev", ips=("10.3.1.1",))
    cluster = Cluster(pods=[INSIDE, prod, dev], policies=[policy])
    assert (cluster.allowed(prod, INSIDE, 80), cluster.allowed(dev, INSIDE, 80)) == (True, False)
