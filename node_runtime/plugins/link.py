"""``eksnet-ipvlan`` and ``eksnet-macvlan``: the interface (link) plugin. One plugin, two link kinds:
ipvlan on the Multus ENI in production; macvlan where the kernel lacks ipvlan (and in the tests).

ADD runs the IPAM plugin first (in-process when it is ``eksnet-ipam``, else the executable found
in ``CNI_PATH``), then creates the link directly in the pod namespace with its addresses and
routes. If anything fails after the IPAM step, the addresses are released (IPAM DEL) before the
error is returned, except when the interface already exists and the addresses were not new
(a repeated ADD): that interface owns them.

In the daemon, DEL answers once the addresses are released and deletes the link right after:
the kernel's link deletion waits for RCU grace periods (~18-20 ms) that the runtime need not wait
for. An ADD of the same name in the same namespace first waits for that deletion to finish."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from .. import netlink
from ..cni.keys import fold
from ..cni.skeleton import Host, Request
from ..cni.skeleton import Plugin as _Plugin
from ..cni.types import (
    CHECK_FAILED,
    DELEGATE_FAILURE,
    INTERFACE_EXISTS,
    INVALID_CONFIG,
    INVALID_ENVIRONMENT,
    NETLINK_FAILURE,
    CNIError,
    normalize_result,
)

LINK_KEYS = ("master", "mode", "mtu", "ipam")
SKELETON_KEYS = ("cniVersion", "name", "type", "prevResult", "runtimeConfig", "args", "capabilities",
                 "cni.dev/valid-attachments", "cni.dev/attachments", "disableCheck", "disableGC", "dns")
_MODES = {"ipvlan": tuple(netlink.IPVLAN_MODES), "macvlan": netlink.MACVLAN_MODES}
_DEFAULT_MODE = {"ipvlan": "l2", "macvlan": "bridge"}


class LinkPlugin(_Plugin):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"eksnet-{kind}"

    # -- config --------------------------------------------------------------------------------------
    def _spec(self, req: Request, ips: list[dict[str, Any]] = (), routes: list[dict[str, Any]] = ()) -> netlink.LinkSpec:
        cfg = fold(req.config, LINK_KEYS, self.name, passthrough=SKELETON_KEYS)
        master = cfg.get("master")
        if not isinstance(master, str) or not master or len(master) > 15:
            raise CNIError(INVALID_CONFIG, "master is required", "the host interface the link sits on, e.g. eth1")
        mode = cfg.get("mode", _DEFAULT_MODE[self.kind])
        if mode not in _MODES[self.kind]:
            raise CNIError(INVALID_CONFIG, f"invalid {self.kind} mode {mode!r}", f"one of {list(_MODES[self.kind])}")
        mtu = cfg.get("mtu")
        if mtu is not None and (not isinstance(mtu, int) or isinstance(mtu, bool) or not 68 <= mtu <= 65535):
            raise CNIError(INVALID_CONFIG, "mtu must be an integer from 68 to 65535")
        gateways: dict[int, str] = {}
        route_list = []
        try:
            for ip in ips:
                if ip.get("gateway"):
                    gateways.setdefault(ipaddress.ip_interface(ip["address"]).version,
                                        str(ipaddress.ip_address(ip["gateway"])))
            for route in routes:
                net = ipaddress.ip_network(route["dst"], strict=False)
                gw = str(ipaddress.ip_address(route["gw"])) if route.get("gw") else gateways.get(net.version)
                route_list.append((str(net), gw))
        except (KeyError, TypeError, ValueError) as exc:
            raise CNIError(DELEGATE_FAILURE, "the IPAM result has an invalid gateway or route", str(exc)) from None
        return netlink.LinkSpec(kind=self.kind, master=master, mode=mode, netns=req.netns, ifname=req.ifname,
                                mtu=mtu, addresses=tuple(ip["address"] for ip in ips), routes=tuple(route_list))

    @staticmethod
    def _ipam_type(req: Request) -> str:
        ipam = next((v for k, v in req.config.items() if isinstance(k, str) and k.lower() == "ipam"), None)
        ipam = fold(ipam, ("type",), "ipam", passthrough=("ranges", "routes", "dns", "pool", "subnet", "rangeStart",
                                                          "rangeEnd", "gateway", "dataDir", "resolvConf")) \
            if isinstance(ipam, dict) else ipam
        if not isinstance(ipam, dict) or not isinstance(ipam.get("type"), str) or not ipam["type"]:
            raise CNIError(INVALID_CONFIG, "ipam.type is required")
        return ipam["type"]

    async def _ipam(self, req: Request, host: Host, command: str) -> dict[str, Any] | None:
        kind = self._ipam_type(req)
        local = host.plugin(kind)
        sub = copy.copy(req)
        sub.command = command
        if local is not None:
            if command == "ADD":
                return await local.add(sub, host)
            if command == "DEL":
                await local.delete(sub, host)
            elif command == "CHECK":
                await local.check(sub, host)
            elif command == "GC":
                await local.gc(sub, host)
            elif command == "STATUS":
                await local.status(sub, host)
            return None
        return await host.delegate(kind, req, command, req.stdin)

    # -- commands ------------------------------------------------------------------------------------
    async def add(self, req: Request, host: Host) -> dict[str, Any]:
        self._spec(req)  # refuse a bad config before allocating anything
        # Whether this ADD's addresses are new: an idempotent re-ADD must not release the addresses
        # an existing interface holds. Known for our IPAM; for a delegate, assume they are not new.
        held_before = (self._ipam_type(req) != "eksnet-ipam" or host.ipam is None
                       or host.ipam.lookup(req.network, req.container_id, req.ifname) is not None)
        ipam_result = normalize_result(await self._ipam(req, host, "ADD") or {})
        ips = ipam_result.get("ips", [])
        if not ips:
            await self._release(req, host)
            raise CNIError(DELEGATE_FAILURE, "the IPAM plugin returned no address")
        try:
            spec = self._spec(req, ips, ipam_result.get("routes", []))
            await host.settle(("link", req.netns, req.ifname))  # a DEL of the same name may still run
            made = await host.blocking(netlink.create, spec)
        except netlink.LinkExists as exc:
            if not held_before:
                await self._release(req, host)
            raise CNIError(INTERFACE_EXISTS, "interface already exists", str(exc)) from None
        except BaseException as exc:
            await self._release(req, host)
            if isinstance(exc, CNIError):
                raise
            if isinstance(exc, netlink.NetnsMissing):
                raise CNIError(INVALID_ENVIRONMENT, "invalid CNI_NETNS", str(exc)) from None
            if isinstance(exc, netlink.MasterMissing):
                raise CNIError(INVALID_CONFIG, "master interface not found", str(exc)) from None
            if isinstance(exc, (netlink.LinkError, OSError, ValueError)) or type(exc).__name__ == "NetlinkError":
                raise CNIError(NETLINK_FAILURE, f"cannot set up {req.ifname}", str(exc)) from None
            raise
        result = dict(ipam_result)
        result["interfaces"] = [{"name": req.ifname, "mac": made["mac"], "sandbox": req.netns}]
        result["ips"] = [dict(ip, interface=0) for ip in ips]
        return result

    async def _release(self, req: Request, host: Host) -> None:
        try:
            await self._ipam(req, host, "DEL")
        except Exception:  # noqa: BLE001 - the ADD error is what the runtime must see
            pass

    async def delete(self, req: Request, host: Host) -> None:
        """Release the addresses, then remove the link. Succeeds with the namespace gone, the link
        gone, prevResult missing or the IPAM unreachable: a runtime may never retry a failed DEL."""
        try:
            await self._ipam(req, host, "DEL")
        except Exception:  # noqa: BLE001 - DEL must succeed; GC and reconciliation catch up later
            pass
        try:
            await host.later(("link", req.netns, req.ifname), netlink.delete, req.netns, req.ifname)
        except (netlink.LinkError, OSError) as exc:
            raise CNIError(NETLINK_FAILURE, f"cannot delete {req.ifname}", str(exc)) from None

    async def check(self, req: Request, host: Host) -> None:
        prev = req.prev_result()
        if prev is None:
            raise CNIError(INVALID_CONFIG, "CHECK needs prevResult")
        await self._ipam(req, host, "CHECK")
        mine = [ip["address"] for ip in prev.get("ips", [])]
        routes = self._spec(req, prev.get("ips", []), prev.get("routes", [])).routes
        mac = next((i.get("mac") for i in prev.get("interfaces", [])
                    if isinstance(i, dict) and i.get("name") == req.ifname), None)
        try:
            await host.blocking(netlink.check, req.netns, req.ifname, tuple(mine), routes,
                                mac if isinstance(mac, str) else None)
        except netlink.NetnsMissing as exc:
            raise CNIError(INVALID_ENVIRONMENT, "invalid CNI_NETNS", str(exc)) from None
        except netlink.CheckFailed as exc:
            raise CNIError(CHECK_FAILED, "interface does not match prevResult", str(exc)) from None

    async def gc(self, req: Request, host: Host) -> None:
        await self._ipam(req, host, "GC")

    async def status(self, req: Request, host: Host) -> None:
        self._spec(req)
        await self._ipam(req, host, "STATUS")
