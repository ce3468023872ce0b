"""The seed's experiment (seed 003, "Testing Network Policies"), answered offline.

deploy2's busybox pings deploy1's pod: allowed while no policy exists, denied once the
deny-all egress policy is applied in deploy2.
"""

from __future__ import annotations

import pytest
from eksnet import policy
from eksnet.policy_eval import Cluster, Pod, Protocol

DEPLOY1 = Pod("deploy1-6d4c8b8f9-abcde", "deploy1", {"app": "deploy1"}, ips=("192.168.42.16",))
DEPLOY2 = Pod("deploy2-7f5d9c6b4-fghij", "deploy2", {"app": "deploy2"}, ips=("192.168.7.21",))

# The seed's deny-all.yaml, verbatim (its name says ingress, its policyTypes say Egress).
SEED_DENY_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny-ingress", "namespace": "deploy2"},
    "spec": {"podSelector": {"matchLabels": {}}, "policyTypes": ["Egress"]},
}


@pytest.fixture()
def cluster() -> Cluster:
    return Cluster(pods=[DEPLOY1, DEPLOY2])


def test_ping_from_deploy2_to_deploy1_is_allowed_before_any_policy(cluster):
    assert cluster.allowed(DEPLOY2, "192.168.42.16", protocol=Protocol.ICMP)


def test_ping_from_deploy2_to_deploy1_is_denied_after_the_deny_all_egress_policy(cluster):
    verdict = cluster.with_policies(policy.default_deny_egress("deploy2")).check(
        DEPLOY2, "192.168.42.16", protocol=Protocol.ICMP)
    assert not verdict.allowed
    assert verdict.egress.isolated_by == ("default-deny-egress",)
    assert verdict.ingress.allowed  # deploy1 accepts: it is deploy2's egress that is cut


def test_the_seeds_own_yaml_denies_the_ping_too(cluster):
    assert not cluster.with_policies(SEED_DENY_ALL).allowed(DEPLOY2, DEPLOY1, protocol=Protocol.ICMP)


def test_the_deny_all_egress_policy_leaves_deploy1_free_to_reach_deploy2(cluster):
    after = cluster.with_policies(policy.default_deny_egress("deploy2"))
    assert after.allowed(DEPLOY1, DEPLOY2, protocol=Protocol.ICMP)
    assert after.allowed(DEPLOY1, DEPLOY2, 8080)


def test_adding_allow_dns_to_the_deny_all_still_denies_the_ping(cluster):
    coredns = Pod("coredns-1", "kube-system", {"k8s-app": "kube-dns"}, ips=("192.168.1.2",))
    after = Cluster(pods=[DEPLOY1, DEPLOY2, coredns], policies=[
        policy.default_deny_egress("deploy2"), policy.allow_dns_egress("deploy2")])
    assert not after.allowed(DEPLOY2, DEPLOY1, protocol=Protocol.ICMP)
    assert after.allowed(DEPLOY2, coredns, 53, Protocol.UDP)
    assert after.allowed(DEPLOY2, coredns, 53, Protocol.TCP)
    assert not after.allowed(DEPLOY2, coredns, 80, Protocol.TCP)
    assert not after.allowed(DEPLOY2, "8.8.8.8", 53, Protocol.UDP)
