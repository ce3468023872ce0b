"""An offline NetworkPolicy evaluator: is this connection allowed, and by what?

Why: a policy change is only safe if you know which connections it cuts. Applying it to a
cluster and pinging (the seed's method) is slow and needs the cluster. This module answers
from the manifests alone, following the Kubernetes NetworkPolicy semantics
(https://kubernetes.io/docs/concepts/services-networking/network-policies/):

- Isolation is per pod and per direction: a pod is isolated for egress (ingress) when some
  policy of its namespace selects it and has ``Egress`` (``Ingress``) in ``policyTypes``.
  A non-isolated direction allows everything.
- Allows are a union: an isolated direction allows what any rule of any selecting policy
  matches; order and overlap do not matter, and nothing denies.
- A connection needs both: the source's egress and the destination's ingress.
- Peers: ``podSelector`` alone means the policy's namespace; ``namespaceSelector`` alone
  means every pod there; both in one peer mean AND; ``ipBlock`` matches the address used,
  minus its ``except`` ranges. Selectors never match addresses outside the cluster.
- Ports: no ``ports`` means every port and protocol; ``port`` may be a number, a range with
  ``endPort``, or a container port name looked up on the destination pod.
- A pod can always reach itself.

Two choices the specification leaves to the implementation, made here as Calico and the VPC
CNI agent behave: ``ipBlock`` also matches pod addresses, and protocols that are not TCP, UDP
or SCTP (ICMP, the seed's ping) match only rules without ``ports``.

Input is the manifest dict (``policy.to_manifest()`` from :mod:`eksnet.policy`, or YAML
loaded by the user); the manifests are assumed valid (validate them with kubernetes-validate).
No CDK import: this runs anywhere.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Protocol(enum.Enum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"
    ICMP = "ICMP"  # not a NetworkPolicy protocol: matched only by rules without ports


@dataclass(frozen=True)
class ContainerPort:
    """A named container port, what a policy's named ``port`` resolves against."""

    name: str
    port: int
    protocol: Protocol = Protocol.TCP


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The API server sets this label on every namespace; selectors by name rely on it.
        object.__setattr__(self, "labels", {**self.labels, NAMESPACE_NAME_LABEL: self.name})

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class Pod:
    """A pod: its namespace, labels, addresses (IPv4 and/or IPv6) and named container ports."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "ips", tuple(str(ipaddress.ip_address(ip)) for ip in self.ips))
        object.__setattr__(self, "ports", tuple(self.ports))

    def __hash__(self) -> int:
        return hash((self.namespace, self.name))

    @property
    def addresses(self) -> tuple[IpAddress, ...]:
        return tuple(ipaddress.ip_address(ip) for ip in self.ips)


Endpoint = Pod | str  # a pod of the cluster, or an address (resolved to a pod when one has it)


@dataclass(frozen=True)
class DirectionVerdict:
    """One direction's answer: ``isolated`` by which policies, ``allowed_by`` which of them (names)."""

    direction: str
    isolated_by: tuple[str, ...] = ()
    allowed_by: tuple[str, ...] = ()

    @property
    def isolated(self) -> bool:
        return bool(self.isolated_by)

    @property
    def allowed(self) -> bool:
        return not self.isolated or bool(self.allowed_by)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    egress: DirectionVerdict
    ingress: DirectionVerdict
    src_ip: str
    dst_ip: str

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def reason(self) -> str:
        parts = []
        for d in (self.egress, self.ingress):
            if not d.isolated:
                parts.append(f"{d.direction}: not isolated")
            elif d.allowed_by:
                parts.append(f"{d.direction}: allowed by {', '.join(d.allowed_by)}")
            else:
                parts.append(f"{d.direction}: denied (isolated by {', '.join(d.isolated_by)}, no rule matches)")
        return "; ".join(parts)


class Cluster:
    """The pods, namespaces and NetworkPolicies to evaluate against (an offline snapshot)."""

    def __init__(
        self,
        *,
        namespaces: Iterable[Namespace] = (),
        pods: Iterable[Pod] = (),
        policies: Iterable[Mapping[str, Any] | Any] = (),
    ) -> None:
        self.namespaces: dict[str, Namespace] = {ns.name: ns for ns in namespaces}
        self.pods: list[Pod] = list(pods)
        for pod in self.pods:
            self.namespaces.setdefault(pod.namespace, Namespace(pod.namespace))
        self.policies: list[dict[str, Any]] = [_as_manifest(p) for p in policies]
        self._by_ip: dict[IpAddress, Pod] = {}
        for pod in self.pods:
            for addr in pod.addresses:
                other = self._by_ip.setdefault(addr, pod)
                if other is not pod:
                    raise ValueError(f"address {addr} belongs to both {other.namespace}/{other.name} and "
                                     f"{pod.namespace}/{pod.name}")

    @classmethod
    def from_manifests(cls, manifests: Iterable[Mapping[str, Any]]) -> Cluster:
        """A snapshot from Kubernetes objects: Namespaces, Pods and NetworkPolicies (others are ignored).

        Takes what ``kubectl get namespaces,pods,networkpolicies -A -o json`` prints (a ``List``,
        whose items are read) or any iterable of manifests. Pod addresses come from
        ``status.podIPs``, named ports from the containers' ``ports``. Host-network pods are left
        out: NetworkPolicy does not apply to them, and their address is the node's.
        """
        namespaces: list[Namespace] = []
        pods: list[Pod] = []
        policies: list[dict[str, Any]] = []
        stack = list(manifests)
        while stack:
            doc = stack.pop(0)
            kind = doc.get("kind")
            if isinstance(kind, str) and kind.endswith("List"):  # List, PodList, NetworkPolicyList...
                stack[:0] = list(doc.get("items") or ())
                continue
            meta = doc.get("metadata") or {}
            if kind == "Namespace":
                namespaces.append(Namespace(meta["name"], meta.get("labels") or {}))
            elif kind == "NetworkPolicy":
                policies.append(dict(doc))
            elif kind == "Pod" and not (doc.get("spec") or {}).get("hostNetwork"):
                status = doc.get("status") or {}
                ips = [p["ip"] for p in status.get("podIPs") or ()] or ([status["podIP"]] if status.get("podIP") else [])
                ports = [ContainerPort(cp["name"], cp["containerPort"], Protocol(cp.get("protocol", "TCP")))
                         for c in (doc.get("spec") or {}).get("containers") or () for cp in c.get("ports") or ()
                         if cp.get("name")]
                pods.append(Pod(meta["name"], meta.get("namespace") or "default", meta.get("labels") or {},
                                ips=tuple(ips), ports=tuple(ports)))
        return cls(namespaces=namespaces, pods=pods, policies=policies)

    def with_policies(self, *policies: Mapping[str, Any] | Any) -> Cluster:
        """A copy with more policies (the snapshot itself is not changed)."""
        return Cluster(namespaces=self.namespaces.values(), pods=self.pods, policies=[*self.policies, *policies])

    def pod(self, namespace: str, name: str) -> Pod:
        for p in self.pods:
            if p.namespace == namespace and p.name == name:
                return p
        raise KeyError(f"no pod {namespace}/{name}")

    # --- the question --------------------------------------------------------------------------

    def check(self, src: Endpoint, dst: Endpoint, port: int | None = None,
              protocol: Protocol = Protocol.TCP) -> Verdict:
        """Whether ``src`` may open a connection to ``dst`` on ``port``/``protocol`` (``port`` None for ICMP)."""
        if not isinstance(protocol, Protocol):
            # eksnet.policy.Protocol (TCP, UDP, SCTP) is accepted too: same values.
            value = getattr(protocol, "value", None)
            if value not in Protocol._value2member_map_:
                raise TypeError(f"protocol must be a policy_eval.Protocol (TCP, UDP, SCTP, ICMP), got {protocol!r}")
            protocol = Protocol(value)
        if protocol is Protocol.ICMP:
            if port is not None:
                raise ValueError("ICMP has no port: pass port=None")
        elif port is None or not 1 <= port <= 65535:
            raise ValueError(f"{protocol.value} needs a port in 1-65535, got {port!r}")
        src_pod, src_ip, dst_pod, dst_ip = self._resolve(src, dst)
        if src_pod is not None and src_pod == dst_pod:
            # "A pod cannot block access to itself" (Kubernetes documentation).
            return Verdict(True, DirectionVerdict("egress"), DirectionVerdict("ingress"), str(src_ip), str(dst_ip))
        egress = self._direction("Egress", src_pod, dst_pod, dst_ip, port, protocol)
        ingress = self._direction("Ingress", dst_pod, src_pod, src_ip, port, protocol)
        return Verdict(egress.allowed and ingress.allowed, egress, ingress, str(src_ip), str(dst_ip))

    def allowed(self, src: Endpoint, dst: Endpoint, port: int | None = None,
                protocol: Protocol = Protocol.TCP) -> bool:
        return self.check(src, dst, port, protocol).allowed

    def _resolve(self, src: Endpoint, dst: Endpoint) -> tuple[Pod | None, IpAddress, Pod | None, IpAddress]:
        src_pod, src_ips = self._endpoint(src)
        dst_pod, dst_ips = self._endpoint(dst)
        for s in src_ips:
            for d in dst_ips:
                if s.version == d.version:
                    return src_pod, s, dst_pod, d
        raise ValueError(f"{_describe(src)} and {_describe(dst)} share no IP family: no connection is possible")

    def _endpoint(self, e: Endpoint) -> tuple[Pod | None, tuple[IpAddress, ...]]:
        if isinstance(e, Pod):
            if not e.ips:
                raise ValueError(f"pod {e.namespace}/{e.name} has no IP address")
            return e, e.addresses
        addr = ipaddress.ip_address(e)
        return self._by_ip.get(addr), (addr,)

    def _direction(self, direction: str, subject: Pod | None, peer_pod: Pod | None, peer_ip: IpAddress,
                   port: int | None, protocol: Protocol) -> DirectionVerdict:
        """Egress of ``subject`` towards the peer, or ingress of ``subject`` from it."""
        if subject is None:  # outside the cluster: no policy applies to it
            return DirectionVerdict(direction.lower())
        isolating = [p for p in self.policies if direction in _policy_types(p)
                     and p["metadata"].get("namespace", "default") == subject.namespace
                     and _selector_matches(p["spec"].get("podSelector") or {}, subject.labels)]
        if not isolating:
            return DirectionVerdict(direction.lower())
        peer_key = "from" if direction == "Ingress" else "to"
        # The named port lives on the destination: the subject for ingress, the peer for egress.
        owner = subject if direction == "Ingress" else peer_pod
        allowed_by = []
        for p in isolating:
            for rule in p["spec"].get(direction.lower()) or ():
                if self._peer_matches(rule.get(peer_key), p["metadata"].get("namespace", "default"),
                                      peer_pod, peer_ip) and _ports_match(rule.get("ports"), port, protocol, owner):
                    allowed_by.append(p["metadata"]["name"])
                    break
        return DirectionVerdict(direction.lower(), tuple(p["metadata"]["name"] for p in isolating), tuple(allowed_by))

    def _peer_matches(self, peers: list[dict] | None, policy_ns: str, pod: Pod | None, ip: IpAddress) -> bool:
        if not peers:  # absent or empty: every peer
            return True
        return any(self._one_peer_matches(peer, policy_ns, pod, ip) for peer in peers)

    def _one_peer_matches(self, peer: Mapping[str, Any], policy_ns: str, pod: Pod | None, ip: IpAddress) -> bool:
        block = peer.get("ipBlock")
        if block is not None:
            net = ipaddress.ip_network(block["cidr"], strict=False)
            if ip.version != net.version or ip not in net:
                return False
            return not any(ip in ipaddress.ip_network(ex, strict=False) for ex in block.get("except") or ())
        if pod is None:
            return False
        ns_sel = peer.get("namespaceSelector")
        pod_sel = peer.get("podSelector")
        if ns_sel is None:
            if pod.namespace != policy_ns:
                return False
        elif not _selector_matches(ns_sel, self.namespaces.get(pod.namespace, Namespace(pod.namespace)).labels):
            return False
        return pod_sel is None or _selector_matches(pod_sel, pod.labels)


def _as_manifest(policy: Mapping[str, Any] | Any) -> dict[str, Any]:
    manifest = policy.to_manifest() if hasattr(policy, "to_manifest") else dict(policy)
    if manifest.get("kind") != "NetworkPolicy" or manifest.get("apiVersion") != "networking.k8s.io/v1":
        raise ValueError(f"not a networking.k8s.io/v1 NetworkPolicy: {manifest.get('apiVersion')}/{manifest.get('kind')}")
    return manifest


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    # The API server's defaulting: Ingress always, Egress when egress rules are present.
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.get("matchExpressions") or ():
        key, op, values = req["key"], req["operator"], req.get("values") or ()
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown label selector operator {op!r}")
    return True


def _ports_match(ports: list[dict] | None, port: int | None, protocol: Protocol, owner: Pod | None) -> bool:
    if not ports:
        return True
    if protocol is Protocol.ICMP:
        return False
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol.value:
            continue
        want = entry.get("port")
        if want is None:
            return True
        if isinstance(want, str) and not want.isdigit():
            if owner is not None and any(cp.name == want and cp.port == port and cp.protocol is protocol
                                         for cp in owner.ports):
                return True
            continue
        start = int(want)
        if start <= port <= int(entry.get("endPort", start)):  # type: ignore[operator]
            return True
    return False


def _describe(e: Endpoint) -> str:
    return f"pod {e.namespace}/{e.name}" if isinstance(e, Pod) else f"address {e}"


def _endpoint_arg(cluster: Cluster, text: str) -> Endpoint:
    if "/" in text:
        namespace, name = text.split("/", 1)
        return cluster.pod(namespace, name)
    ipaddress.ip_address(text)
    return text


def _port_arg(dst: Endpoint, port: str | None, protocol: str | None) -> tuple[int | None, Protocol]:
    """``--port``/``--protocol``: a number, or a named container port of the destination pod resolved to its number."""
    if port is None:
        return None, Protocol(protocol or "TCP")
    if port.isdigit():
        return int(port), Protocol(protocol or "TCP")
    if not isinstance(dst, Pod):
        raise ValueError(f"--port {port!r} is a name, which only a destination pod (namespace/pod) can resolve")
    named = [cp for cp in dst.ports if cp.name == port and (protocol is None or cp.protocol.value == protocol)]
    if not named:
        have = ", ".join(f"{cp.name}={cp.port}/{cp.protocol.value}" for cp in dst.ports) or "none"
        raise ValueError(f"pod {dst.namespace}/{dst.name} has no container port named {port!r} (named ports: {have})")
    return named[0].port, named[0].protocol


def main(argv: list[str] | None = None) -> int:
    """Is a connection allowed? Exit status 0 allowed, 1 denied, 2 bad input.

    ``python -m eksnet.policy_eval SNAPSHOT.json [MORE.json...] --from SRC --to DST [--port N] [--protocol P]``:
    SNAPSHOT is ``kubectl get namespaces,pods,networkpolicies -A -o json``; further files add
    NetworkPolicy manifests to try before applying them. SRC and DST are ``namespace/pod`` or an address.
    """
    import json

    from eksnet.cli import OneLineParser, error

    prog = "python -m eksnet.policy_eval"
    parser = OneLineParser(prog=prog, description=main.__doc__)
    parser.add_argument("snapshot", nargs="+", help="JSON files: a kubectl List and/or NetworkPolicy manifests")
    parser.add_argument("--from", dest="src", required=True, help="namespace/pod or an IP address")
    parser.add_argument("--to", dest="dst", required=True, help="namespace/pod or an IP address")
    parser.add_argument("--port", default=None,
                        help="a number, or a container port name of the destination pod (e.g. http)")
    parser.add_argument("--protocol", choices=[p.value for p in Protocol], default=None,
                        help="TCP unless --port names a container port, whose protocol is then used")
    args = parser.parse_args(argv)
    try:
        docs = []
        for path in args.snapshot:
            with open(path) as f:
                loaded = json.load(f)
            docs.extend(loaded if isinstance(loaded, list) else [loaded])
        cluster = Cluster.from_manifests(docs)
        src, dst = _endpoint_arg(cluster, args.src), _endpoint_arg(cluster, args.dst)
        port, protocol = _port_arg(dst, args.port, args.protocol)
        verdict = cluster.check(src, dst, port, protocol)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        # bad files, names or manifests: one line, exit 2 (AttributeError/TypeError: a manifest of the wrong shape)
        return error(prog, f"{type(e).__name__ if isinstance(e, (TypeError, AttributeError)) else ''} {e}".strip())
    shown = "" if port is None else f"/{port}" + (f" ({args.port})" if str(port) != str(args.port) else "")
    print(f"{'allowed' if verdict.allowed else 'denied'}: {verdict.src_ip} -> {verdict.dst_ip} "
          f"{protocol.value}{shown} ({verdict.reason})")
    return 0 if verdict.allowed else 1


if __name__ == "__main__":
    raise SystemExit(main())
