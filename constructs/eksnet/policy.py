"""Typed Kubernetes ``NetworkPolicy`` builders that render plain manifest dicts (MISSION.md section 3).

Why typed: a NetworkPolicy written by hand fails silently. A misspelt ``policyTypes``, an
``except`` block outside its ``cidr`` or a ``namespaceSelector`` put in its own list item (OR)
where the same item was meant (AND) all apply without error and allow or deny the wrong
traffic. Here every choice is an enum or a frozen dataclass checked at construction, with a
message that says what to change, and the output is the exact manifest the API server takes
(checked against the Kubernetes schemas with kubernetes-validate in the tests).

Nothing here imports CDK: the dicts go into ``aws_eks_v2.KubernetesManifest``, into YAML for
``kubectl``, or into :mod:`eksnet.policy_eval`, the offline evaluator.

Model: a policy isolates the pods it selects for a direction when that direction's rules are
given (``ingress=()`` isolates with no allow, i.e. deny all; ``ingress=None`` leaves ingress
alone). ``policyTypes`` is always rendered explicitly from that, so there is no implicit
defaulting to reason about.

Example (the seed's "deny-all" egress policy in namespace deploy2)::

    default_deny_egress("deploy2").to_manifest()
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eksnet import typecheck, validate

API_VERSION = "networking.k8s.io/v1"
KIND = "NetworkPolicy"

# The label the API server puts on every namespace (Kubernetes >= 1.22): the portable way to
# select a namespace by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# CoreDNS on EKS: the kube-dns service's pods in kube-system carry k8s-app=kube-dns.
DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS: Mapping[str, str] = {"k8s-app": "kube-dns"}
DNS_PORT = 53

class Protocol(enum.Enum):
    """The L4 protocols a NetworkPolicy port can name (Kubernetes defaults to TCP)."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class SelectorOperator(enum.Enum):
    """``matchExpressions`` operators of a Kubernetes label selector."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry: ``key`` related to ``values`` by ``operator``."""

    key: str
    operator: SelectorOperator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        validate.label_key(self.key)
        object.__setattr__(self, "values", tuple(self.values))
        needs_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values and not self.values:
            raise ValueError(f"selector requirement on {self.key!r} with {self.operator.value} needs at least one value")
        if not needs_values and self.values:
            raise ValueError(
                f"selector requirement on {self.key!r} with {self.operator.value} takes no values; "
                "use IN / NOT_IN to compare values"
            )
        for v in self.values:
            validate.label_value(v, f"selector requirement on {self.key!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "operator": self.operator.value}
        if self.values:
            out["values"] = list(self.values)
        return out


@dataclass(frozen=True)
class LabelSelector:
    """A Kubernetes label selector; the empty selector (the default) selects everything."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        object.__setattr__(self, "match_labels", validate.labels(self.match_labels))
        object.__setattr__(self, "match_expressions", tuple(self.match_expressions))

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.match_labels.items())), self.match_expressions))

    @classmethod
    def labels(cls, **labels: str) -> LabelSelector:
        """Shorthand for ``matchLabels`` whose keys are Python identifiers: ``LabelSelector.labels(app="web")``."""
        for key, value in labels.items():
            typecheck.check("LabelSelector.labels", key, value, str)
        return cls(match_labels=labels)

    @property
    def selects_all(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.match_labels:
            out["matchLabels"] = dict(sorted(self.match_labels.items()))
        if self.match_expressions:
            out["matchExpressions"] = [r.to_dict() for r in self.match_expressions]
        return out


ALL = LabelSelector()


def namespace_named(name: str) -> LabelSelector:
    """Select one namespace by name, through the label the API server sets on every namespace."""
    typecheck.check_call("namespace_named", namespace_named, locals())
    validate.dns1123_label(name, "namespace name")
    return LabelSelector(match_labels={NAMESPACE_NAME_LABEL: name})


@dataclass(frozen=True)
class Port:
    """A port entry of a rule: ``port`` (number or container port name), optional ``end_port`` for a range.

    ``port=None`` means every port of ``protocol``.
    """

    port: int | str | None = None
    protocol: Protocol = Protocol.TCP
    end_port: int | None = None

    def __post_init__(self) -> None:
        typecheck.check_fields(self)  # a bool port, a protocol string: refused here
        if isinstance(self.port, int):
            if not 1 <= self.port <= 65535:
                raise ValueError(f"port must be in 1-65535, got {self.port}")
        elif isinstance(self.port, str):
            validate.port_name(self.port)
        if self.end_port is not None:
            if not isinstance(self.port, int):
                raise ValueError("end_port needs a numeric port to start the range (named ports have no range)")
            if not self.port <= self.end_port <= 65535:
                raise ValueError(f"end_port must be between port ({self.port}) and 65535, got {self.end_port}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"protocol": self.protocol.value}
        if self.port is not None:
            out["port"] = self.port
        if self.end_port is not None:
            out["endPort"] = self.end_port
        return out


def tcp(port: int | str, end_port: int | None = None) -> Port:
    typecheck.check_call("tcp", tcp, locals())
    return Port(port, Protocol.TCP, end_port)


def udp(port: int | str, end_port: int | None = None) -> Port:
    typecheck.check_call("udp", udp, locals())
    return Port(port, Protocol.UDP, end_port)


@dataclass(frozen=True)
class IpBlock:
    """A CIDR (IPv4 or IPv6) with optional ``except_`` CIDRs, each strictly inside it and of its family."""

    cidr: str
    except_: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        net = validate.network(self.cidr, "ipBlock cidr", canonical=True)
        object.__setattr__(self, "except_", tuple(self.except_))
        for ex in self.except_:
            sub = validate.network(ex, "ipBlock except", canonical=True)
            if sub.version != net.version:
                raise ValueError(f"ipBlock except {ex} is IPv{sub.version} but cidr {self.cidr} is IPv{net.version}")
            if not validate.inside(sub, net, strictly=True):
                raise ValueError(f"ipBlock except {ex} must be strictly inside cidr {self.cidr}")

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cidr": self.cidr}
        if self.except_:
            out["except"] = list(self.except_)
        return out


@dataclass(frozen=True)
class Peer:
    """Who a rule allows: pods (``pod_selector``) and/or namespaces (``namespace_selector``), or an ``ip_block``.

    Both selectors in one peer mean AND (those pods in those namespaces); separate peers mean
    OR. ``pod_selector`` alone means pods of the policy's own namespace. Use the class
    methods, which name the combination.
    """

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IpBlock | None = None

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        has_selector = self.pod_selector is not None or self.namespace_selector is not None
        if self.ip_block is not None and has_selector:
            raise ValueError("a peer is either an ip_block or pod/namespace selectors, not both: use two peers (OR)")
        if self.ip_block is None and not has_selector:
            raise ValueError("a peer needs a pod_selector, a namespace_selector or an ip_block")

    @classmethod
    def pods(cls, selector: LabelSelector) -> Peer:
        """Pods of the policy's own namespace that match ``selector``."""
        return cls(pod_selector=selector)

    @classmethod
    def namespaces(cls, selector: LabelSelector) -> Peer:
        """Every pod of the namespaces that match ``selector``."""
        return cls(namespace_selector=selector)

    @classmethod
    def pods_in_namespaces(cls, namespaces: LabelSelector, pods: LabelSelector) -> Peer:
        """Pods matching ``pods`` in namespaces matching ``namespaces`` (AND, one list item)."""
        return cls(pod_selector=pods, namespace_selector=namespaces)

    @classmethod
    def cidr(cls, cidr: str, except_: Iterable[str] = ()) -> Peer:
        typecheck.check_call("Peer.cidr", Peer.cidr.__func__, locals(), skip=("cls",))
        return cls(ip_block=IpBlock(cidr, tuple(except_)))

    def to_dict(self) -> dict[str, Any]:
        if self.ip_block is not None:
            return {"ipBlock": self.ip_block.to_dict()}
        out: dict[str, Any] = {}
        if self.namespace_selector is not None:
            out["namespaceSelector"] = self.namespace_selector.to_dict()
        if self.pod_selector is not None:
            out["podSelector"] = self.pod_selector.to_dict()
        return out


@dataclass(frozen=True)
class Rule:
    """One ingress or egress rule: traffic with any of ``peers`` (none: everyone) on any of ``ports`` (none: all)."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[Port, ...] = ()

    def __post_init__(self) -> None:
        typecheck.check_fields(self)  # Peer objects; Port objects such as tcp(443)
        object.__setattr__(self, "peers", tuple(self.peers))
        object.__setattr__(self, "ports", tuple(self.ports))

    def to_dict(self, peer_key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.peers:
            out[peer_key] = [p.to_dict() for p in self.peers]
        if self.ports:
            out["ports"] = [p.to_dict() for p in self.ports]
        return out


@dataclass(frozen=True)
class NetworkPolicy:
    """A namespaced NetworkPolicy.

    ``ingress``/``egress``: ``None`` leaves that direction alone; a tuple of rules isolates the
    selected pods for that direction and allows only what the rules match (``()`` denies all).
    """

    name: str
    namespace: str
    pod_selector: LabelSelector = ALL
    ingress: tuple[Rule, ...] | None = None
    egress: tuple[Rule, ...] | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for direction in ("ingress", "egress"):
            if isinstance(getattr(self, direction), Rule):
                raise TypeError(f"NetworkPolicy.{direction} must be a tuple of rules, not a single Rule: write "
                                f"({direction}_rule,)")
        typecheck.check_fields(self)
        validate.dns1123_subdomain(self.name, "policy name")
        validate.dns1123_label(self.namespace, "policy namespace")
        if self.ingress is None and self.egress is None:
            raise ValueError(
                f"policy {self.name!r} affects no direction: give ingress and/or egress rules "
                "(an empty tuple denies that direction)"
            )
        for direction in ("ingress", "egress"):
            rules = getattr(self, direction)
            if rules is not None:
                object.__setattr__(self, direction, tuple(rules))
        object.__setattr__(self, "labels", validate.labels(self.labels))

    def __hash__(self) -> int:
        return hash((self.name, self.namespace))

    @property
    def policy_types(self) -> list[str]:
        return [t for t, rules in (("Ingress", self.ingress), ("Egress", self.egress)) if rules is not None]

    def to_manifest(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(sorted(self.labels.items()))
        spec: dict[str, Any] = {"podSelector": self.pod_selector.to_dict(), "policyTypes": self.policy_types}
        if self.ingress:
            spec["ingress"] = [r.to_dict("from") for r in self.ingress]
        if self.egress:
            spec["egress"] = [r.to_dict("to") for r in self.egress]
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


# --- the common policies, by name -------------------------------------------------------------

def default_deny_ingress(namespace: str, *, name: str = "default-deny-ingress") -> NetworkPolicy:
    """Isolate every pod of ``namespace`` for ingress with no allow: other policies then open what is needed."""
    typecheck.check_call("default_deny_ingress", default_deny_ingress, locals())
    return NetworkPolicy(name=name, namespace=namespace, ingress=())


def default_deny_egress(namespace: str, *, name: str = "default-deny-egress") -> NetworkPolicy:
    """Isolate every pod of ``namespace`` for egress: the seed's deny-all (nothing leaves, DNS included)."""
    typecheck.check_call("default_deny_egress", default_deny_egress, locals())
    return NetworkPolicy(name=name, namespace=namespace, egress=())


def default_deny_all(namespace: str, *, name: str = "default-deny-all") -> NetworkPolicy:
    typecheck.check_call("default_deny_all", default_deny_all, locals())
    return NetworkPolicy(name=name, namespace=namespace, ingress=(), egress=())


def allow_dns_egress(
    namespace: str,
    *,
    name: str = "allow-dns-egress",
    pod_selector: LabelSelector = ALL,
    dns_namespace: str = DNS_NAMESPACE,
    dns_pod_labels: Mapping[str, str] = DNS_POD_LABELS,
) -> NetworkPolicy:
    """Let pods resolve names under a default-deny egress: UDP and TCP 53 to CoreDNS only.

    The peer is CoreDNS's pods in its namespace (AND), not "port 53 anywhere", so the rule
    opens no path to an outside resolver.
    """
    typecheck.check_call("allow_dns_egress", allow_dns_egress, locals())
    peer = Peer.pods_in_namespaces(namespace_named(dns_namespace), LabelSelector(match_labels=dict(dns_pod_labels)))
    return NetworkPolicy(
        name=name, namespace=namespace, pod_selector=pod_selector,
        egress=(Rule(peers=(peer,), ports=(udp(DNS_PORT), tcp(DNS_PORT))),),
    )


def _allow(direction: str, namespace: str, name: str, peers: Iterable[Peer], ports: Iterable[Port],
           pod_selector: LabelSelector) -> NetworkPolicy:
    peers = tuple(peers)
    if not peers:
        everyone = "everyone" if direction == "ingress" else "everywhere"
        raise ValueError(f"allow_{direction} {name!r} needs at least one peer; "
                         f"to allow {everyone} use allow_all_{direction}")
    rule = (Rule(peers=peers, ports=tuple(ports)),)
    return NetworkPolicy(name=name, namespace=namespace, pod_selector=pod_selector, **{direction: rule})


def allow_ingress(
    namespace: str,
    name: str,
    *,
    peers: Iterable[Peer],
    ports: Iterable[Port] = (),
    pod_selector: LabelSelector = ALL,
) -> NetworkPolicy:
    """Allow ``peers`` (OR) to reach the selected pods on ``ports`` (none: all ports)."""
    typecheck.check_call("allow_ingress", allow_ingress, locals())
    return _allow("ingress", namespace, name, peers, ports, pod_selector)


def allow_egress(
    namespace: str,
    name: str,
    *,
    peers: Iterable[Peer],
    ports: Iterable[Port] = (),
    pod_selector: LabelSelector = ALL,
) -> NetworkPolicy:
    """Allow the selected pods to reach ``peers`` (OR) on ``ports`` (none: all ports)."""
    typecheck.check_call("allow_egress", allow_egress, locals())
    return _allow("egress", namespace, name, peers, ports, pod_selector)


def allow_all_ingress(namespace: str, *, name: str = "allow-all-ingress") -> NetworkPolicy:
    """One empty rule: every source on every port (overrides any deny in the namespace, policies being a union)."""
    typecheck.check_call("allow_all_ingress", allow_all_ingress, locals())
    return NetworkPolicy(name=name, namespace=namespace, ingress=(Rule(),))


def allow_all_egress(namespace: str, *, name: str = "allow-all-egress") -> NetworkPolicy:
    typecheck.check_call("allow_all_egress", allow_all_egress, locals())
    return NetworkPolicy(name=name, namespace=namespace, egress=(Rule(),))
