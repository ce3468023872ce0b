"""``eksnet-ipam``: the IPAM plugin. It asks the daemon's IPAM service for one address per range
set and renders the CNI result; it runs inside the daemon (reached through the thin executable),
so it never imports pyroute2 and never opens the lease store itself.

Without the daemon (``host.ipam is None``): ADD answers code 11 (try again later), STATUS code 50,
and DEL still succeeds, because a runtime may never retry a failed DEL; reconciliation releases
the lease once the pod's namespace is gone."""

from __future__ import annotations

import ipaddress
import sqlite3
from typing import Any

from ..cni.skeleton import Host, Plugin, Request
from ..cni.types import (
    CHECK_FAILED,
    INVALID_CONFIG,
    IO_FAILURE,
    NOT_AVAILABLE,
    POOL_EXHAUSTED,
    TRY_AGAIN_LATER,
    UNKNOWN_CONTAINER,
    CNIError,
)
from ..ipam.allocator import ConfigError, Exhausted


def ipam_section(req: Request) -> dict[str, Any]:
    ipam = req.config.get("ipam")
    if not isinstance(ipam, dict):
        raise CNIError(INVALID_CONFIG, "missing ipam section", "the network config needs an ipam object")
    return ipam


def parse_routes(ipam: dict[str, Any]) -> list[dict[str, str]]:
    routes = ipam.get("routes", [])
    if not isinstance(routes, list):
        raise CNIError(INVALID_CONFIG, "ipam.routes must be a list")
    out = []
    for route in routes:
        if not isinstance(route, dict) or not isinstance(route.get("dst"), str):
            raise CNIError(INVALID_CONFIG, "each ipam.routes[] needs a dst CIDR")
        try:
            entry = {"dst": str(ipaddress.ip_network(route["dst"], strict=False))}
            if route.get("gw") is not None:
                if not isinstance(route["gw"], str):
                    raise ValueError("gw must be a string")
                entry["gw"] = str(ipaddress.ip_address(route["gw"]))
        except ValueError as exc:
            raise CNIError(INVALID_CONFIG, "invalid ipam.routes[] entry", str(exc)) from None
        out.append(entry)
    return out


def valid_attachments(config: dict[str, Any]) -> set[tuple[str, str]]:
    """GC's list of attachments to keep (CNI 1.1 ``cni.dev/valid-attachments``; older ``cni.dev/attachments``)."""
    raw = config.get("cni.dev/valid-attachments", config.get("cni.dev/attachments"))
    if raw is None:
        raise CNIError(INVALID_CONFIG, "GC needs cni.dev/valid-attachments")
    if not isinstance(raw, list):
        raise CNIError(INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    valid = set()
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("containerID"), str) \
                or not isinstance(item.get("ifname"), str):
            raise CNIError(INVALID_CONFIG, "each valid attachment needs containerID and ifname strings")
        valid.add((item["containerID"], item["ifname"]))
    return valid


class EksnetIpam(Plugin):
    name = "eksnet-ipam"

    @staticmethod
    def _service(host: Host):
        if host.ipam is None:
            raise CNIError(TRY_AGAIN_LATER, "eksnet-ipamd is not reachable", "start eksnet-ipamd.service")
        return host.ipam

    async def add(self, req: Request, host: Host) -> dict[str, Any]:
        ipam = ipam_section(req)
        routes = parse_routes(ipam)
        service = self._service(host)
        try:
            leases = service.add(req.network, req.container_id, req.ifname, req.netns, ipam)
            if service.perip is not None:  # per-IP pools: the address is on the Multus ENI before ADD answers
                leases = await service.perip.claim(service, req.network, req.container_id, req.ifname,
                                                   req.netns, ipam, leases)
        except ConfigError as exc:
            raise CNIError(INVALID_CONFIG, "invalid ipam ranges", str(exc)) from None
        except Exhausted as exc:
            if exc.cooling:
                raise CNIError(TRY_AGAIN_LATER, "no address free until a cooldown ends",
                               f"{exc.cooling} released addresses cooling down, next in {exc.ready_in:.1f}s") from None
            raise CNIError(POOL_EXHAUSTED, "no address left in the range set", exc.pool) from None
        except (sqlite3.Error, OSError) as exc:
            raise CNIError(IO_FAILURE, "cannot record the lease", str(exc)) from None
        ips = []
        for lease in leases:
            ip = {"address": lease.interface()}
            if lease.gateway():
                ip["gateway"] = lease.gateway()
            ips.append(ip)
        result: dict[str, Any] = {"ips": ips, "routes": routes}
        if isinstance(ipam.get("dns"), dict):
            result["dns"] = ipam["dns"]
        return result

    async def delete(self, req: Request, host: Host) -> None:
        if host.ipam is None:
            return  # DEL must succeed: reconciliation or GC releases the lease later
        try:
            host.ipam.release(req.network, req.container_id, req.ifname)
        except (sqlite3.Error, OSError) as exc:
            raise CNIError(IO_FAILURE, "cannot record the release", str(exc)) from None

    async def check(self, req: Request, host: Host) -> None:
        leases = self._service(host).lookup(req.network, req.container_id, req.ifname)
        if leases is None:
            raise CNIError(UNKNOWN_CONTAINER, "no lease for this attachment",
                           f"{req.network}/{req.container_id}/{req.ifname}")
        prev = req.prev_result()
        if prev is not None:
            ours = {lease.interface() for lease in leases}
            listed = {ip["address"] for ip in prev.get("ips", [])}
            if not ours <= listed:
                raise CNIError(CHECK_FAILED, "prevResult does not list the leased addresses",
                               f"leased {sorted(ours)}, prevResult {sorted(listed)}")

    async def gc(self, req: Request, host: Host) -> None:
        valid = valid_attachments(req.config)
        if host.ipam is None:
            raise CNIError(TRY_AGAIN_LATER, "eksnet-ipamd is not reachable")
        try:
            host.ipam.gc(req.network, valid)
        except (sqlite3.Error, OSError) as exc:
            raise CNIError(IO_FAILURE, "cannot record the release", str(exc)) from None

    async def status(self, req: Request, host: Host) -> None:
        if host.ipam is None:
            raise CNIError(NOT_AVAILABLE, "eksnet-ipamd is not reachable")
        ipam = req.config.get("ipam")
        if isinstance(ipam, dict):
            try:
                pools = host.ipam.resolve(ipam, req.config.get("name", ""))
            except ConfigError as exc:
                raise CNIError(INVALID_CONFIG, "invalid ipam ranges", str(exc)) from None
            if any(p.free() == 0 and not p.cooling for p in pools):
                raise CNIError(NOT_AVAILABLE, "a range set has no address left")
