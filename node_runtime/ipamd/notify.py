"""systemd's readiness protocol (sd_notify) with the standard library only.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace) to a
``Type=notify`` service; the service sends newline-separated ``KEY=VALUE`` datagrams: ``READY=1``
once it serves, ``RELOADING=1`` (with ``MONOTONIC_USEC``) while it reloads, ``STOPPING=1``,
``STATUS=...`` for ``systemctl status``. Without ``NOTIFY_SOCKET`` (not under systemd) it does
nothing."""

from __future__ import annotations

import os
import signal
import socket
import time

reload_requested: list[int] = []  # SIGHUPs received before the daemon's loop handles them


def hold_reloads() -> None:
    """SIGHUP's default action ends the process: from the very start until the event loop takes
    over, remember a reload request instead (the unit's ExecReload, or a node setup's kill -HUP)."""
    signal.signal(signal.SIGHUP, lambda *_: reload_requested.append(1))


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. "READY=1", "STATUS=serving 3 pools") in one datagram; True if sent."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path[0] == "@":
        path = "\0" + path[1:]
    elif path[0] != "/":
        return False  # systemd also knows vsock addresses; a node never uses them for a local unit
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(path)
        sock.sendall("\n".join(fields).encode("utf-8", "replace"))
    return True


def reloading() -> bool:
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
