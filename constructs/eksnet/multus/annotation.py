"""The pod annotation ``k8s.v1.cni.cncf.io/networks``: short form (``ns/name@ifname``) or, when a selection
carries addresses or a MAC, its JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eksnet import typecheck, validate
from eksnet.multus.nad import (
    NETWORKS_ANNOTATION,
    MultusConfigError,
    MultusTypeError,
    NetworkAttachmentDefinition,
    _check_fields,
    check_ifname,
    check_k8s_name,
    check_namespace,
)

# --------------------------------------------------------------------------------------------
# The pod annotation k8s.v1.cni.cncf.io/networks
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NetworkSelection:
    """One entry of ``k8s.v1.cni.cncf.io/networks``: which NAD, and optionally the pod-side interface name,
    fixed addresses (``ips``, CIDR form, needs the NAD's ``ips`` capability) and MAC (``mac`` capability).

    ``network`` is a NAD name or a ``NetworkAttachmentDefinition`` (then its namespace and capabilities
    are used and checked).
    """

    network: str | NetworkAttachmentDefinition
    namespace: str | None = None
    interface: str | None = None
    ips: tuple[str, ...] = ()
    mac: str | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        object.__setattr__(self, "ips", tuple(self.ips))
        nad = self.network if isinstance(self.network, NetworkAttachmentDefinition) else None
        check_k8s_name(self.name, "network")
        if self.namespace is not None:
            check_namespace(self.namespace)
        if nad is not None and self.namespace and nad.namespace and self.namespace != nad.namespace:
            raise MultusConfigError(f"network {nad.name} lives in {nad.namespace}, not {self.namespace}")
        if self.interface is not None:
            check_ifname(self.interface, "pod interface name")
        for ip in self.ips:
            validate.interface(ip, f"network {self.name}: ips entry", MultusConfigError)
        if self.mac is not None:
            validate.mac_address(self.mac, f"network {self.name}: mac", MultusConfigError)
        if nad is not None:
            if self.ips and "ips" not in nad.all_capabilities:
                raise MultusConfigError(
                    f"network {nad.name} does not take pod-chosen ips: give it StaticIpam() without addresses "
                    "or capabilities=('ips',)"
                )
            if self.mac and "mac" not in nad.all_capabilities:
                raise MultusConfigError(f"network {nad.name} does not take a pod MAC: add capabilities=('mac',)")

    @property
    def name(self) -> str:
        return self.network.name if isinstance(self.network, NetworkAttachmentDefinition) else self.network

    @property
    def effective_namespace(self) -> str | None:
        if self.namespace:
            return self.namespace
        return self.network.namespace if isinstance(self.network, NetworkAttachmentDefinition) else None

    @property
    def needs_json(self) -> bool:
        return bool(self.ips or self.mac)

    def short(self) -> str:
        ns = self.effective_namespace
        return (f"{ns}/" if ns else "") + self.name + (f"@{self.interface}" if self.interface else "")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.effective_namespace:
            out["namespace"] = self.effective_namespace
        if self.interface:
            out["interface"] = self.interface
        if self.ips:
            out["ips"] = list(self.ips)
        if self.mac:
            out["mac"] = self.mac
        return out


def network_selection_annotation(
    *networks: str | NetworkAttachmentDefinition | NetworkSelection, force_json: bool = False
) -> dict[str, str]:
    """The pod annotation selecting ``networks``, as ``{"k8s.v1.cni.cncf.io/networks": value}``.

    Short form (``a, ns/b@net2``) unless a selection carries ``ips`` or ``mac`` (or ``force_json``):
    then the JSON list form the multi-net spec defines. Two selections may not give the pod the same
    interface name.
    """
    for i, network in enumerate(networks):
        typecheck.check("network_selection_annotation", f"networks[{i}]", network,
                        str | NetworkAttachmentDefinition | NetworkSelection, MultusTypeError)
    typecheck.check("network_selection_annotation", "force_json", force_json, bool, MultusTypeError)
    if not networks:
        raise MultusConfigError("select at least one network")
    selections = [n if isinstance(n, NetworkSelection) else NetworkSelection(n) for n in networks]
    ifnames = [s.interface for s in selections if s.interface]
    dup = {i for i in ifnames if ifnames.count(i) > 1}
    if dup:
        raise MultusConfigError(f"pod interface name(s) {sorted(dup)} selected twice: give each network its own")
    if force_json or any(s.needs_json for s in selections):
        value = json.dumps([s.to_json() for s in selections], separators=(",", ":"))
    else:
        value = ",".join(s.short() for s in selections)
    return {NETWORKS_ANNOTATION: value}


