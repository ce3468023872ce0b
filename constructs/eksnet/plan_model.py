"""What ``eksnet plan`` knows about a synthesized app: subnets, gateways, clusters, node groups and
their capacity, read from the templates alone (no AWS, no construct objects).

Why from templates: the plan must describe what *will be deployed*, whichever app produced it, so it
reads resource types and properties, never construct paths or logical-ID patterns. Capacity figures
come from the same code the constructs use: instance limits and maxPods from ``eksnet.max_pods``,
addresses per delegated prefix from the node runtime's allocator (``node_runtime.ipam.allocator``,
which excludes a /28's network and broadcast addresses).

The capacity model, per node and per subnet (at maxPods, ignoring the VPC CNI's warm-pool slack):

* secondary IP mode: the node's VPC CNI ENIs needed for ``maxPods - 2`` pods (aws-node and
  kube-proxy use the host network), each taking ``IPv4 addresses per ENI`` from the node subnet;
* prefix mode: one primary address per ENI, plus ``ceil((maxPods - 2) / 16)`` /28 prefixes;
* IPv6 clusters: one IPv4 address (the node's) and one /80 prefix from the node subnet's /64;
* custom networking: only the node's own address is in the node subnet (pods use ENIConfig subnets);
* a Multus subnet: one ENI per node (its primary IPv4 and IPv6 address) plus the delegated /28 and
  /80 prefixes the Multus Lambda asks for. Prefixes come from the subnet's prefix reservations when
  it has some (EC2 assigns prefixes from them first), else from the subnet's free space.

Each subnet offers IPv4 addresses (its size less AWS's 5 and every reservation), IPv4 /28 and IPv6
/80 prefixes; the nodes that fit are the smallest quotient, and its resource is the one that runs out first.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eksnet import max_pods as _max_pods
from eksnet.plan_template import Cidr, PlanInputError, SymbolicCidr, Template, cidr_size
from node_runtime.ipam.allocator import parse_range

AWS_RESERVED_PER_SUBNET = 5  # network, VPC router, DNS, future use, broadcast
IPV4_PREFIX_LEN = 28  # what EC2 delegates to an ENI (Ipv4PrefixCount)
IPV6_PREFIX_LEN = 80  # (Ipv6PrefixCount), and the VPC CNI's per-node prefix in IPv6 clusters
HOST_NETWORK_PODS = 2  # aws-node and kube-proxy: counted in maxPods, no pod address
CNI_MODES = ("secondary IP", "prefix", "IPv6 prefix")


class SubnetKind(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    IPV6_ONLY = "IPv6-only"
    MULTUS = "Multus"
    ISOLATED = "isolated"


class TargetKind(enum.Enum):
    IGW = "IGW"
    EIGW = "EIGW"
    NAT = "NAT"
    NAT64 = "NAT64"
    TGW = "TGW"
    PEERING = "peering"
    OTHER = "other"


NAT64_PREFIX = "64:ff9b::/96"


@dataclass(frozen=True)
class Route:
    destination: str
    target: TargetKind
    target_id: str


@dataclass(frozen=True)
class Reservation:
    id: str
    family: int
    cidr: str  # IPv4 literal, or relative to the subnet's block ("+ 1 -> /72")
    prefixlen: int
    type: str  # "prefix" or "explicit"
    addresses: int
    description: str = ""


@dataclass(frozen=True)
class Gateway:
    id: str
    kind: TargetKind  # IGW, EIGW or NAT
    zone: str | None = None  # NAT gateways live in a zone (their subnet's)
    subnet_id: str | None = None
    public_ip: bool = False  # a NAT gateway with an Elastic IP


@dataclass(frozen=True)
class Capacity:
    """How many nodes of ``node_group`` one subnet holds, and which resource runs out first."""

    node_group: str
    cluster: str
    per_node: dict[str, int]
    available: dict[str, int]
    nodes: int
    limited_by: str


@dataclass
class Subnet:
    id: str
    name: str
    zone: str
    kind: SubnetKind
    ipv4: str | None
    ipv4_size: int
    ipv6: str | None
    ipv6_prefixlen: int | None
    dns64: bool
    routes: list[Route] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)
    device_index: int | None = None  # Multus subnets: the ENI device index they serve
    interface: str | None = None  # Multus subnets: the interface name on the node (multus<device index>)
    delegated_ipv4_prefixes: int = 0  # /28s the Multus function delegates to each node's ENI here
    delegated_ipv6_prefixes: int = 0  # /80s, likewise
    capacity: list[Capacity] = field(default_factory=list)
    stack: str = ""

    @property
    def key(self) -> str:
        """``<stack>/<logical id>``: unique in the assembly (node groups may use another stack's subnets)."""
        return f"{self.stack}/{self.id}"

    @property
    def tier(self) -> str:
        """The diagram's row: the kind, and the device index for Multus subnets."""
        return f"{self.kind.value} {self.device_index}" if self.device_index is not None else self.kind.value


@dataclass
class Vpc:
    id: str
    name: str
    ipv4: str | None
    ipv6: str | None
    zones: list[str]
    subnets: list[Subnet]
    gateways: list[Gateway]


@dataclass(frozen=True)
class MultusNetwork:
    """One Multus ENI per node: its device index, the subnet of each zone, and what is delegated to it."""

    interface: str
    device_index: int
    subnets: dict[str, str]  # zone -> subnet key (``Subnet.key``)
    ipv4_prefixes: int
    ipv6_prefixes: int
    ipv4_pods: int  # addresses the node runtime hands out from the delegated IPv4 prefixes
    ipv6_pods: int | None  # None: the subnet has no IPv6
    pods_per_node: int  # min of both families and maxPods


@dataclass
class NodeGroup:
    id: str
    name: str
    cluster: str
    instance_types: list[str]
    min_size: int
    desired_size: int
    max_size: int
    subnets: list[str]  # subnet keys (``Subnet.key``), in this stack or another one's through exports
    max_enis: int | None  # the instance type's limit (smallest over the types)
    multus_enis: int
    vpc_cni_enis: int | None  # ENIs the VPC CNI may use (after Multus and the trunk ENI)
    vpc_cni_enis_at_max_pods: int | None
    trunk_eni: bool
    max_pods: int | None  # computed by eksnet.max_pods for the ENIs left to the VPC CNI
    user_data_max_pods: int | None  # what the launch template tells kubelet
    multus: list[MultusNetwork] = field(default_factory=list)

    @property
    def enis_per_instance(self) -> int | None:
        if self.vpc_cni_enis_at_max_pods is None:
            return None
        return self.vpc_cni_enis_at_max_pods + self.multus_enis + (1 if self.trunk_eni else 0)


@dataclass
class Cluster:
    id: str
    name: str
    ip_family: str
    version: str | None
    cni_mode: str
    custom_networking: bool
    pod_security_groups: bool
    vpc_id: str | None  # ``<stack>/<logical id>`` of the VPC of its subnets
    node_groups: list[NodeGroup]


@dataclass
class Stack:
    name: str
    region: str | None
    account: str | None
    vpcs: list[Vpc]
    clusters: list[Cluster]
    findings: list[str]


# --- helpers ---------------------------------------------------------------------------------------------


def _tags(props: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for tag in props.get("Tags") or []:
        if isinstance(tag, dict) and isinstance(tag.get("Key"), str):
            out[tag["Key"]] = tag.get("Value")
    return out


def _short_name(lid: str, props: dict[str, Any]) -> str:
    name = _tags(props).get("Name")
    return name.rsplit("/", 1)[-1] if isinstance(name, str) and name else lid


def _zone(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Select" in value:
        index, _ = value["Fn::Select"]
        return f"zone #{int(index) + 1}"
    return "zone ?"


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _cidr_text(cidr: Cidr | None) -> str | None:
    return None if cidr is None else str(cidr)


def prefix_pods(family: int, count: int) -> int:
    """Pod addresses the node runtime hands out from ``count`` delegated prefixes (one source: its allocator)."""
    if count <= 0:
        return 0
    net = "192.0.2.0/28" if family == 4 else "2001:db8::/80"
    return count * parse_range({"subnet": net, "delegated": True}).size


# --- reading one stack --------------------------------------------------------------------------------


class _StackReader:
    def __init__(self, template: Template) -> None:
        self.t = template
        self.findings: list[str] = []

    def read_network(self, multus_subnets: dict[str, tuple[str, int, int, int]]) -> list[Vpc]:
        t = self.t
        rt_of_subnet = {self.t.ref(p.get("SubnetId")): self.t.ref(p.get("RouteTableId"))
                        for _, p in t.of_type("AWS::EC2::SubnetRouteTableAssociation")}
        routes_of_rt: dict[str | None, list[Route]] = {}
        for _, p in t.of_type("AWS::EC2::Route"):
            route = self._route(p)
            if route is not None:
                routes_of_rt.setdefault(t.ref(p.get("RouteTableId")), []).append(route)
        reservations = self._reservations()
        vpcs: list[Vpc] = []
        for vpc_id, vp in t.of_type("AWS::EC2::VPC"):
            ipv6_root = t.vpc_ipv6_root(vpc_id)
            subnets = []
            for sid, sp in t.of_type("AWS::EC2::Subnet"):
                if t.ref(sp.get("VpcId")) != vpc_id:
                    continue
                subnets.append(self._subnet(sid, sp, routes_of_rt.get(rt_of_subnet.get(sid), []),
                                            reservations.get(sid, []), multus_subnets.get(f"{t.stack}/{sid}")))
            zones = sorted({s.zone for s in subnets})
            name = _tags(vp).get("Name")
            vpcs.append(Vpc(
                id=vpc_id, name=name.split("/", 1)[-1] if isinstance(name, str) and name else vpc_id,
                ipv4=vp.get("CidrBlock") if isinstance(vp.get("CidrBlock"), str) else None,
                ipv6=_cidr_text(ipv6_root), zones=zones, subnets=subnets,
                gateways=self._gateways(vpc_id, {s.id: s for s in subnets}),
            ))
        return vpcs

    # routes, subnets, gateways ---------------------------------------------------------------------------

    def _route(self, p: dict[str, Any]) -> Route | None:
        t = self.t
        dest = p.get("DestinationCidrBlock") or p.get("DestinationIpv6CidrBlock") or p.get("DestinationPrefixListId")
        dest = dest if isinstance(dest, str) else "?"
        for key, kind in (("GatewayId", None), ("NatGatewayId", TargetKind.NAT),
                          ("EgressOnlyInternetGatewayId", TargetKind.EIGW), ("TransitGatewayId", TargetKind.TGW),
                          ("VpcPeeringConnectionId", TargetKind.PEERING)):
            if key not in p:
                continue
            target = t.ref(p[key]) or "?"
            if kind is None:
                kind = TargetKind.IGW if t.type_of(target) == "AWS::EC2::InternetGateway" else TargetKind.OTHER
            if kind is TargetKind.NAT and dest == NAT64_PREFIX:
                kind = TargetKind.NAT64
            return Route(destination=dest, target=kind, target_id=target)
        target = next(iter(t.refs_in({k: v for k, v in p.items() if k.endswith("Id") and k != "RouteTableId"})), "?")
        return Route(destination=dest, target=TargetKind.OTHER, target_id=target)

    def _reservations(self) -> dict[str | None, list[Reservation]]:
        """CIDR reservations, as CloudFormation's type or the region-aware custom resource (same properties)."""
        t = self.t
        out: dict[str | None, list[Reservation]] = {}
        for lid, p in t.of_type("AWS::EC2::SubnetCidrReservation", "Custom::SubnetCidrReservation"):
            if "Cidr" not in p:  # an AwsCustomResource: the EC2 call's parameters are JSON inside "Create"
                call = t.json_value(p.get("Create"))
                params = call.get("parameters") if isinstance(call, dict) else None
                p = {k: t.unmark(v) for k, v in params.items()} if isinstance(params, dict) else {}
            subnet_id = t.ref(p.get("SubnetId"))
            raw = p.get("Cidr")
            family = 6 if (isinstance(raw, str) and ":" in raw) or "Ipv6CidrBlocks" in repr(raw) else 4
            cidr = t.cidr(raw, family=family)
            if cidr is None or isinstance(cidr, list):
                self.findings.append(f"reservation {lid}: its CIDR cannot be read from the template")
                continue
            parent = t.cidr(t.props(subnet_id or "").get("Ipv6CidrBlock" if family == 6 else "CidrBlock"),
                            family=family)
            text = cidr.relative_to(parent) if isinstance(cidr, SymbolicCidr) and isinstance(parent, SymbolicCidr) \
                else str(cidr)
            rtype = str(p.get("ReservationType") or "").lower()
            out.setdefault(subnet_id, []).append(Reservation(
                id=lid, family=family, cidr=text, prefixlen=cidr.prefixlen, type=rtype,
                addresses=cidr_size(cidr), description=str(p.get("Description") or ""),
            ))
        return out

    def _subnet(self, sid: str, p: dict[str, Any], routes: list[Route], reservations: list[Reservation],
                multus: tuple[str, int, int, int] | None) -> Subnet:
        t = self.t
        ipv4 = t.cidr(p.get("CidrBlock"), family=4)
        ipv6 = t.cidr(p.get("Ipv6CidrBlock"), family=6)
        ipv4 = None if isinstance(ipv4, list) else ipv4
        ipv6 = None if isinstance(ipv6, list) else ipv6
        tags = _tags(p)
        if multus is not None or str(tags.get("multus", "")).lower() == "true":
            kind = SubnetKind.MULTUS
        elif any(r.target is TargetKind.IGW for r in routes if r.destination in ("0.0.0.0/0", "::/0")):
            kind = SubnetKind.PUBLIC
        elif _bool(p.get("Ipv6Native")):
            kind = SubnetKind.IPV6_ONLY
        elif any(r.destination in ("0.0.0.0/0", "::/0") for r in routes):
            kind = SubnetKind.PRIVATE
        else:
            kind = SubnetKind.ISOLATED
        return Subnet(
            id=sid, name=_short_name(sid, p), zone=_zone(p.get("AvailabilityZone")), kind=kind,
            ipv4=_cidr_text(ipv4), ipv4_size=cidr_size(ipv4) if ipv4 is not None else 0,
            ipv6=_cidr_text(ipv6), ipv6_prefixlen=ipv6.prefixlen if ipv6 is not None else None,
            dns64=_bool(p.get("EnableDns64")), routes=sorted(routes, key=lambda r: (":" in r.destination, r.destination)),
            reservations=reservations, device_index=multus[1] if multus else None, stack=self.t.stack,
            interface=multus[0] if multus else None,
            delegated_ipv4_prefixes=multus[2] if multus else 0,
            delegated_ipv6_prefixes=multus[3] if multus and ipv6 is not None else 0,
        )

    def _gateways(self, vpc_id: str, subnets: dict[str, Subnet]) -> list[Gateway]:
        t = self.t
        out: list[Gateway] = []
        attached = {t.ref(p.get("InternetGatewayId")) for _, p in t.of_type("AWS::EC2::VPCGatewayAttachment")
                    if t.ref(p.get("VpcId")) == vpc_id}
        out += [Gateway(id=lid, kind=TargetKind.IGW) for lid, _ in t.of_type("AWS::EC2::InternetGateway")
                if lid in attached]
        out += [Gateway(id=lid, kind=TargetKind.EIGW) for lid, p in t.of_type("AWS::EC2::EgressOnlyInternetGateway")
                if t.ref(p.get("VpcId")) == vpc_id]
        for lid, p in t.of_type("AWS::EC2::NatGateway"):
            subnet = subnets.get(t.ref(p.get("SubnetId")) or "")
            if subnet is None:
                continue
            public = p.get("ConnectivityType", "public") == "public"
            out.append(Gateway(id=lid, kind=TargetKind.NAT, zone=subnet.zone, subnet_id=subnet.id, public_ip=public))
        return out

    # Multus ------------------------------------------------------------------------------------------------

    def read_multus(self) -> list[dict[str, Any]]:
        """Each Multus ENI function: its interfaces (name, device index, zone -> subnet), prefix counts, node groups."""
        t = self.t
        found = []
        for lid, p in t.of_type("AWS::Lambda::Function"):
            env = ((p.get("Environment") or {}).get("Variables")) or {}
            if "MULTUS_SUBNETS" not in env:
                continue
            zones = t.json_value(env["MULTUS_SUBNETS"])
            if not isinstance(zones, dict):
                self.findings.append(f"Multus function {lid}: MULTUS_SUBNETS cannot be read from the template")
                continue
            first = _int(env.get("MULTUS_FIRST_DEVICE_INDEX"), 1)
            width = max((len(v) for v in zones.values() if isinstance(v, list)), default=0)
            interfaces = []
            for position in range(width):
                per_zone = {}
                for zone, ids in sorted(zones.items()):
                    if isinstance(ids, list) and position < len(ids):
                        m = re.fullmatch(r"\{\{ref:(.+)\}\}", str(ids[position]))
                        if m:  # "<stack>/<id>" when imported from another stack
                            per_zone[zone] = m.group(1) if "/" in m.group(1) else f"{t.stack}/{m.group(1)}"
                interfaces.append((f"multus{first + position}", first + position, per_zone))
            found.append({
                "id": lid, "interfaces": interfaces,
                "ipv4_prefixes": _int(env.get("MULTUS_IPV4_PREFIX_COUNT"), 0),
                "ipv6_prefixes": _int(env.get("MULTUS_IPV6_PREFIX_COUNT"), 0),
                "node_groups": {f"{t.stack}/{g}" for g in (
                    self._node_groups_behind(env["MULTUS_GROUP_NAMES"], set())
                    if "MULTUS_GROUP_NAMES" in env else self._node_groups_of_function(lid))},
            })
        return found

    def _node_groups_behind(self, value: Any, seen: set[str]) -> set[str]:
        """Node groups (EKS managed, or Auto Scaling groups) that a value refers to, through custom resources."""
        out: set[str] = set()
        for target in self.t.refs_in(value):
            if target in seen:
                continue
            seen.add(target)
            kind = self.t.type_of(target) or ""
            if kind in ("AWS::EKS::Nodegroup", "AWS::AutoScaling::AutoScalingGroup"):
                out.add(target)
            elif kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
                props = {k: v for k, v in self.t.props(target).items() if k != "ServiceToken"}
                out |= self._node_groups_behind(props, seen)
        return out

    def _node_groups_of_function(self, function_id: str) -> set[str]:
        """The groups an EventBridge rule sends to the function, or else those with a launch hook in the stack."""
        t = self.t
        groups: set[str] = set()
        for _, p in t.of_type("AWS::Events::Rule"):
            if function_id in set(t.refs_in(p.get("Targets"))):
                groups |= self._node_groups_behind(p.get("EventPattern"), set())
        if not groups:  # no rule names the groups: the stack's launch hooks do
            for _, p in t.of_type("AWS::AutoScaling::LifecycleHook"):
                if p.get("LifecycleTransition") == "autoscaling:EC2_INSTANCE_LAUNCHING":
                    groups |= self._node_groups_behind(p.get("AutoScalingGroupName"), set())
        return groups

    # clusters and node groups ---------------------------------------------------------------------------------

    def read_clusters(self, subnets: dict[str, Subnet], subnet_vpc: dict[str, str],
                      multus: list[dict[str, Any]]) -> list[Cluster]:
        """Clusters and node groups; ``subnets`` and ``subnet_vpc`` (subnet key -> VPC key) span the assembly."""
        t = self.t
        clusters = []
        for cid, p in t.of_type("AWS::EKS::Cluster"):
            name = p.get("Name") if isinstance(p.get("Name"), str) else cid
            family = str(((p.get("KubernetesNetworkConfig") or {}).get("IpFamily")) or "ipv4").lower()
            env: dict[str, Any] = {}
            for _, ap in t.of_type("AWS::EKS::Addon"):
                if ap.get("AddonName") == "vpc-cni" and t.ref(ap.get("ClusterName")) == cid:
                    config = t.json_value(ap.get("ConfigurationValues")) if ap.get("ConfigurationValues") else {}
                    env = (config or {}).get("env") or {}
            ipv6 = family == "ipv6"
            prefix = ipv6 or _bool(env.get("ENABLE_PREFIX_DELEGATION"))
            cluster = Cluster(
                id=cid, name=name, ip_family="IPv6" if ipv6 else "IPv4",
                version=p.get("Version") if isinstance(p.get("Version"), str) else None,
                cni_mode=CNI_MODES[2] if ipv6 else CNI_MODES[1] if prefix else CNI_MODES[0],
                custom_networking=_bool(env.get("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG")),
                pod_security_groups=_bool(env.get("ENABLE_POD_ENI")),
                vpc_id=next((subnet_vpc["/".join(k)] for k in t.targets_in(
                    (p.get("ResourcesVpcConfig") or {}).get("SubnetIds")) if "/".join(k) in subnet_vpc), None),
                node_groups=[],
            )
            for gid, gp in t.of_type("AWS::EKS::Nodegroup"):
                if t.ref(gp.get("ClusterName")) == cid:
                    cluster.node_groups.append(self._node_group(cluster, gid, gp, multus, subnets))
            clusters.append(cluster)
        return clusters

    def _user_data_max_pods(self, gp: dict[str, Any]) -> int | None:
        lt = self.t.ref((gp.get("LaunchTemplate") or {}).get("Id"))
        if lt is None:
            return None
        data = ((self.t.props(lt).get("LaunchTemplateData")) or {}).get("UserData")
        text = self.t.join_with_markers(data)
        found = re.findall(r"maxPods:\s*(\d+)", text or "")
        return int(found[-1]) if found else None

    def _scaling_set_at_deploy(self, gid: str) -> dict[str, Any] | None:
        """The sizes a deploy-time ``updateNodegroupConfig`` call (a ``Custom::AWS`` resource) gives node group
        ``gid``, as ``ScalingConfig`` keys; None when nothing resizes it.

        A Multus node group starts at size 0 in its template and gets its real size once the lifecycle hooks exist
        (``MultusNetworking``): the plan shows the size the group runs at, not the template's 0.
        """
        for _, props in self.t.of_type("Custom::AWS"):
            text = self.t.join_with_markers(props.get("Create"))
            if not text or "{{ref:" + gid + "}}" not in text:
                continue
            try:
                call = json.loads(re.sub(r"\{\{(ref|expr):[^}]*\}\}", "x", text))
            except ValueError:
                continue
            sizes = (call.get("parameters") or {}).get("scalingConfig") if isinstance(call, dict) else None
            if call.get("action") == "updateNodegroupConfig" and isinstance(sizes, dict):
                return {"MinSize": sizes.get("minSize"), "DesiredSize": sizes.get("desiredSize"),
                        "MaxSize": sizes.get("maxSize")}
        return None

    def _node_group(self, cluster: Cluster, gid: str, gp: dict[str, Any], multus: list[dict[str, Any]],
                    subnets: dict[str, Subnet]) -> NodeGroup:
        t = self.t
        name = gp.get("NodegroupName") if isinstance(gp.get("NodegroupName"), str) else gid
        types = [x for x in gp.get("InstanceTypes") or ["t3.medium"] if isinstance(x, str)]  # EKS's default
        scaling = self._scaling_set_at_deploy(gid) or gp.get("ScalingConfig") or {}
        networks: list[tuple[dict[str, Any], tuple[str, int, dict[str, str]]]] = [
            (m, iface) for m in multus if f"{t.stack}/{gid}" in m["node_groups"] for iface in m["interfaces"]
        ]
        group = NodeGroup(
            id=gid, name=name, cluster=cluster.name, instance_types=types,
            min_size=_int(scaling.get("MinSize"), 1), desired_size=_int(scaling.get("DesiredSize"), 1),
            max_size=_int(scaling.get("MaxSize"), 1),
            subnets=[k for k in ("/".join(x) for x in t.targets_in(gp.get("Subnets"))) if k in subnets],
            max_enis=None, multus_enis=len(networks), vpc_cni_enis=None, vpc_cni_enis_at_max_pods=None,
            trunk_eni=cluster.pod_security_groups, max_pods=None, user_data_max_pods=self._user_data_max_pods(gp),
        )
        self._compute_max_pods(cluster, group)
        for m, (iface, device, zones) in networks:
            has_v6 = all(subnets[s].ipv6 is not None for s in zones.values() if s in subnets)
            v4 = prefix_pods(4, m["ipv4_prefixes"])
            v6 = prefix_pods(6, m["ipv6_prefixes"]) if has_v6 and m["ipv6_prefixes"] else None
            counts = [c for c in (v4 if m["ipv4_prefixes"] else None, v6, group.max_pods) if c is not None]
            group.multus.append(MultusNetwork(
                interface=iface, device_index=device, subnets=dict(zones), ipv4_prefixes=m["ipv4_prefixes"],
                ipv6_prefixes=m["ipv6_prefixes"] if has_v6 else 0, ipv4_pods=v4, ipv6_pods=v6,
                pods_per_node=min(counts) if counts else 0,
            ))
        return group

    def _compute_max_pods(self, cluster: Cluster, group: NodeGroup) -> None:
        """maxPods and ENIs from ``eksnet.max_pods``, for the ENIs the VPC CNI has once Multus takes its own."""
        ipv6 = cluster.ip_family == "IPv6"
        prefix = cluster.cni_mode != CNI_MODES[0]
        results = []
        for it in group.instance_types:
            try:
                lim = _max_pods.limits(it)
            except _max_pods.UnknownInstanceType as exc:
                self.findings.append(f"node group {group.name}: {exc}")
                return
            left = lim.max_enis - group.multus_enis
            if left < 1:
                self.findings.append(f"node group {group.name}: {it} has {lim.max_enis} ENIs, fewer than 1 + "
                                     f"{group.multus_enis} Multus ENIs")
                return
            try:
                pods = _max_pods.max_pods(lim, ipv6=ipv6, prefix_delegation=prefix,
                                          custom_networking=cluster.custom_networking,
                                          trunk_eni=cluster.pod_security_groups, max_enis=left)
            except ValueError as exc:
                self.findings.append(f"node group {group.name}: {exc}")
                return
            cni_enis = left - (1 if cluster.pod_security_groups else 0)
            results.append((pods, lim, cni_enis))
        pods, lim, cni_enis = min(results, key=lambda r: r[0])
        group.max_pods = pods
        group.max_enis = min(r[1].max_enis for r in results)
        group.vpc_cni_enis = min(r[2] for r in results)
        group.vpc_cni_enis_at_max_pods = _enis_for_pods(lim, pods, ipv6=ipv6, prefix=prefix,
                                                       custom_networking=cluster.custom_networking)
        if group.user_data_max_pods is not None and group.user_data_max_pods != pods:
            more = "more than" if group.user_data_max_pods > pods else "fewer than"
            self.findings.append(
                f"node group {group.name}: the user data gives kubelet maxPods {group.user_data_max_pods}, "
                f"{more} the {pods} the VPC CNI can address on {lim.instance_type} with "
                f"{group.multus_enis} Multus ENI(s)")


def _enis_for_pods(lim: _max_pods.InstanceLimits, pods: int, *, ipv6: bool, prefix: bool,
                   custom_networking: bool) -> int:
    """ENIs the VPC CNI attaches (primary included) to address ``pods`` pods."""
    need = max(pods - HOST_NETWORK_PODS, 0)
    if ipv6:
        return 1
    per_eni = (lim.ipv4_per_eni - 1) * (16 if prefix else 1)
    return (1 if custom_networking else 0) + max(1, math.ceil(need / per_eni))


# --- capacity -----------------------------------------------------------------------------------------------


def _subnet_supply(subnet: Subnet) -> dict[str, int]:
    reserved_v4 = sum(r.addresses for r in subnet.reservations if r.family == 4)
    supply = {"IPv4 addresses": max(subnet.ipv4_size - AWS_RESERVED_PER_SUBNET - reserved_v4, 0)} if subnet.ipv4 else {}
    v4_prefix = [r for r in subnet.reservations if r.family == 4 and r.type == "prefix"]
    if v4_prefix:
        supply["IPv4 /28 prefixes"] = sum(r.addresses // 16 for r in v4_prefix)
    v6_prefix = [r for r in subnet.reservations if r.family == 6 and r.type == "prefix"]
    if v6_prefix:
        supply["IPv6 /80 prefixes"] = sum(r.addresses // 2 ** (128 - IPV6_PREFIX_LEN) for r in v6_prefix)
    elif subnet.ipv6_prefixlen is not None:
        supply["IPv6 /80 prefixes"] = 2 ** (IPV6_PREFIX_LEN - subnet.ipv6_prefixlen)
    return supply


def _node_demand(subnet: Subnet, group: NodeGroup, cluster: Cluster) -> dict[str, int]:
    """What one node of ``group`` takes from ``subnet`` at maxPods."""
    demand: dict[str, int] = {}
    v4_prefix_reserved = any(r.family == 4 and r.type == "prefix" for r in subnet.reservations)
    if subnet.kind is SubnetKind.MULTUS:
        for net in group.multus:
            if subnet.key not in net.subnets.values():
                continue
            demand["IPv4 addresses"] = demand.get("IPv4 addresses", 0) + (1 if subnet.ipv4 else 0)
            if net.ipv4_prefixes:
                key = "IPv4 /28 prefixes" if v4_prefix_reserved else "IPv4 addresses"
                demand[key] = demand.get(key, 0) + net.ipv4_prefixes * (1 if v4_prefix_reserved else 16)
            if net.ipv6_prefixes:
                demand["IPv6 /80 prefixes"] = demand.get("IPv6 /80 prefixes", 0) + net.ipv6_prefixes
        return demand
    if group.max_pods is None or group.vpc_cni_enis_at_max_pods is None:
        return {}
    lim_per_eni = min(_max_pods.limits(it).ipv4_per_eni for it in group.instance_types)
    if cluster.ip_family == "IPv6":
        return {"IPv4 addresses": 1 if subnet.ipv4 else 0, "IPv6 /80 prefixes": 1}
    if cluster.custom_networking:
        return {"IPv4 addresses": 1}
    enis = group.vpc_cni_enis_at_max_pods
    if cluster.cni_mode == CNI_MODES[1]:
        prefixes = math.ceil(max(group.max_pods - HOST_NETWORK_PODS, 0) / 16)
        if v4_prefix_reserved:
            return {"IPv4 addresses": enis, "IPv4 /28 prefixes": prefixes}
        return {"IPv4 addresses": enis + 16 * prefixes}
    return {"IPv4 addresses": enis * lim_per_eni}


def _fill_capacity(stacks: Sequence[Stack], subnets: dict[str, Subnet]) -> None:
    for stack in stacks:
        for cluster in stack.clusters:
            for group in cluster.node_groups:
                used = list(dict.fromkeys([*group.subnets, *(k for net in group.multus for k in net.subnets.values())]))
                for key in used:
                    subnet = subnets.get(key)
                    if subnet is None:
                        continue
                    demand = {k: v for k, v in _node_demand(subnet, group, cluster).items() if v > 0}
                    supply = _subnet_supply(subnet)
                    fits = {k: supply.get(k, 0) // v for k, v in demand.items()}
                    if not fits:
                        continue
                    limit = min(fits, key=lambda k: (fits[k], k))
                    subnet.capacity.append(Capacity(node_group=group.name, cluster=cluster.name, per_node=demand,
                                                    available={k: supply.get(k, 0) for k in demand},
                                                    nodes=fits[limit], limited_by=limit))
                _check_group_fits(stack, cluster, group, [subnets[k] for k in used if k in subnets])


def _check_group_fits(stack: Stack, cluster: Cluster, group: NodeGroup, used: list[Subnet]) -> None:
    """A finding when the group at its maximum size holds more nodes than its subnets can: per zone, the
    tightest of its subnets there (node and Multus) limits it; zones add up."""
    per_zone: dict[str, int] = {}
    for subnet in used:
        for c in subnet.capacity:
            if (c.cluster, c.node_group) == (cluster.name, group.name):
                per_zone[subnet.zone] = min(c.nodes, per_zone.get(subnet.zone, c.nodes))
    total = sum(per_zone.values())
    if per_zone and group.max_size > total:
        tight = ", ".join(f"{z}: {n}" for z, n in sorted(per_zone.items()))
        stack.findings.append(f"node group {group.name}: max size {group.max_size} is more nodes than its subnets "
                              f"hold ({total}; {tight})")


def read_stacks(templates: Iterable[Template]) -> list[Stack]:
    """Every stack's network, then clusters (whose subnets may be another stack's exports), then capacity.

    A property of a shape CloudFormation would refuse (an object where a list belongs...) is a
    ``PlanInputError`` naming the exception, not a traceback: the plan reads templates, it does not check them.
    """
    try:
        return _read_stacks(list(templates))
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise PlanInputError(f"a template holds a property of an unexpected shape ({exc.__class__.__name__}: "
                             f"{exc}); check it with cfn-lint") from None


def _read_stacks(templates: list[Template]) -> list[Stack]:
    readers = [_StackReader(t) for t in templates]
    multus = [m for r in readers for m in r.read_multus()]
    multus_subnets = {key: (iface, dev, m["ipv4_prefixes"], m["ipv6_prefixes"]) for m in multus
                      for iface, dev, zones in m["interfaces"] for key in zones.values()}
    networks = [r.read_network(multus_subnets) for r in readers]
    subnets = {n.key: n for vpcs in networks for v in vpcs for n in v.subnets}
    subnet_vpc = {n.key: f"{n.stack}/{v.id}" for vpcs in networks for v in vpcs for n in v.subnets}
    stacks = [Stack(name=r.t.stack, region=r.t.region, account=r.t.account, vpcs=vpcs,
                    clusters=r.read_clusters(subnets, subnet_vpc, multus), findings=r.findings)
              for r, vpcs in zip(readers, networks, strict=True)]
    _fill_capacity(stacks, subnets)
    return stacks

