"""Helpers for the node runtime tests: run CNI executables, drive a daemon, make namespaces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from node_runtime.install import Forwarder, install

REFERENCE = Path("/usr/lib/cni")
VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
FORWARDERS = ("python", "native")  # every executable test runs with both (the cni_bin fixture)


def daemon_dir(bin_dir: Path) -> Path:
    """Where the tests install eksnet-ipamd: beside the CNI bin dir, never in it (a node uses /usr/local/sbin)."""
    return bin_dir.with_name(bin_dir.name + "-sbin")


def ipamd(bin_dir: Path) -> Path:
    return daemon_dir(bin_dir) / "eksnet-ipamd"


def install_bin(dest: Path, forwarder: str = "python", **kw: Any) -> Path:
    install(str(dest), daemon_dir=str(daemon_dir(dest)), forwarder=Forwarder(forwarder), **kw)
    return dest


def forwarder_of(bin_dir: Path) -> str:
    with open(bin_dir / "eksnet-ipam", "rb") as f:
        return "native" if f.read(4) == b"\x7fELF" else "python"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc


class Daemon:
    """eksnet-ipamd as a child process, on its own socket and state directory."""

    def __init__(self, base: Path, bin_dir: Path, cooldown: float = 0.2, extra: tuple[str, ...] = ()) -> None:
        self.base = base
        self.bin_dir = bin_dir
        self.socket = str(base / "ipamd.sock")
        self.state_dir = str(base / "state")
        self.cooldown = cooldown
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        base.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        return [str(ipamd(self.bin_dir)), "serve", "--socket", self.socket, "--state-dir", self.state_dir,
                "--cooldown", str(self.cooldown), "--reconcile-interval", "0", *self.extra]

    def start(self) -> None:
        log = open(self.base / "ipamd.log", "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"eksnet-ipamd exited: {(self.base / 'ipamd.log').read_text()[-2000:]}")
            if os.path.exists(self.socket) and self.ctl("status")[0] == 0:
                return
            time.sleep(0.02)
        raise RuntimeError("eksnet-ipamd did not start")

    def ctl(self, op: str) -> tuple[int, str]:
        from node_runtime.cni.protocol import call

        try:
            code, out = call(self.socket, b"ctl:" + op.encode(), b"", b"", timeout=10)
        except OSError:
            return 255, ""
        return code, out.decode()

    def status(self) -> dict[str, Any]:
        code, out = self.ctl("status")
        assert code == 0, out
        return json.loads(out)

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def env(self) -> dict[str, str]:
        return {"EKSNET_IPAMD_SOCKET": self.socket}


class CNI:
    """Invoke a plugin executable the way a runtime does."""

    def __init__(self, bin_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.bin_dir = bin_dir
        self.extra_env = extra_env or {}

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

    def raw(self, plugin: str, env: dict[str, str], stdin: bytes) -> subprocess.CompletedProcess:
        exe = self.bin_dir / plugin if not plugin.startswith("/") else Path(plugin)
        if not exe.exists():
            exe = REFERENCE / plugin
        return subprocess.run([str(exe)], input=stdin, env=env, capture_output=True, timeout=60)

    def __call__(self, plugin: str, command: str, config: dict[str, Any], container_id: str = "",
                 netns: str = "", ifname: str = "", args: str = "") -> tuple[int, Any]:
        proc = self.raw(plugin, self.env(command, container_id, netns, ifname, args), json.dumps(config).encode())
        out = proc.stdout.decode()
        return proc.returncode, (json.loads(out) if out.strip() else None)

    def ok(self, plugin: str, command: str, config: dict[str, Any], **kw: str) -> Any:
        rc, out = self(plugin, command, config, **kw)
        assert rc == 0, f"{plugin} {command} failed: {out}"
        return out


class Namespaces:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.made: list[str] = []

    def add(self, name: str) -> str:
        full = f"{self.prefix}-{name}"
        sh("ip", "netns", "add", full)
        self.made.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return f"/run/netns/{full}"

    def delete(self, path: str) -> None:
        full = os.path.basename(path)
        sh("ip", "netns", "del", full, check=False)
        if full in self.made:
            self.made.remove(full)

    def run(self, path: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", os.path.basename(path), *cmd, check=check)

    def ping(self, path: str, address: str, within: float = 5.0) -> bool:
        """One echo answered within ``within`` seconds (the reference plugins' IPv6 addresses stay
        tentative ~2 s while DAD runs: retry until then)."""
        flag = "-6" if ":" in address else "-4"
        deadline = time.time() + within
        while True:
            if self.run(path, "ping", flag, "-c", "1", "-W", "1", address, check=False).returncode == 0:
                return True
            if time.time() > deadline:
                return False
            time.sleep(0.2)

    def cleanup(self) -> None:
        for full in list(self.made):
            sh("ip", "netns", "del", full, check=False)
        self.made.clear()


class Underlay:
    """A veth pair in the current namespace: ``master`` carries the pods' macvlan/ipvlan links."""

    def __init__(self, prefix: str) -> None:
        self.master = f"{prefix}a"[:15]
        self.peer = f"{prefix}b"[:15]
        sh("ip", "link", "add", self.master, "type", "veth", "peer", "name", self.peer)
        sh("ip", "link", "set", self.master, "up")
        sh("ip", "link", "set", self.peer, "up")

    def cleanup(self) -> None:
        sh("ip", "link", "del", self.master, check=False)


def addresses(result: dict[str, Any]) -> list[str]:
    return [ip["address"].split("/")[0] for ip in result.get("ips", [])]


# -- hypothesis strategies for fuzzed CNI input ------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
keys = st.sampled_from(["cniVersion", "name", "type", "ipam", "master", "mode", "mtu", "prevResult", "routes",
                        "ranges", "cni.dev/valid-attachments", "pool", "disableCheck"])
configs = st.fixed_dictionaries(
    {"cniVersion": st.sampled_from([*VERSIONS, "9.9.9", ""]) | json_values, "name": st.just("n") | json_values,
     "type": st.just("eksnet-ipam") | json_values},
    optional={"ipam": st.fixed_dictionaries({}, optional={
        "type": st.just("eksnet-ipam"), "ranges": st.just([[{"subnet": "10.0.0.0/24"}]]) | json_values,
        "routes": json_values, "pool": json_values}) | json_values,
        "master": json_values, "mode": json_values, "mtu": json_values, "prevResult": json_values,
        "cni.dev/valid-attachments": json_values})
stdins = (configs.map(lambda c: json.dumps(c).encode()) | st.dictionaries(keys, json_values).map(
    lambda c: json.dumps(c).encode()) | st.binary(max_size=64))
envs = st.fixed_dictionaries({"CNI_COMMAND": st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "x"])},
                             optional={"CNI_CONTAINERID": st.text(max_size=12), "CNI_IFNAME": st.text(max_size=20),
                                       "CNI_NETNS": st.text(max_size=12), "CNI_ARGS": st.text(max_size=20),
                                       "CNI_PATH": st.text(max_size=12)})
