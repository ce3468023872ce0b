"""One demo node: a network namespace with its IMDS, the node setup of the user data, and its IPAM daemon.

The node setup is the user data's shell part, run as it is, in the node's network namespace and in a private
mount namespace where ``/opt``, ``/usr/local/sbin``, ``/etc/systemd/system`` and ``/tmp`` are the node's own
directories (``<root>/...``), with ``EKSNET_ROOT=<root>`` for the files the setup writes under ``/etc`` and
``/run``. Only the steps that need AWS or a package manager or a running systemd are stand-ins (``STANDINS``):
the demo names them in its output, and each call is recorded in ``<root>/standins.log``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from node_runtime.lab import Lab, ip

# Host directories the node gets its own copy of (bind mounts; they exist on any Debian host), and /etc as an
# overlay whose upper layer is the node's <root>/etc: what the node writes under /etc lands there, the host's /etc
# stays untouched, and EKSNET_ROOT=<root> finds the same files.
PRIVATE_DIRS = ("/opt", "/usr/local/sbin", "/tmp")
# Directories under /etc that both the user data (through /etc) and the node runtime (through EKSNET_ROOT, directly)
# write: bound over the overlay, so both ways reach the same directory (an overlay does not see files created in
# its upper layer behind its back).
SHARED_ETC = ("/etc/eksnet", "/etc/systemd/system", "/etc/systemd/network", "/etc/udev/rules.d")
STANDIN_NAMES = ("aws", "dnf", "rpm", "systemctl", "udevadm")
# The node's Python's own directory gets an overlay too: the dnf stand-in installs python3-botocore there.
NODE_PYTHON_LIB = "/usr/lib/python3.11"
STANDINS = {
    "aws": "`aws s3 cp s3://<assets bucket>/<key> <file>` copies the asset the key names from the cloud assembly "
           "(no AWS)",
    "dnf": "`dnf install python3-botocore` links botocore and its pure-Python dependencies from the demo's venv "
           f"into the node's {NODE_PYTHON_LIB}/site-packages (where AL2023's package puts it); python3.11 is "
           "Debian's, so the user data skips installing it; any other package fails loudly",
    "rpm": "`rpm -q` answers 'not installed' (Debian has no rpm database)",
    "systemctl": "recorded (PID 1 here is not systemd); the demo then starts the units the user data started, as "
                 "systemd would: Type=notify with NOTIFY_SOCKET until READY=1, Type=oneshot to completion",
    "udevadm": "recorded (no udevd here); the ENI links exist before the node setup runs",
}

_STANDIN = r"""#!/bin/bash
# eksnet demo stand-in for `{name}` (see demo/node.py): records the call, then does what the demo needs.
echo "{name} $*" >> "$EKSNET_DEMO_STANDIN_LOG"
case "{name}" in
  aws)
    if [ "$1 $2" = "s3 cp" ] && [[ $3 == s3://* ]]; then
      src="$EKSNET_DEMO_S3/${{3#s3://}}"
      [ -f "$src" ] || {{ echo "stand-in aws: no object $3 in the demo's assets" >&2; exit 1; }}
      mkdir -p "$(dirname "$4")" && cp "$src" "$4"; exit $?
    fi
    echo "stand-in aws: only 's3 cp s3://... FILE' is known, got: $*" >&2; exit 1;;
  dnf)
    pkgs=$(printf '%s\n' "$@" | grep -v '^-' | grep -v '^install$')
    if [ "$pkgs" = "python3-botocore" ]; then
      dest="{python_lib}/site-packages"; mkdir -p "$dest"
      for p in ${{EKSNET_DEMO_PYPKGS//:/ }}; do ln -sfn "$p" "$dest/$(basename "$p")" || exit 1; done; exit 0
    fi
    echo "stand-in dnf: only python3-botocore is known to the demo, got: $*" >&2; exit 1;;
  rpm) exit 1;;
  systemctl|udevadm) exit 0;;
esac
"""


def python_packages() -> list[Path]:
    """botocore and what it imports, from the demo's own environment (pure Python)."""
    import importlib.util

    paths = []
    for name in ("botocore", "jmespath", "dateutil", "urllib3", "six"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        paths.append(origin.parent if origin.name == "__init__.py" else origin)
    return paths


def write_standins(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in STANDIN_NAMES:
        path = directory / name
        path.write_text(_STANDIN.format(name=name, python_lib=NODE_PYTHON_LIB))
        path.chmod(0o755)
    return directory


@dataclass(frozen=True)
class Names:
    """The demo's link names under its lab's prefix (``node_runtime.lab.unique_prefix``: 10 characters, so a
    suffix may have 5): a bridge per Multus subnet (``b<device index>``) and the host end of each node's ENI link
    (``n<node>e<device index>``). Namespaces are the lab's: ``n<node>`` and ``p<pod>``."""

    prefix: str

    def bridge(self, device_index: int) -> str:
        return f"{self.prefix}b{device_index}"

    def is_bridge(self, name: str) -> bool:
        return name.startswith(f"{self.prefix}b")

    def eni_peer(self, node: int, device_index: int) -> str:
        return f"{self.prefix}n{node}e{device_index}"


@dataclass
class Node:
    """A node: ``index`` (1, 2...), its network namespace, root directory, instance id and what runs in it.

    ``boot()`` starts a holder process in the node's network namespace and a new mount namespace (propagation
    ``slave``, so pod namespaces made later under /run/netns still show inside) where the node's directories are
    mounted; every later command of the node enters both namespaces with ``nsenter`` (``argv()``)."""

    index: int
    namespace: str
    root: Path
    instance_id: str = ""
    holder: subprocess.Popen | None = None
    daemon: subprocess.Popen | None = None
    daemon_log: Path | None = None
    notify_type: str = "simple"
    notify_socket: socket.socket | None = None
    enis: dict[int, dict] = field(default_factory=dict)  # device index -> moto ENI
    links: list[str] = field(default_factory=list)  # host-side ends of the ENI links

    @property
    def socket(self) -> Path:
        return self.root / "run/eksnet/ipamd.sock"

    @property
    def state_dir(self) -> Path:
        return self.root / "var/lib/eksnet/ipamd"

    @property
    def ipamd_config(self) -> Path:
        return self.root / "etc/eksnet/ipamd.json"

    def boot(self) -> None:
        for d in PRIVATE_DIRS:
            (self.root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (self.root / "etc").mkdir(parents=True, exist_ok=True)
        for d in SHARED_ETC:
            (self.root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (self.root / ".etc-work").mkdir(parents=True, exist_ok=True)
        (self.root / "run/eksnet").mkdir(parents=True, exist_ok=True, mode=0o700)
        q = shlex.quote
        mounts = [f"mount -t overlay eksnet-demo-etc -o lowerdir=/etc,upperdir={q(str(self.root / 'etc'))},"
                  f"workdir={q(str(self.root / '.etc-work'))} /etc"]
        if os.path.isdir(NODE_PYTHON_LIB):
            upper, work = self.root / NODE_PYTHON_LIB.lstrip("/"), self.root / ".pylib-work"
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            mounts.append(f"mount -t overlay eksnet-demo-pylib -o lowerdir={NODE_PYTHON_LIB},upperdir={q(str(upper))},"
                          f"workdir={q(str(work))} {NODE_PYTHON_LIB}")
        # The demo's own site-packages (botocore for the dnf stand-in), bound inside the node's root before the
        # node's private /tmp hides them: the demo's venv may live under /tmp (a CI checkout does).
        for i, source in enumerate(sorted({p.parent for p in python_packages()})):
            target = self.root / "pypkgs" / str(i)
            target.mkdir(parents=True, exist_ok=True)
            mounts.append(f"mount --bind {q(str(source))} {q(str(target))}")
        mounts += [f"mount --bind {q(str(self.root / d.lstrip('/')))} {q(d)}" for d in PRIVATE_DIRS + SHARED_ETC]
        script = " && ".join(mounts) + " && echo mounted && exec sleep infinity"
        self.holder = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, "unshare", "--mount", "--propagation", "slave", "--",
             "bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        line = self.holder.stdout.readline().strip()
        if line != "mounted":
            self.holder.wait(timeout=5)
            raise RuntimeError(f"{self.namespace}: the node's mount namespace failed: {self.holder.stderr.read()}")

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the node (its network and mount namespaces)."""
        return ["nsenter", "--target", str(self.holder.pid), "--mount", "--net", "--", *argv]

    def node_python_packages(self) -> list[Path]:
        """Where ``python_packages()`` are seen inside the node (bound under its root by ``boot``)."""
        parents = sorted({p.parent for p in python_packages()})
        return [self.root / "pypkgs" / str(parents.index(p.parent)) / p.name for p in python_packages()]

    def env(self, standins: Path, **extra: str) -> dict[str, str]:
        return {
            "PATH": f"{standins}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            "EKSNET_ROOT": str(self.root),
            "EKSNET_DEMO_STANDIN_LOG": str(self.root / "standins.log"),
            "EKSNET_DEMO_PYPKGS": ":".join(str(p) for p in self.node_python_packages()),
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            **extra,
        }

    def run_user_data(self, script: str, standins: Path, s3_dir: Path) -> subprocess.CompletedProcess:
        path = self.root / "user-data.sh"
        path.write_text(script)
        return subprocess.run(self.argv(["bash", str(path)]), env=self.env(standins, EKSNET_DEMO_S3=str(s3_dir)),
                              capture_output=True, text=True, timeout=120)

    def standin_calls(self) -> list[str]:
        log = self.root / "standins.log"
        return log.read_text().splitlines() if log.exists() else []

    def started_units(self) -> list[str]:
        """The units the user data started (``systemctl start``/``enable --now``), in order."""
        units = []
        for call in self.standin_calls():
            words = call.split()
            if words[:1] != ["systemctl"]:
                continue
            args = [w for w in words[1:] if not w.startswith("--") or w == "--now"]
            if args[:1] == ["start"] or (args[:1] == ["enable"] and "--now" in args):
                units += [w for w in args[1:] if w != "--now" and w not in units]
        return units

    def unit_file(self, unit: str) -> Path:
        return self.root / "etc/systemd/system" / unit

    def unit_setting(self, unit: str, key: str, dropin: str | None = None) -> list[str]:
        """The values of ``key=`` in a unit (or one of its drop-ins) the user data installed."""
        path = self.unit_file(unit) if dropin is None else self.root / "etc/systemd/system" / f"{unit}.d" / dropin
        return [line.split("=", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith(f"{key}=")]

    def unit_exec_start(self, unit: str) -> list[str]:
        lines = self.unit_setting(unit, "ExecStart")
        if len(lines) != 1:
            raise RuntimeError(f"{unit}: expected one ExecStart, found {len(lines)}")
        return shlex.split(lines[0])

    def run_oneshot(self, unit: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
        argv = self.unit_exec_start(unit)
        return subprocess.run(self.argv(argv), env=env, capture_output=True, text=True, timeout=timeout)

    def start_daemon(self, unit: str, log: Path, env: dict[str, str]) -> list[str]:
        """Start the IPAM daemon as its unit says, with systemd's RuntimeDirectory/StateDirectory and the
        config placed under the node's root (flags the daemon takes). Returns the command."""
        # The unit's command with systemd's RuntimeDirectory/StateDirectory and /etc/eksnet under the node's root;
        # --config even before the node setup has written it (no pools until then; the reload reads it).
        config = ["--config", str(self.ipamd_config)]
        argv = self.unit_exec_start(unit) + config + ["--socket", str(self.socket), "--state-dir",
                                                      str(self.state_dir), "--reconcile-interval", "0"]
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.daemon_log = log
        self.notify_type = (self.unit_setting(unit, "Type") or ["simple"])[-1]
        if self.notify_type == "notify":
            # What systemd does for Type=notify: a datagram socket in NOTIFY_SOCKET, started = READY=1 received.
            path = self.root / "run/systemd-notify.sock"
            self.notify_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.notify_socket.bind(str(path))
            env = {**env, "NOTIFY_SOCKET": str(path)}
        with open(log, "w") as out:
            self.daemon = subprocess.Popen(self.argv(argv), stdout=out, env=env, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        return argv

    def wait_daemon(self, timeout: float = 15.0) -> str:
        """Until the daemon is started as systemd sees it: READY=1 for Type=notify (returns its notification),
        its socket for Type=simple."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon is not None and self.daemon.poll() is not None:
                raise RuntimeError(f"eksnet-ipamd of {self.namespace} exited {self.daemon.returncode}: "
                                   + (self.daemon_log.read_text()[-2000:] if self.daemon_log else ""))
            if self.notify_socket is not None:
                self.notify_socket.settimeout(0.05)
                try:
                    message = self.notify_socket.recv(4096).decode(errors="replace")
                except TimeoutError:
                    continue
                fields = dict(line.split("=", 1) for line in message.splitlines() if "=" in line)
                if fields.get("READY") == "1":
                    return "READY=1" + (f" ({fields['STATUS']})" if "STATUS" in fields else "")
            elif self.socket.exists():
                return "socket open (Type=simple: started is not ready)"
            else:
                time.sleep(0.02)
        raise RuntimeError(f"eksnet-ipamd of {self.namespace} not started after {timeout}s (Type={self.notify_type})")

    def daemon_status(self, cni_bin: Path) -> dict:
        proc = subprocess.run([str(cni_bin / "eksnet-ipamd"), "status", "--socket", str(self.socket)],
                              capture_output=True, text=True, timeout=10)
        if proc.returncode:
            raise RuntimeError(f"eksnet-ipamd status ({self.namespace}): {proc.stderr.strip() or proc.stdout}")
        return json.loads(proc.stdout)

    def halt(self) -> None:
        """The daemon, then the holder of the node's mount namespace (its mounts go with it)."""
        self.stop_daemon()
        if self.holder is not None:
            if self.holder.poll() is None:
                os.killpg(self.holder.pid, signal.SIGKILL)
            self.holder.wait(timeout=10)
            self.holder = None

    def stop_daemon(self) -> None:
        if self.notify_socket is not None:
            self.notify_socket.close()
            self.notify_socket = None
        if self.daemon is None:
            return
        if self.daemon.poll() is None:
            os.killpg(self.daemon.pid, signal.SIGTERM)
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait(timeout=10)
        self.daemon = None

    def attach_link(self, lab: Lab, names: Names, device_index: int, mac: str) -> str:
        """The ENI's stand-in: a veth whose node end (``eth<index>``, a kernel name, down) has the ENI's MAC and
        whose other end is on the bridge standing for the subnet."""
        host = names.eni_peer(self.index, device_index)
        lab.veth(host, f"eth{device_index}", peer_netns=self.namespace, peer_address=mac)
        ip("link", "set", host, "master", names.bridge(device_index), "up")
        self.links.append(host)
        return host
