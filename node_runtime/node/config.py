"""``/etc/eksnet/multus.json``: what a node expects, as ``eksnet.multus.MultusNetworking`` renders it.

::

    {"interfaces": [{"deviceIndex": 1, "name": "multus1", "pool": "multus1", "mode": "prefix",
                     "ipv4Prefixes": 1, "ipv6Prefixes": 1}],
     "rpFilter": 2, "waitSeconds": 300,
     "ipamdConfig": "/etc/eksnet/ipamd.json", "ipamdSocket": "/run/eksnet/ipamd.sock",
     "ipamdUnit": "eksnet-ipamd.service", "ipamPools": true}

``mode`` is ``prefix`` (the pool is the ENI's delegated prefixes, read from IMDS) or ``per-ip`` (the pool
is the ``ranges`` given here, each address assigned to the ENI by the daemon; ``eniId`` is added from IMDS).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CONFIG = "/etc/eksnet/multus.json"
MODES = ("prefix", "per-ip")


class NodeConfigError(ValueError):
    """The node config names something the node cannot do; the message names the key."""


@dataclass(frozen=True)
class Interface:
    device_index: int
    name: str
    pool: str
    mode: str = "prefix"
    ipv4_prefixes: int = 0
    ipv6_prefixes: int = 0
    ranges: tuple[tuple[dict[str, str], ...], ...] = ()  # per-ip mode: range sets for the pool

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Interface:
        try:
            iface = cls(device_index=int(raw["deviceIndex"]), name=str(raw["name"]), pool=str(raw["pool"]),
                        mode=str(raw.get("mode", "prefix")), ipv4_prefixes=int(raw.get("ipv4Prefixes", 0)),
                        ipv6_prefixes=int(raw.get("ipv6Prefixes", 0)),
                        ranges=tuple(tuple(dict(r) for r in s) for s in raw.get("ranges", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise NodeConfigError(f"interfaces: each needs deviceIndex, name and pool ({exc!r})") from None
        if not 1 <= iface.device_index <= 31:
            raise NodeConfigError(f"interfaces: deviceIndex {iface.device_index} is not 1..31")
        if not re.match(r"^[a-z][a-z0-9]{0,14}$", iface.name):
            raise NodeConfigError(f"interfaces: name {iface.name!r} is not a short interface name")
        if iface.mode not in MODES:
            raise NodeConfigError(f"interfaces: mode {iface.mode!r} is not one of {MODES}")
        return iface


@dataclass(frozen=True)
class NodeConfig:
    interfaces: tuple[Interface, ...]
    rp_filter: int = 2
    wait_seconds: int = 300
    ipamd_config: str = "/etc/eksnet/ipamd.json"
    ipamd_socket: str = "/run/eksnet/ipamd.sock"
    ipamd_unit: str = "eksnet-ipamd.service"
    ipam_pools: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str = DEFAULT_CONFIG) -> NodeConfig:
        try:
            with open(rooted(path)) as f:
                raw = json.load(f)
        except (OSError, ValueError) as exc:
            raise NodeConfigError(f"cannot read {rooted(path)}: {exc}") from None
        interfaces = tuple(Interface.from_json(i) for i in raw.get("interfaces", ()))
        if not interfaces:
            raise NodeConfigError(f"{path}: interfaces is empty")
        indexes = [i.device_index for i in interfaces]
        if len(set(indexes)) != len(indexes):
            raise NodeConfigError(f"{path}: a deviceIndex is listed twice: {indexes}")
        rp = int(raw.get("rpFilter", 2))
        if rp not in (0, 1, 2):
            raise NodeConfigError(f"{path}: rpFilter must be 0, 1 or 2")
        return cls(interfaces=interfaces, rp_filter=rp, wait_seconds=int(raw.get("waitSeconds", 300)),
                   ipamd_config=raw.get("ipamdConfig", cls.ipamd_config),
                   ipamd_socket=raw.get("ipamdSocket", cls.ipamd_socket),
                   ipamd_unit=raw.get("ipamdUnit", cls.ipamd_unit), ipam_pools=bool(raw.get("ipamPools", True)))


def rooted(path: str) -> str:
    """``path`` under ``EKSNET_ROOT`` (unset on a node)."""
    root = os.environ.get("EKSNET_ROOT", "")
    return root + path if root else path
