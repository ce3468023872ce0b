"""Network namespaces, links and sockets of the demo's nodes and pods (``ip`` from iproute2, setns via libc).

Every name starts with the run's prefix (``Names``), so a run finds, and removes, exactly what it made, and two
runs side by side do not meet.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import socket
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass(frozen=True)
class Names:
    """Unique, short (link names have 15 characters at most) names for one run: ``edm<4 hex>...``."""

    prefix: str

    @classmethod
    def fresh(cls) -> Names:
        return cls(f"edm{secrets.token_hex(2)}")

    def node(self, i: int) -> str:
        return f"{self.prefix}n{i}"

    def pod(self, i: int) -> str:
        return f"{self.prefix}p{i}"

    def bridge(self) -> str:
        return f"{self.prefix}br"

    def eni_peer(self, node: int, device_index: int) -> str:
        return f"{self.prefix}n{node}e{device_index}"

    def namespaces(self) -> list[str]:
        out = ip("netns", "list", check=False)
        return sorted(line.split()[0] for line in out.splitlines() if line.startswith(self.prefix))

    def links(self) -> list[str]:
        out = ip("-o", "link", "show", check=False)
        names = [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
        return sorted(n for n in names if n.startswith(self.prefix))


def add_namespace(name: str) -> None:
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")
    for key in ("net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"):
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw", f"{key}=0"], check=True)


def delete_namespace(name: str) -> None:
    ip("netns", "del", name, check=False)


@contextmanager
def entered(ns: str):
    """Run the body with this thread in network namespace ``ns`` (setns is per thread), then come back."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{ns}") as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home")


def listening_socket(ns: str, address: str, port: int) -> socket.socket:
    """A TCP socket listening on ``address:port`` inside ``ns`` (made in a helper thread that enters ``ns``:
    a socket keeps the namespace it was made in, so any thread of this process can serve it)."""
    box: dict = {}

    def make() -> None:
        try:
            with entered(ns):
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, port))
                s.listen(64)
                box["socket"] = s
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=make)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["socket"]


def pids_in_namespace(ns: str) -> list[int]:
    out = ip("netns", "pids", ns, check=False)
    return [int(p) for p in out.split()]


def exists(path: str | Path) -> bool:
    return os.path.exists(path)
