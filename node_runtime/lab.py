"""The local lab: network namespaces, links, eksnet-ipamd processes and CNI calls for the tests, the benchmarks
and the demo on one machine. Never used on a node, and never shipped to one: ``node_runtime.install`` leaves this
module out of every bundle and installation (``install.NOT_SHIPPED``).

It lives in ``node_runtime`` (standard library and the node runtime only) so that ``tests/`` (through the pytest
fixtures of ``tests/support/netns.py``), ``bench/`` and ``demo/`` share one harness without ``bench/`` or ``demo/``
importing ``tests/``.

Everything a ``Lab`` makes is named with its prefix (``unique_prefix``: unique on the machine, never the start of
another, short enough for 15-character link names), so ``Lab.close()`` removes what it made, and whatever a failure left with that
prefix, and two labs side by side never meet. ``ip`` (iproute2) does the plumbing: it is what every test machine
has, and a lab's failures read as the commands a person would type.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REFERENCE = Path("/usr/lib/cni")  # Debian's containernetworking-plugins: the reference CNI plugins
CLONE_NEWNET = 0x40000000
_counter = itertools.count()
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def unique_prefix(tag: str) -> str:
    """A prefix no other live lab on the machine has, nor starts with: ``tag`` (two letters) + this process's id
    (6 hex digits: Linux pids stay below 2**22) + a per-process counter (2 base-36 digits); always 10 characters,
    which leaves 5 of a link name's 15 for a suffix."""
    if len(tag) != 2 or not tag.isalpha():
        raise ValueError(f"lab tag {tag!r}: two letters (e.g. 'ek' tests, 'eb' benchmarks, 'ed' the demo)")
    n = next(_counter) % 36**2
    return f"{tag}{os.getpid():06x}{_DIGITS[n // 36]}{_DIGITS[n % 36]}"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command; with ``check``, its failure raises with the command and its stderr."""
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc


def ip(*args: str, check: bool = True) -> str:
    """``ip ARGS``; its output."""
    return sh("ip", *args, check=check).stdout


def _name(ns: str) -> str:
    """A namespace's name from its name or its /run/netns path."""
    return os.path.basename(ns)


# --- namespaces and links ----------------------------------------------------------------------------------------


class Namespaces:
    """Network namespaces named ``<prefix><name>``, each with ``lo`` up; ``add`` returns the path a CNI_NETNS
    names (``os.path.basename`` of it is the namespace's name)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.made: list[str] = []

    def add(self, name: str, *, nodad: bool = False) -> str:
        """A new namespace; ``nodad``: IPv6 addresses usable at once (no duplicate address detection)."""
        full = f"{self.prefix}{name}"
        ip("netns", "add", full)
        self.made.append(full)
        ip("-n", full, "link", "set", "lo", "up")
        if nodad:
            for key in ("net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"):
                self.run(full, "sysctl", "-qw", f"{key}=0")
        return f"/run/netns/{full}"

    def delete(self, ns: str) -> None:
        full = _name(ns)
        ip("netns", "del", full, check=False)
        if full in self.made:
            self.made.remove(full)

    def run(self, ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """``cmd`` in the namespace (a name or a /run/netns path)."""
        return sh("ip", "netns", "exec", _name(ns), *cmd, check=check)

    def ping(self, ns: str, address: str, within: float = 5.0) -> bool:
        """One echo answered within ``within`` seconds (the reference plugins' IPv6 addresses stay tentative ~2 s
        while DAD runs: retry until then)."""
        flag = "-6" if ":" in address else "-4"
        deadline = time.time() + within
        while True:
            if self.run(ns, "ping", flag, "-c", "1", "-W", "1", address, check=False).returncode == 0:
                return True
            if time.time() > deadline:
                return False
            time.sleep(0.2)

    def existing(self) -> list[str]:
        """The namespaces on the machine that carry the prefix (made by this lab, or left by one that failed)."""
        out = ip("netns", "list", check=False)
        return sorted(line.split()[0] for line in out.splitlines() if line.startswith(self.prefix))

    def cleanup(self) -> None:
        for full in sorted(set(self.made) | set(self.existing())):
            ip("netns", "del", full, check=False)
        self.made.clear()


class Underlay:
    """What pods' macvlan/ipvlan links sit on (``master``), standing for a node's Multus ENI: a veth pair
    (``<prefix>a`` / ``<prefix>b``, both up) or a bridge (``<prefix>``, up)."""

    KINDS = ("veth", "bridge")

    def __init__(self, prefix: str, kind: str = "veth") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"underlay kind {kind!r}: one of {', '.join(self.KINDS)}")
        if len(prefix) > 14:
            raise ValueError(f"underlay name {prefix!r}: at most 14 characters (link names have 15)")
        if kind == "veth":
            self.master, self.peer = f"{prefix}a", f"{prefix}b"
            ip("link", "add", self.master, "type", "veth", "peer", "name", self.peer)
            ip("link", "set", self.peer, "up")
        else:
            self.master, self.peer = prefix, None
            ip("link", "add", self.master, "type", "bridge")
        ip("link", "set", self.master, "up")

    def cleanup(self) -> None:
        ip("link", "del", self.master, check=False)


def links(prefix: str) -> list[str]:
    """Links of the current namespace whose name starts with ``prefix``."""
    out = ip("-o", "link", "show", check=False)
    names = [line.split(":", 2)[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return sorted(n for n in names if n.startswith(prefix))


class Lab:
    """One prefix's namespaces (``namespaces``), underlays, links and daemons; ``close()`` (or leaving the
    ``with`` block) removes them all, whatever failed, and every namespace and link left with the prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.namespaces = Namespaces(prefix)
        self.daemons: list[Daemon] = []
        self._underlays = itertools.count()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def underlay(self, kind: str = "veth") -> Underlay:
        return Underlay(f"{self.prefix}u{next(self._underlays)}", kind)

    def veth(self, name: str, peer: str, *, netns: str | None = None, address: str | None = None,
             peer_netns: str | None = None, peer_address: str | None = None) -> None:
        """A veth pair ``name`` / ``peer`` (down): made in ``netns`` (else here), with MAC ``address``; the peer
        moved to ``peer_netns``, with MAC ``peer_address``. Links made here must carry the prefix (``close`` finds
        them by it); links inside a lab namespace go with it."""
        if netns is None and not name.startswith(self.prefix):
            raise ValueError(f"link {name!r} made outside a namespace must start with {self.prefix!r}")
        args = ["-n", _name(netns)] if netns else []
        args += ["link", "add", name, *(["address", address] if address else []), "type", "veth", "peer", "name", peer]
        if peer_address:
            args += ["address", peer_address]
        if peer_netns:
            args += ["netns", _name(peer_netns)]
        ip(*args)

    def daemon(self, base: Path, bin_dir: Path | None = None, **kw: Any) -> Daemon:
        """A ``Daemon`` this lab stops when it closes (not started yet)."""
        d = Daemon(base, bin_dir, **kw)
        self.daemons.append(d)
        return d

    def leftovers(self) -> dict[str, list[str]]:
        """Namespaces and links that still carry the prefix (empty after ``close``)."""
        left = {"namespaces": self.namespaces.existing(), "links": links(self.prefix)}
        return {k: v for k, v in left.items() if v}

    def close(self) -> None:
        errors = []
        for action in ([d.stop for d in self.daemons] + [self.namespaces.cleanup]
                       + [lambda name=name: ip("link", "del", name, check=False) for name in links(self.prefix)]):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - cleanup goes on, then reports
                errors.append(repr(exc))
        self.daemons.clear()
        if errors:
            raise RuntimeError(f"lab {self.prefix}: cleanup failed: {'; '.join(errors)}")


# --- running inside a namespace ----------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


@contextmanager
def entered(ns: str):
    """Run the body with this thread in network namespace ``ns`` (setns is per thread), then come back."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{_name(ns)}") as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home")


def listening_socket(ns: str, address: str, port: int) -> socket.socket:
    """A TCP socket listening on ``address:port`` inside ``ns`` (made in a helper thread that enters ``ns``: a
    socket keeps the namespace it was made in, so any thread of this process can serve it)."""
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


# --- the node runtime's executables and daemon -------------------------------------------------------------------


def daemon_dir(bin_dir: Path) -> Path:
    """Where the lab installs eksnet-ipamd: beside the CNI bin dir, never in it (a node uses /usr/local/sbin)."""
    return bin_dir.with_name(bin_dir.name + "-sbin")


def ipamd(bin_dir: Path) -> Path:
    return daemon_dir(bin_dir) / "eksnet-ipamd"


def install_bin(dest: Path, forwarder: str = "python", **kw: Any) -> Path:
    """The CNI executables as `make cni-bin` installs them into ``dest``, eksnet-ipamd into ``daemon_dir(dest)``
    (unless ``daemon_dir=`` says otherwise); ``kw``: ``node_runtime.install.install``'s other arguments."""
    from node_runtime.install import Forwarder, install

    kw.setdefault("daemon_dir", str(daemon_dir(dest)))
    install(str(dest), forwarder=Forwarder(forwarder), **kw)
    return dest


def forwarder_of(bin_dir: Path) -> str:
    with open(bin_dir / "eksnet-ipam", "rb") as f:
        return "native" if f.read(4) == b"\x7fELF" else "python"


class Daemon:
    """eksnet-ipamd as a child process on its own socket and state directory under ``base``.

    ``bin_dir``: an ``install_bin`` directory (its ``ipamd()``); ``command``: another way to start it (e.g.
    ``[sys.executable, "-m", "node_runtime.ipamd"]``); ``netns``: run it inside that namespace; ``socket`` /
    ``state_dir``: other places than ``base``'s; ``extra``: more arguments of ``serve``; ``environ``: added to
    this process's environment for it (e.g. the AWS endpoint of per-IP mode)."""

    def __init__(self, base: Path, bin_dir: Path | None = None, cooldown: float | None = 0.2,
                 extra: tuple[str, ...] = (), *, command: list[str] | None = None, netns: str | None = None,
                 socket: str | Path | None = None, state_dir: str | Path | None = None,
                 environ: dict[str, str] | None = None) -> None:
        if command is None and bin_dir is None:
            raise ValueError("Daemon needs bin_dir (an install_bin directory) or command")
        self.base = base
        self.bin_dir = bin_dir
        self.command = command or [str(ipamd(bin_dir))]
        self.netns = netns
        self.socket = str(socket or base / "ipamd.sock")
        self.state_dir = str(state_dir or base / "state")
        self.cooldown = cooldown
        self.extra = extra
        self.environ = environ or {}
        self.log_path = base / "ipamd.log"
        self.proc: subprocess.Popen | None = None
        base.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        cooldown = ["--cooldown", str(self.cooldown)] if self.cooldown is not None else []
        inside = ["ip", "netns", "exec", _name(self.netns)] if self.netns else []
        return [*inside, *self.command, "serve", "--socket", self.socket, "--state-dir", self.state_dir,
                *cooldown, "--reconcile-interval", "0", *self.extra]

    def start(self, timeout: float = 60.0, wait: bool = True) -> None:
        """Start it and (``wait``) until it answers ``status`` (a loaded machine: pyroute2 loads before the
        socket opens)."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, start_new_session=True,
                                         env={**os.environ, **self.environ})
        deadline = time.time() + timeout
        while wait and time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"eksnet-ipamd exited {self.proc.returncode}: {self.log()[-2000:]}")
            if os.path.exists(self.socket) and self.ctl("status")[0] == 0:
                return
            time.sleep(0.02)
        if wait:
            self.stop()
            raise RuntimeError(f"eksnet-ipamd did not answer within {timeout} s: {self.log()[-2000:]}")

    def log(self) -> str:
        """What it wrote (stdout and stderr) so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def restart(self) -> None:
        self.stop()
        self.start()

    def ctl(self, op: str) -> tuple[int, str]:
        from node_runtime.cni.protocol import call

        try:
            code, out = call(self.socket, b"ctl:" + op.encode(), b"", b"", timeout=10)
        except OSError:
            return 255, ""
        return code, out.decode()

    def status(self) -> dict[str, Any]:
        code, out = self.ctl("status")
        if code != 0:
            raise RuntimeError(f"eksnet-ipamd status failed ({code}): {out}")
        return json.loads(out)

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def env(self) -> dict[str, str]:
        """What a CNI executable needs to reach this daemon."""
        return {"EKSNET_IPAMD_SOCKET": self.socket}


class CNI:
    """Invoke a plugin executable the way a runtime does: ``bin_dir``'s, else the reference one of that name;
    ``netns``: run it inside that namespace (a node's), as kubelet does on a node."""

    def __init__(self, bin_dir: Path, extra_env: dict[str, str] | None = None, netns: str | None = None) -> None:
        self.bin_dir = bin_dir
        self.extra_env = extra_env or {}
        self.netns = netns

    def path(self) -> str:
        return f"{self.bin_dir}:{REFERENCE}"

    def env(self, command: str, container_id: str = "", netns: str = "", ifname: str = "",
            args: str = "") -> dict[str, str]:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_PATH": self.path(),
               **self.extra_env}
        for key, value in (("CNI_CONTAINERID", container_id), ("CNI_NETNS", netns), ("CNI_IFNAME", ifname),
                           ("CNI_ARGS", args)):
            if value:
                env[key] = value
        return env

    def exe(self, plugin: str) -> Path:
        exe = Path(plugin) if plugin.startswith("/") else self.bin_dir / plugin
        return exe if exe.exists() else REFERENCE / plugin

    def raw(self, plugin: str, env: dict[str, str], stdin: bytes) -> subprocess.CompletedProcess:
        inside = ["ip", "netns", "exec", _name(self.netns)] if self.netns else []
        return subprocess.run([*inside, str(self.exe(plugin))], input=stdin, env=env, capture_output=True, timeout=60)

    def __call__(self, plugin: str, command: str, config: dict[str, Any], container_id: str = "",
                 netns: str = "", ifname: str = "", args: str = "") -> tuple[int, Any]:
        """(exit code, the JSON it printed or None)."""
        proc = self.raw(plugin, self.env(command, container_id, netns, ifname, args), json.dumps(config).encode())
        out = proc.stdout.decode()
        return proc.returncode, (json.loads(out) if out.strip() else None)

    def ok(self, plugin: str, command: str, config: dict[str, Any], **kw: str) -> Any:
        """The result of a command that must succeed (its failure raises with the plugin's answer)."""
        rc, out = self(plugin, command, config, **kw)
        if rc != 0:
            raise RuntimeError(f"{plugin} {command} failed ({rc}): {out}")
        return out


def addresses(result: dict[str, Any]) -> list[str]:
    """The addresses of a CNI result, without their prefix lengths."""
    return [a["address"].split("/")[0] for a in result.get("ips", [])]
