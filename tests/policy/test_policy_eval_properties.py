"""Properties of NetworkPolicy semantics that must hold for any pods and policies (hypothesis)."""

from __future__ import annotations

from eksnet import policy
from eksnet.policy import LabelSelector, Peer, Port, Protocol, Requirement, Rule, SelectorOperator
from eksnet.policy_eval import Cluster, Namespace, Pod
from eksnet.policy_eval import Protocol as ConnProtocol
from hypothesis import given, settings
from hypothesis import strategies as st

NAMESPACES = ("a", "b", "c")
KEYS = ("app", "tier")
VALUES = ("x", "y")
PORTS = (53, 80, 443)

labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)
requirements = st.one_of(
    st.builds(Requirement, st.sampled_from(KEYS), st.sampled_from([SelectorOperator.IN, SelectorOperator.NOT_IN]),
              st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True).map(tuple)),
    st.builds(Requirement, st.sampled_from(KEYS),
              st.sampled_from([SelectorOperator.EXISTS, SelectorOperator.DOES_NOT_EXIST])),
)
selectors = st.builds(LabelSelector, labels, st.lists(requirements, max_size=1).map(tuple))
peers = st.one_of(
    st.builds(Peer.pods, selectors),
    st.builds(Peer.namespaces, selectors),
    st.builds(Peer.pods_in_namespaces, selectors, selectors),
    st.sampled_from([Peer.cidr("10.0.0.0/25"), Peer.cidr("10.0.0.0/24", ["10.0.0.64/26"]), Peer.cidr("0.0.0.0/0")]),
)
ports = st.one_of(
    st.builds(Port, st.sampled_from(PORTS), st.sampled_from([Protocol.TCP, Protocol.UDP])),
    st.builds(lambda p: Port(p, Protocol.TCP, p + 400), st.sampled_from(PORTS)),
    st.just(Port(None, Protocol.UDP)),
)
rules = st.builds(Rule, st.lists(peers, max_size=2).map(tuple), st.lists(ports, max_size=2).map(tuple))


@st.composite
def policies(draw, name: str | None = None):
    ingress = draw(st.one_of(st.none(), st.lists(rules, max_size=2).map(tuple)))
    egress = draw(st.one_of(st.none(), st.lists(rules, max_size=2).map(tuple)))
    if ingress is None and egress is None:
        ingress = ()
    return policy.NetworkPolicy(name=name or draw(st.sampled_from(["p1", "p2", "p3", "p4"])),
                                namespace=draw(st.sampled_from(NAMESPACES)), pod_selector=draw(selectors),
                                ingress=ingress, egress=egress)


@st.composite
def worlds(draw):
    ns = [Namespace(n, draw(labels)) for n in NAMESPACES]
    count = draw(st.integers(min_value=2, max_value=5))
    pods = [Pod(f"pod{i}", draw(st.sampled_from(NAMESPACES)), draw(labels), ips=(f"10.0.0.{i * 40 + 1}",))
            for i in range(count)]
    return ns, pods, draw(st.lists(policies(), max_size=4))


def connections(cluster: Cluster) -> set[tuple[str, str, int, str]]:
    """Every allowed (src, dst, port, protocol) among the cluster's pods and two outside addresses."""
    endpoints = [*cluster.pods, "10.0.0.250", "192.0.2.1"]
    allowed = set()
    for s in endpoints:
        for d in endpoints:
            if s == d or (isinstance(s, str) and isinstance(d, str)):
                continue
            for port in PORTS:
                for proto in (ConnProtocol.TCP, ConnProtocol.UDP):
                    if cluster.allowed(s, d, port, proto):
                        allowed.add((str(s), str(d), port, proto.value))
            if cluster.allowed(s, d, protocol=ConnProtocol.ICMP):
                allowed.add((str(s), str(d), 0, "ICMP"))
    return allowed


SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(worlds(), policies(name="extra"))
def test_adding_a_policy_to_already_isolated_pods_never_removes_an_allowed_connection(world, extra):
    ns, pods, existing = world
    # Isolate every pod of extra's namespace for every direction extra touches: extra can then only add allows.
    deny = policy.NetworkPolicy(name="isolate", namespace=extra.namespace,
                                ingress=() if extra.ingress is not None else None,
                                egress=() if extra.egress is not None else None)
    before = Cluster(namespaces=ns, pods=pods, policies=[*existing, deny])
    after = before.with_policies(extra)
    assert connections(before) <= connections(after)


@SETTINGS
@given(worlds())
def test_policy_order_does_not_matter(world):
    ns, pods, existing = world
    forward = Cluster(namespaces=ns, pods=pods, policies=existing)
    backward = Cluster(namespaces=ns, pods=pods, policies=list(reversed(existing)))
    assert connections(forward) == connections(backward)


@SETTINGS
@given(worlds())
def test_without_policies_everything_is_allowed(world):
    ns, pods, _ = world
    cluster = Cluster(namespaces=ns, pods=pods)
    assert all(cluster.allowed(s, d, 80) for s in pods for d in pods)


@SETTINGS
@given(worlds(), policies())
def test_a_policy_in_a_namespace_without_pods_changes_nothing(world, extra):
    ns, pods, existing = world
    pods = [p for p in pods if p.namespace != extra.namespace]
    before = Cluster(namespaces=ns, pods=pods, policies=existing)
    assert connections(before) == connections(before.with_policies(extra))


@SETTINGS
@given(worlds(), st.sampled_from(PORTS))
def test_each_direction_depends_only_on_its_own_namespaces_policies(world, port):
    ns, pods, existing = world
    cluster = Cluster(namespaces=ns, pods=pods, policies=existing)
    for s in pods:
        for d in pods:
            if s is d:
                continue
            v = cluster.check(s, d, port)
            only_src = Cluster(namespaces=ns, pods=pods, policies=[p for p in existing if p.namespace == s.namespace])
            only_dst = Cluster(namespaces=ns, pods=pods, policies=[p for p in existing if p.namespace == d.namespace])
            assert v.egress == only_src.check(s, d, port).egress
            assert v.ingress == only_dst.check(s, d, port).ingress
