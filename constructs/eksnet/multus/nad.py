"""NetworkAttachmentDefinitions: typed builders for the CNI configuration Multus hands to a plugin (MISSION.md section 4).

Three pieces, each usable on its own:

* ``NetworkAttachmentDefinition``: a typed builder for the ``k8s.cni.cncf.io/v1`` object whose
  ``spec.config`` is the JSON CNI configuration Multus hands to the secondary plugin. Interfaces:
  ipvlan (l2, l3, l3s), macvlan, host-device; IPAM: the node runtime's ``eksnet-ipam``, host-local,
  static. Everything is checked when the builder is made, so a bad address or an impossible
  combination fails ``cdk synth`` with a message that says what to change, not a pod stuck in
  ``ContainerCreating``.
* ``network_selection_annotation``: the pod annotation ``k8s.v1.cni.cncf.io/networks`` in its short
  form (``ns/name@ifname``) or, when a selection carries addresses or a MAC, its JSON form.
* ``MultusInstall``: the Multus thick-plugin DaemonSet (the AWS build, pinned) with the VPC CNI's
  ``10-aws.conflist`` as the default delegate, applied with the cluster's ``KubernetesManifest``.

The pure builders import nothing from the construct: ``render()`` / ``to_manifest()`` return plain
dicts that tests check against the Kubernetes schemas and the NAD CRD without synthesizing.
"""

from __future__ import annotations

import enum
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aws_cdk as cdk

from eksnet import typecheck, validate

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
NAD_API_VERSION = "k8s.cni.cncf.io/v1"
NAD_KIND = "NetworkAttachmentDefinition"

#: CNI type names of the node runtime (``node_runtime/``), installed into /opt/cni/bin by the node bootstrap.
EKSNET_IPAM_TYPE = "eksnet-ipam"
EKSNET_IPVLAN_TYPE = "eksnet-ipvlan"
EKSNET_MACVLAN_TYPE = "eksnet-macvlan"


class MultusConfigError(ValueError):
    """A NetworkAttachmentDefinition, IPAM or annotation that no CNI plugin would accept."""


class MultusTypeError(MultusConfigError, TypeError):
    """A Multus prop of the wrong type (``eksnet.typecheck``): a ``TypeError`` naming the prop, what was given and
    what is accepted, and a ``MultusConfigError`` too, so code that catches either keeps working."""


def _check_fields(instance: Any) -> None:
    typecheck.check_fields(instance, MultusTypeError)


# --------------------------------------------------------------------------------------------
# Small validators shared by the builders
# --------------------------------------------------------------------------------------------

def check_k8s_name(value: str, what: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain, ``eksnet.validate.dns1123_subdomain``)."""
    return validate.dns1123_subdomain(value, what, MultusConfigError)


def check_namespace(value: str) -> str:
    """A namespace name (DNS-1123 label, ``eksnet.validate.dns1123_label``)."""
    return validate.dns1123_label(value, "namespace", MultusConfigError)


def check_ifname(value: str, what: str = "interface name") -> str:
    """A Linux interface name as the kernel's ``dev_valid_name`` accepts it: 1-15 bytes, no '/', ':' or space."""
    if (not isinstance(value, str) or not value or len(value.encode()) > 15 or value in (".", "..")
            or any(c in value for c in "/:") or any(c.isspace() for c in value)):
        raise MultusConfigError(
            f"{what} {value!r} is not a valid Linux interface name: 1 to 15 characters, no '/', ':' or whitespace"
        )
    return value


# --------------------------------------------------------------------------------------------
# CNI versions, routes and IPAM
# --------------------------------------------------------------------------------------------

class CniVersion(enum.Enum):
    """The CNI spec versions a NAD may declare. The reference plugins on EKS nodes speak all of them;
    0.3.0 is here because the seed's ``ipvlan-private-a`` uses it."""

    V0_3_0 = "0.3.0"
    V0_3_1 = "0.3.1"
    V0_4_0 = "0.4.0"
    V1_0_0 = "1.0.0"
    #: CNI 1.1.0 (GC and STATUS verbs): spoken by the node runtime's plugins (``eksnet-*``) and by the
    #: reference plugins from v1.5 (EKS's current AMIs); older reference plugins refuse it.
    V1_1_0 = "1.1.0"


@dataclass(frozen=True)
class Route:
    """A route the IPAM returns for the pod: ``dst`` in CIDR form, ``gw`` optional (same family).

    ``dst`` may be a CloudFormation token (e.g. a subnet's IPv6 /64, known only at deploy time): then give its
    ``family`` (4 or 6); it is checked where it can be, and resolved when the NAD is applied.
    """

    dst: str
    gw: str | None = None
    family: int | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.family not in (None, 4, 6):
            raise MultusConfigError(f"route family {self.family!r}: use 4 or 6")
        if cdk.Token.is_unresolved(self.dst):
            if self.family is None:
                raise MultusConfigError("a route whose dst is a deploy-time token needs family=4 or family=6")
            version = self.family
        else:
            version = validate.network(self.dst, "route destination", error=MultusConfigError).version
            if self.family is not None and self.family != version:
                raise MultusConfigError(f"route {self.dst} is IPv{version}, not IPv{self.family}")
            object.__setattr__(self, "family", version)
        if self.gw is not None and validate.address(self.gw, "route gateway", MultusConfigError).version != version:
            raise MultusConfigError(f"route {self.dst}: gateway {self.gw} is not of the same IP family")

    def render(self) -> dict[str, str]:
        return {"dst": self.dst} | ({"gw": self.gw} if self.gw else {})


def _routes(routes: Iterable[Route]) -> list[dict[str, str]]:
    return [r.render() for r in routes]


@dataclass(frozen=True)
class IpRange:
    """One host-local range: addresses from ``range_start`` to ``range_end`` of ``subnet``.

    Defaults follow host-local: the whole subnet except the network, gateway and broadcast addresses.
    """

    subnet: str
    range_start: str | None = None
    range_end: str | None = None
    gateway: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        net = validate.network(self.subnet, "host-local subnet", error=MultusConfigError)
        bounds = {}
        for key, value in (("rangeStart", self.range_start), ("rangeEnd", self.range_end), ("gateway", self.gateway)):
            if value is None:
                continue
            addr = validate.address(value, f"host-local {key}", MultusConfigError)
            if addr not in net:
                raise MultusConfigError(f"host-local {key} {value} is outside subnet {self.subnet}")
            bounds[key] = addr
        if "rangeStart" in bounds and "rangeEnd" in bounds and bounds["rangeStart"] > bounds["rangeEnd"]:
            raise MultusConfigError(f"host-local rangeStart {self.range_start} is after rangeEnd {self.range_end}")
        if net.version == 4 and net.prefixlen > 30 and self.range_start is None:
            raise MultusConfigError(f"host-local subnet {self.subnet} has no usable host address: use /30 or larger")

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.subnet).version

    def render(self) -> dict[str, str]:
        out = {"subnet": self.subnet}
        for key, value in (("rangeStart", self.range_start), ("rangeEnd", self.range_end), ("gateway", self.gateway)):
            if value is not None:
                out[key] = value
        return out


class Ipam:
    """Base of the IPAM choices: ``render()`` gives the ``ipam`` object of the CNI config."""

    #: CNI capabilities (runtimeConfig keys) this IPAM needs the NAD to declare, e.g. ``ips``.
    capabilities: tuple[str, ...] = ()

    def render(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def families(self) -> set[int]:
        return set()


@dataclass(frozen=True)
class HostLocalIpam(Ipam):
    """The reference ``host-local`` IPAM: addresses from node-local ranges (the seed's choice).

    One range renders in host-local's original flat form (``subnet``, ``rangeStart``...: what the seed
    writes); several render as ``ranges`` with one range set each (e.g. one IPv4 and one IPv6 range:
    dual-stack pods). ``data_dir`` is host-local's lease store (default ``/var/lib/cni/networks``).
    Note that host-local is node-local: two nodes hand out the same addresses unless each node's
    ranges differ. The node runtime's ``EksnetIpam`` gives cluster-unique, VPC-routable addresses.
    """

    ranges: tuple[IpRange, ...]
    routes: tuple[Route, ...] = ()
    data_dir: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        object.__setattr__(self, "ranges", tuple(self.ranges))
        object.__setattr__(self, "routes", tuple(self.routes))
        if not self.ranges:
            raise MultusConfigError("host-local IPAM needs at least one IpRange(subnet=...)")
        clash = validate.overlap(ipaddress.ip_network(r.subnet) for r in self.ranges)
        if clash:
            raise MultusConfigError(f"host-local ranges {clash[0]} and {clash[1]} overlap")

    def families(self) -> set[int]:
        return {r.version for r in self.ranges}

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "host-local"}
        if len(self.ranges) == 1:
            out |= self.ranges[0].render()
        else:
            out["ranges"] = [[r.render()] for r in self.ranges]
        if self.routes:
            out["routes"] = _routes(self.routes)
        if self.data_dir:
            out["dataDir"] = self.data_dir
        return out


@dataclass(frozen=True)
class StaticAddress:
    """A fixed address for the ``static`` IPAM: ``address`` with prefix length, optional gateway."""

    address: str
    gateway: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        iface = validate.interface(self.address, "static address", MultusConfigError)
        if self.gateway is not None:
            gw = validate.address(self.gateway, "static gateway", MultusConfigError)
            if gw.version != iface.version:
                raise MultusConfigError(f"static gateway {self.gateway} is not of the family of {self.address}")

    def render(self) -> dict[str, str]:
        return {"address": self.address} | ({"gateway": self.gateway} if self.gateway else {})


@dataclass(frozen=True)
class StaticIpam(Ipam):
    """The reference ``static`` IPAM. With no ``addresses``, each pod names its own in the annotation's
    ``ips`` (the NAD then declares the ``ips`` capability): the way to pin a pod to an address."""

    addresses: tuple[StaticAddress, ...] = ()
    routes: tuple[Route, ...] = ()

    def __post_init__(self) -> None:
        _check_fields(self)
        object.__setattr__(self, "addresses", tuple(self.addresses))
        object.__setattr__(self, "routes", tuple(self.routes))
        seen = set()
        for a in self.addresses:
            ip = ipaddress.ip_interface(a.address).ip
            if ip in seen:
                raise MultusConfigError(f"static IPAM lists address {ip} twice")
            seen.add(ip)

    @property
    def capabilities(self) -> tuple[str, ...]:  # type: ignore[override]
        return () if self.addresses else ("ips",)

    def families(self) -> set[int]:
        return {ipaddress.ip_interface(a.address).version for a in self.addresses}

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "static"}
        if self.addresses:
            out["addresses"] = [a.render() for a in self.addresses]
        if self.routes:
            out["routes"] = _routes(self.routes)
        return out


@dataclass(frozen=True)
class EksnetIpam(Ipam):
    """The node runtime's IPAM (CNI type ``eksnet-ipam``, see ``node_runtime/README.md``): addresses served by
    the ``eksnet-ipamd`` daemon the node bootstrap starts, unique on the node and, from the Multus ENI's
    delegated prefixes, routable in the VPC.

    Give exactly one of ``pool`` (a pool named in the node's daemon config: the node bootstrap writes one
    pool per Multus ENI, ``multus<device index>``, from that ENI's delegated prefixes, so one NAD serves
    every node) or ``ranges`` (range sets: one address is allocated from each set; an ``IpRange`` is a
    set of one range, a tuple of ``IpRange`` a set tried in order).
    """

    pool: str | None = None
    ranges: tuple[IpRange | tuple[IpRange, ...], ...] = ()
    routes: tuple[Route, ...] = ()

    def __post_init__(self) -> None:
        _check_fields(self)
        sets = tuple(tuple(r) if isinstance(r, tuple | list) else (r,) for r in self.ranges)
        object.__setattr__(self, "ranges", sets)
        object.__setattr__(self, "routes", tuple(self.routes))
        if (self.pool is None) == (not sets):
            raise MultusConfigError("eksnet-ipam needs exactly one of pool='multus1' or ranges=(IpRange(...),)")
        if self.pool is not None and not validate.is_ipam_pool_name(self.pool):
            raise MultusConfigError(f"eksnet-ipam pool {self.pool!r}: letters, digits, '_', '.', '-' (at most 63)")
        for range_set in sets:
            if not range_set or not all(isinstance(r, IpRange) for r in range_set):
                raise MultusConfigError("eksnet-ipam ranges: each range set is an IpRange or a tuple of IpRange")
            if len({r.version for r in range_set}) > 1:
                raise MultusConfigError("eksnet-ipam: a range set mixes IPv4 and IPv6; give each family its own set")

    def families(self) -> set[int]:
        return {r.version for range_set in self.ranges for r in range_set}

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": EKSNET_IPAM_TYPE}
        if self.pool is not None:
            out["pool"] = self.pool
        else:
            out["ranges"] = [[r.render() for r in range_set] for range_set in self.ranges]
        if self.routes:
            out["routes"] = _routes(self.routes)
        return out


# --------------------------------------------------------------------------------------------
# Interface plugins
# --------------------------------------------------------------------------------------------

class IpvlanMode(enum.Enum):
    """ipvlan modes: L2 switches by MAC on the master, L3 routes (no broadcast, no ARP), L3S adds netfilter."""

    L2 = "l2"
    L3 = "l3"
    L3S = "l3s"


class MacvlanMode(enum.Enum):
    BRIDGE = "bridge"
    PRIVATE = "private"
    VEPA = "vepa"
    PASSTHRU = "passthru"


def _check_mtu(mtu: int | None) -> None:
    if mtu is not None and not (68 <= mtu <= 9001):
        raise MultusConfigError(f"mtu {mtu} is out of range: IPv4 needs at least 68 and EC2 allows at most 9001")


class Interface:
    """Base of the interface choices: ``render()`` gives the plugin keys of the CNI config (without IPAM)."""

    type: str
    ipam_required: bool = True

    def render(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class _LinkOnMaster(Interface):
    """What ipvlan and macvlan share: a link on ``master`` whose CNI type is the reference plugin or
    the node runtime's twin with the same keys. Subclasses declare the fields and these class values."""

    master: str
    mode: enum.Enum
    mtu: int | None
    plugin: str
    _kind: ClassVar[str]
    _eksnet_type: ClassVar[str]

    def __post_init__(self) -> None:
        _check_fields(self)
        check_ifname(self.master, f"{self._kind} master")
        _check_mtu(self.mtu)
        if self.plugin not in (self._kind, self._eksnet_type):
            raise MultusConfigError(f"{self._kind} plugin {self.plugin!r}: use {self._kind!r} or {self._eksnet_type!r}")

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.plugin

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.plugin, "master": self.master, "mode": self.mode.value}
        if self.mtu is not None:
            out["mtu"] = self.mtu
        return out


@dataclass(frozen=True)
class Ipvlan(_LinkOnMaster):
    """An ipvlan link on ``master`` (on EKS: a Multus ENI, ``multus<device index>`` after the node bootstrap).

    ``plugin`` is the CNI type: the reference ``ipvlan`` or the node runtime's ``eksnet-ipvlan``
    (same keys, no IPv6 DAD wait).
    """

    master: str
    mode: IpvlanMode = IpvlanMode.L2
    mtu: int | None = None
    plugin: str = "ipvlan"
    _kind: ClassVar[str] = "ipvlan"
    _eksnet_type: ClassVar[str] = EKSNET_IPVLAN_TYPE


@dataclass(frozen=True)
class Macvlan(_LinkOnMaster):
    """A macvlan link on ``master``. On EC2 a macvlan's own MAC is not the ENI's: the VPC drops its
    frames, so use it inside a VPC only where that is intended (e.g. PASSTHRU, or tests).
    ``plugin``: the reference ``macvlan`` (IPAM optional) or the node runtime's ``eksnet-macvlan``."""

    master: str
    mode: MacvlanMode = MacvlanMode.BRIDGE
    mtu: int | None = None
    plugin: str = "macvlan"
    _kind: ClassVar[str] = "macvlan"
    _eksnet_type: ClassVar[str] = EKSNET_MACVLAN_TYPE

    @property
    def ipam_required(self) -> bool:  # type: ignore[override]
        return self.plugin != "macvlan"


@dataclass(frozen=True)
class HostDevice(Interface):
    """Moves a whole host device into the pod (e.g. a Multus ENI for DPDK-style use): name it by exactly
    one of ``device`` (interface name), ``hwaddr`` (MAC), ``kernelpath`` or ``pci_bus_id``."""

    device: str | None = None
    hwaddr: str | None = None
    kernelpath: str | None = None
    pci_bus_id: str | None = None

    type = "host-device"
    ipam_required = False

    def __post_init__(self) -> None:
        _check_fields(self)
        given = [k for k in ("device", "hwaddr", "kernelpath", "pci_bus_id") if getattr(self, k) is not None]
        if len(given) != 1:
            raise MultusConfigError(
                f"host-device needs exactly one of device, hwaddr, kernelpath, pci_bus_id; got {given or 'none'}"
            )
        if self.device is not None:
            check_ifname(self.device, "host-device device")
        if self.hwaddr is not None:
            validate.mac_address(self.hwaddr, "host-device hwaddr", MultusConfigError)
        if self.kernelpath is not None and not self.kernelpath.startswith("/sys/"):
            raise MultusConfigError(f"host-device kernelpath {self.kernelpath!r} must be a /sys/... device path")
        if self.pci_bus_id is not None:
            validate.pci_address(self.pci_bus_id, "host-device pci_bus_id", MultusConfigError)

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "host-device"}
        for key, name in (("device", "device"), ("hwaddr", "hwaddr"), ("kernelpath", "kernelpath"),
                          ("pci_bus_id", "pciBusID")):
            if getattr(self, key) is not None:
                out[name] = getattr(self, key)
        return out


# --------------------------------------------------------------------------------------------
# NetworkAttachmentDefinition
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NetworkAttachmentDefinition:
    """A ``k8s.cni.cncf.io/v1`` NetworkAttachmentDefinition, checked when made.

    ``network_name`` is the CNI ``name`` inside the config; by default it is left out and Multus
    uses the object's name (as in the seed). ``capabilities`` adds CNI capabilities (e.g. ``mac``)
    to those the IPAM needs (``ips`` for a static IPAM without addresses).
    """

    name: str
    interface: Interface
    ipam: Ipam | None = None
    namespace: str | None = None
    cni_version: CniVersion = CniVersion.V0_4_0
    network_name: str | None = None
    capabilities: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] | Mapping[str, str] = field(default=())

    def __post_init__(self) -> None:
        _check_fields(self)
        check_k8s_name(self.name, "NetworkAttachmentDefinition name")
        if self.namespace is not None:
            check_namespace(self.namespace)
        if not isinstance(self.interface, Interface):
            raise MultusConfigError("interface must be Ipvlan(...), Macvlan(...) or HostDevice(...)")
        if self.ipam is not None and not isinstance(self.ipam, Ipam):
            raise MultusConfigError("ipam must be EksnetIpam(...), HostLocalIpam(...) or StaticIpam(...)")
        if self.ipam is None and self.interface.ipam_required:
            raise MultusConfigError(
                f"{self.interface.type} needs an IPAM: pass ipam=EksnetIpam(...), HostLocalIpam(...) or StaticIpam(...)"
            )
        object.__setattr__(self, "capabilities", tuple(self.capabilities))
        for cap in self.capabilities:
            if cap not in ("ips", "mac", "infinibandGUID", "deviceID", "portMappings", "bandwidth"):
                raise MultusConfigError(f"unknown CNI capability {cap!r}")
        if "mac" in self.capabilities and isinstance(self.interface, Ipvlan):
            raise MultusConfigError("ipvlan links share the master's MAC: the 'mac' capability cannot apply")
        routes = getattr(self.ipam, "routes", ())
        if 6 in (self.ipam.families() if self.ipam else set()) and routes and not any(r.family == 6 for r in routes):
            raise MultusConfigError(
                f"NetworkAttachmentDefinition {self.name}: the IPAM hands out IPv6 addresses but its routes are all "
                "IPv4; add an IPv6 Route (e.g. the Multus subnets' IPv6 CIDRs) so IPv6 traffic leaves by this interface"
            )
        if self.network_name is not None:
            check_k8s_name(self.network_name, "CNI network name")
        object.__setattr__(self, "labels", tuple(sorted(validate.labels(self.labels, error=MultusConfigError).items())))

    @property
    def all_capabilities(self) -> tuple[str, ...]:
        caps = list(self.capabilities)
        for cap in self.ipam.capabilities if self.ipam else ():
            if cap not in caps:
                caps.append(cap)
        return tuple(caps)

    def cni_config(self) -> dict[str, Any]:
        """The CNI network configuration that goes into ``spec.config`` (as a dict)."""
        out: dict[str, Any] = {"cniVersion": self.cni_version.value}
        if self.network_name:
            out["name"] = self.network_name
        out |= self.interface.render()
        if self.all_capabilities:
            out["capabilities"] = {cap: True for cap in self.all_capabilities}
        if self.ipam is not None:
            out["ipam"] = self.ipam.render()
        return out

    def to_manifest(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name}
        if self.namespace:
            metadata["namespace"] = self.namespace
        if self.labels:
            metadata["labels"] = dict(self.labels)
        return {
            "apiVersion": NAD_API_VERSION,
            "kind": NAD_KIND,
            "metadata": metadata,
            "spec": {"config": json.dumps(self.cni_config(), separators=(",", ":"))},
        }


