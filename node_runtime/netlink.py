"""All netlink work of the node runtime, over pyroute2: create, configure, check and delete the pod
interface. Blocking calls: the daemon runs them on worker threads, off its event loop.

Namespaces: the link is created from the host namespace directly inside the pod namespace
(``net_ns_fd``: one request instead of create, move and configure). Work inside the pod namespace
runs on a short-lived thread that ``setns``-es into it: setns is per thread, so the worker thread
and the daemon never leave the host namespace, and no process is forked (pyroute2's
``IPRoute(netns=...)`` forks, ~7.5 ms).

The "host" namespace is the caller's: the namespace of the process that ran the CNI executable
(the node's, where ``master`` lives). The daemon finds it from the peer of the request's socket
(``peer_netns``) and passes it in ``CALLER_NETNS``; when it is the daemon's own, nothing changes,
otherwise the link is created from a thread inside it."""

from __future__ import annotations

import contextvars
import ctypes
import errno
import ipaddress
import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

CLONE_NEWNET = 0x40000000
IFA_F_NODAD = 0x02
IFF_UP = 0x1
IPVLAN_MODES = {"l2": 0, "l3": 1, "l3s": 2}
MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")
_MACVLAN_MODE_BITS = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8}
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 18, 20, 24
_NEW = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL

_libc = ctypes.CDLL(None, use_errno=True)
_local = threading.local()
# An open fd of the network namespace of the process a request came from, when it is not ours.
CALLER_NETNS: contextvars.ContextVar[int | None] = contextvars.ContextVar("eksnet_caller_netns", default=None)
_OWN_NETNS = os.stat("/proc/self/ns/net")
_UCRED = struct.Struct("iII")  # pid, uid, gid


def peer_netns(sock: socket.socket | None) -> int | None:
    """An fd of the network namespace of the process at the other end of a unix socket, or None
    when it is the daemon's own (or cannot be known: a pid from another pid namespace)."""
    if sock is None:
        return None
    try:
        pid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))[0]
        if pid <= 0:
            return None
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) == (_OWN_NETNS.st_dev, _OWN_NETNS.st_ino):
        os.close(fd)
        return None
    return fd


class LinkError(Exception):
    """A netlink failure, with what the CNI error should say."""


class LinkExists(LinkError):
    pass


class MasterMissing(LinkError):
    pass


class NetnsMissing(LinkError):
    pass


class CheckFailed(LinkError):
    pass


@dataclass(frozen=True)
class LinkSpec:
    kind: str  # "ipvlan" or "macvlan"
    master: str
    mode: str
    netns: str
    ifname: str
    mtu: int | None = None
    addresses: tuple[str, ...] = ()  # "ip/prefixlen"
    routes: tuple[tuple[str, str | None], ...] = field(default=())  # (dst CIDR, gateway or None)


class _Netlink:
    """A raw NETLINK_ROUTE socket in the namespace of the thread that opened it. Messages are
    encoded by pyroute2's message classes and sent in one datagram per batch: pyroute2's request
    layer costs ~0.5-1 ms a call here, a whole ADD's batch ~0.5 ms in all."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _encode(self, msg: Any, kind: int, flags: int) -> bytes:
        self.seq += 1
        msg["header"]["type"] = kind
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        return bytes(msg.data)

    def batch(self, msgs: list[tuple[Any, int, int]]) -> list[int]:
        """Send [(message, type, flags)] at once; returns each one's errno (0: done), in order."""
        self.sock.send(b"".join(self._encode(m, k, f) for m, k, f in msgs))
        errors: list[int] = []
        while len(errors) < len(msgs):
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == NLMSG_ERROR:
                    errors.append(-struct.unpack_from("=i", data, offset + 16)[0])
                if length < 16:
                    break
                offset += (length + 3) & ~3
        return errors

    def link_index(self, ifname: str) -> tuple[int, int] | None:
        """(index, flags) of ``ifname`` in this namespace, or None."""
        found = self.link(ifname)
        return None if found is None else (found["index"], found["flags"])

    def link(self, ifname: str) -> ifinfmsg | None:
        """The decoded RTM_NEWLINK of ``ifname`` in this namespace, or None."""
        msg = ifinfmsg()
        msg["attrs"] = [("IFLA_IFNAME", ifname)]
        self.sock.send(self._encode(msg, RTM_GETLINK, NLM_F_REQUEST))
        data = self.sock.recv(65536)
        kind = struct.unpack_from("=IH", data, 0)[1]
        if kind == NLMSG_ERROR:
            return None
        reply = ifinfmsg(data)
        reply.decode()
        return reply


def _host() -> _Netlink:
    """This worker thread's socket in the host namespace (worker threads never change namespace)."""
    conn = getattr(_local, "nl", None)
    if conn is None:
        conn = _local.nl = _Netlink()
    return conn


def _raise_for(errors: list[int], what: str) -> None:
    for code in errors:
        if code:
            raise LinkError(f"{what}: {os.strerror(code)}")


def in_netns(path: str | int, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on a fresh thread inside the network namespace at ``path`` (or open fd)."""
    if isinstance(path, int):
        fd = os.dup(path)
    else:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise NetnsMissing(f"cannot open network namespace {path}: {exc.strerror}") from None
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise NetnsMissing(f"{path} is not a network namespace: {os.strerror(err)}")
            box["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the calling thread
            box["error"] = exc

    try:
        thread = threading.Thread(target=target, name="eksnet-netns")
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def _disable_dad(ifname: str) -> None:
    # Addresses carry IFA_F_NODAD already; this also covers the link-local address. Best effort:
    # /proc/sys/net follows the opening thread's namespace.
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/accept_dad", "w") as f:
            f.write("0")
    except OSError:
        pass


def _addr_msg(index: int, address: str) -> ifaddrmsg:
    iface = ipaddress.ip_interface(address)
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    attrs = [("IFA_LOCAL", str(iface.ip)), ("IFA_ADDRESS", str(iface.ip))]
    if iface.version == 6:
        msg["flags"] = IFA_F_NODAD
        attrs.append(("IFA_FLAGS", IFA_F_NODAD))
    elif iface.network.prefixlen < 31:
        attrs.append(("IFA_BROADCAST", str(iface.network.broadcast_address)))
    msg["attrs"] = attrs
    return msg


def _route_msg(index: int, dst: str, gateway: str | None) -> rtmsg:
    net = ipaddress.ip_network(dst, strict=False)
    msg = rtmsg()
    msg["family"] = socket.AF_INET if net.version == 4 else socket.AF_INET6
    msg["dst_len"] = net.prefixlen
    msg["table"] = 254  # main
    msg["proto"] = 4  # static
    msg["scope"] = 0 if gateway else 253  # universe via a gateway, else link
    msg["type"] = 1  # unicast
    attrs: list[tuple[str, Any]] = [("RTA_OIF", index)]
    if net.prefixlen:
        attrs.append(("RTA_DST", str(net.network_address)))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    msg["attrs"] = attrs
    return msg


def _up_msg(index: int, up: bool = True) -> ifinfmsg:
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = IFF_UP if up else 0
    msg["change"] = IFF_UP
    return msg


def _configure(spec: LinkSpec) -> None:
    conn = _Netlink()
    try:
        found = conn.link_index(spec.ifname)
        if found is None:
            raise LinkError(f"{spec.ifname} vanished from {spec.netns}")
        index = found[0]
        if any(ipaddress.ip_interface(a).version == 6 for a in spec.addresses):
            _disable_dad(spec.ifname)
        msgs = [(_addr_msg(index, a), RTM_NEWADDR, _NEW) for a in spec.addresses]
        msgs.append((_up_msg(index), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK))
        # A route to the network of one of the link's own addresses is the kernel's connected route already
        # (e.g. a NAD routing every zone's subnet, on the node of one of them): adding it again is EEXIST.
        connected = {ipaddress.ip_interface(a).network for a in spec.addresses}
        msgs += [(_route_msg(index, dst, gw), RTM_NEWROUTE, _NEW) for dst, gw in spec.routes
                 if gw or ipaddress.ip_network(dst, strict=False) not in connected]
        _raise_for(conn.batch(msgs), f"cannot configure {spec.ifname}")
    finally:
        conn.close()


def _by_name(ifname: str) -> ifinfmsg:
    msg = ifinfmsg()
    msg["attrs"] = [("IFLA_IFNAME", ifname)]
    return msg


def _delete_in_ns(ifname: str) -> bool:
    conn = _Netlink()
    try:
        (code,) = conn.batch([(_by_name(ifname), RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK)])
    finally:
        conn.close()
    if code in (errno.ENODEV, errno.ENOENT):
        return False
    _raise_for([code], f"cannot delete {ifname}")
    return True


def link_message(spec: LinkSpec, master: int, netns_fd: int, mac: str) -> ifinfmsg:
    """RTM_NEWLINK body: an ipvlan or macvlan link on ``master``, born in the namespace of ``netns_fd``."""
    msg = ifinfmsg()
    attrs: list[tuple[str, Any]] = [("IFLA_IFNAME", spec.ifname), ("IFLA_LINK", master), ("IFLA_NET_NS_FD", netns_fd)]
    if spec.kind == "ipvlan":
        data = [("IFLA_IPVLAN_MODE", IPVLAN_MODES[spec.mode])]
    else:
        data = [("IFLA_MACVLAN_MODE", _MACVLAN_MODE_BITS[spec.mode])]
        attrs.append(("IFLA_ADDRESS", mac))
    if spec.mtu:
        attrs.append(("IFLA_MTU", spec.mtu))
    attrs.append(("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", spec.kind), ("IFLA_INFO_DATA", {"attrs": data})]}))
    msg["attrs"] = attrs
    return msg


def create(spec: LinkSpec) -> dict[str, str]:
    """Create ``spec.ifname`` in ``spec.netns`` on ``spec.master``, configured and up, ``master``
    being looked up in the caller's namespace. Returns {"mac": ...}. Leaves nothing behind when it fails."""
    caller = CALLER_NETNS.get()
    if caller is None:
        return _create(spec, _host())

    def in_caller() -> dict[str, str]:
        conn = _Netlink()
        try:
            return _create(spec, conn)
        finally:
            conn.close()

    return in_netns(caller, in_caller)


def _create(spec: LinkSpec, conn: _Netlink) -> dict[str, str]:
    found = conn.link(spec.master)
    if found is None:
        raise MasterMissing(f"master interface {spec.master!r} not found")
    master = found["index"]
    try:
        fd = os.open(spec.netns, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsMissing(f"cannot open network namespace {spec.netns}: {exc.strerror}") from None
    if spec.kind == "ipvlan":  # ipvlan links share the master's MAC address
        mac = found.get_attr("IFLA_ADDRESS")
    else:
        mac = _random_mac()
    msg = link_message(spec, master, fd, mac)
    try:
        (code,) = conn.batch([(msg, RTM_NEWLINK, _NEW)])
    finally:
        os.close(fd)
    if code == errno.EEXIST:
        raise LinkExists(f"{spec.ifname} already exists in {spec.netns}")
    if code == errno.EOPNOTSUPP:
        raise LinkError(f"this kernel cannot create {spec.kind} links")
    _raise_for([code], f"cannot create {spec.kind} link {spec.ifname} on {spec.master}")
    try:
        in_netns(spec.netns, _configure, spec)
    except BaseException:
        try:
            in_netns(spec.netns, _delete_in_ns, spec.ifname)
        except Exception:  # noqa: BLE001 - report the first failure
            pass
        raise
    return {"mac": mac}


def delete(netns: str, ifname: str) -> bool:
    """Delete ``ifname`` from ``netns``; a missing namespace or link is not an error (DEL)."""
    if not netns or not os.path.exists(netns):
        return False
    try:
        return in_netns(netns, _delete_in_ns, ifname)
    except NetnsMissing:
        return False


def _check(ifname: str, addresses: tuple[str, ...], routes: tuple[tuple[str, str | None], ...],
           mac: str | None) -> None:
    with IPRoute() as ipr:
        found = ipr.link("get", ifname=ifname) if ipr.link_lookup(ifname=ifname) else []
        if not found:
            raise CheckFailed(f"{ifname} is missing")
        link = found[0]
        if not link["flags"] & 1:
            raise CheckFailed(f"{ifname} is down")
        have_mac = (link.get_attr("IFLA_ADDRESS") or "").lower()
        if mac and have_mac != mac.lower():
            raise CheckFailed(f"{ifname} has MAC {have_mac}, prevResult says {mac.lower()}")
        have = {f"{a.get('address')}/{a['prefixlen']}" for a in ipr.addr("dump", index=link["index"])}
        missing = sorted(set(str(ipaddress.ip_interface(a)) for a in addresses) - have)
        if missing:
            raise CheckFailed(f"{ifname} lacks {', '.join(missing)}")
        present = set()
        for family in {ipaddress.ip_network(dst, strict=False).version for dst, _ in routes}:
            for r in ipr.route("dump", family=socket.AF_INET if family == 4 else socket.AF_INET6):
                if r.get_attr("RTA_OIF") != link["index"]:
                    continue
                dst = r.get_attr("RTA_DST") or ("0.0.0.0" if family == 4 else "::")
                gw = r.get_attr("RTA_GATEWAY")
                present.add((str(ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False)),
                             None if gw is None else str(ipaddress.ip_address(gw))))
        lacking = [f"{dst}" + (f" via {gw}" if gw else "") for dst, gw in routes
                   if (str(ipaddress.ip_network(dst, strict=False)), gw) not in present]
        if lacking:
            raise CheckFailed(f"{ifname} lacks route(s) {', '.join(lacking)}")


def check(netns: str, ifname: str, addresses: tuple[str, ...], routes: tuple[tuple[str, str | None], ...] = (),
          mac: str | None = None) -> None:
    """The link exists, is up, has ``mac`` (if given), the addresses and the routes (dst, gw)."""
    in_netns(netns, _check, ifname, addresses, routes, mac)
