"""A real container runtime drives our plugins: podman 4 with its CNI backend calls VERSION, ADD
(with CNI_ARGS) and DEL with the cached result, as kubelet/Multus would. Two containers on an
eksnet-macvlan + eksnet-ipam network ping each other over IPv4 and IPv6."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.netns import FORWARDERS

from node_runtime.lab import Daemon, install_bin

NETWORK = "eksnt-podnet"


class Podman:
    def __init__(self, base: Path, bin_dir: Path) -> None:
        self.base = base
        (base / "net").mkdir(parents=True)
        (base / "containers.conf").write_text(f"""
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin_dir}", "/usr/lib/cni"]
network_config_dir = "{base / 'net'}"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{base / 'events.log'}"
tmp_dir = "{base / 'tmp'}"
""")
        (base / "storage.conf").write_text(f"""
[storage]
driver = "vfs"
graphroot = "{base / 'graph'}"
runroot = "{base / 'run'}"
""")
        self.env = dict(os.environ, CONTAINERS_CONF=str(base / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(base / "storage.conf"))

    def __call__(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and proc.returncode:
            raise AssertionError(f"podman {' '.join(args)}: {proc.stderr[-2000:]}")
        return proc.stdout

    def image(self) -> str:
        root = self.base / "rootfs"
        (root / "bin").mkdir(parents=True)
        (root / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
        (root / "bin" / "busybox").chmod(0o755)
        subprocess.run(["tar", "-C", str(root), "-cf", str(self.base / "rootfs.tar"), "bin"], check=True)
        self("import", str(self.base / "rootfs.tar"), "eksnt-busybox")
        return "eksnt-busybox"


@pytest.fixture(params=FORWARDERS)
def podman(request, tmp_path, underlay):
    forwarder = request.param
    bin_dir = tmp_path / "bin"
    daemon = Daemon(tmp_path / "ipamd", bin_dir)
    # The socket is fixed at install time: podman's cleanup process does not inherit our environment.
    install_bin(bin_dir, forwarder, socket=daemon.socket, compile_=False)
    daemon.start()
    pm = Podman(tmp_path / "podman", bin_dir)
    conflist = {"cniVersion": "1.0.0", "name": NETWORK, "plugins": [{
        "type": "eksnet-macvlan", "master": underlay.master,
        "ipam": {"type": "eksnet-ipam", "ranges": [[{"subnet": "10.67.0.0/24"}], [{"subnet": "fd67::/80"}]]}}]}
    (pm.base / "net" / f"{NETWORK}.conflist").write_text(json.dumps(conflist))
    pm.daemon = daemon
    yield pm
    pm("rm", "-a", "-f", "-t", "0", check=False)
    pm("rmi", "-a", "-f", check=False)
    daemon.stop()


def addresses_of(podman: Podman, container: str) -> tuple[str, str]:
    shown = podman("exec", container, "/bin/busybox", "ip", "-o", "addr", "show", "eth0").split()
    return (next(w.split("/")[0] for w in shown if w.startswith("10.67.0.")),
            next(w.split("/")[0] for w in shown if w.startswith("fd67::")))


@pytest.mark.netns
def test_podman_containers_on_our_network_ping_each_other_and_release_on_removal(podman):
    image = podman.image()
    # Long-running containers and exec: a container's own exit is noticed by conmon's cleanup
    # process, which does not get this test's CONTAINERS_CONF (podman then waits 20 s).
    a, b = (podman("run", "-d", "--network", NETWORK, image, "/bin/busybox", "sleep", "120").strip() for _ in "ab")
    assert podman.daemon.status()["attachments"] == 2
    for source, target in ((a, b), (b, a)):
        for flag, address in zip(("-4", "-6"), addresses_of(podman, target), strict=True):
            out = podman("exec", source, "/bin/busybox", "ping", flag, "-c", "1", "-W", "2", address)
            assert "1 packets received" in out
    podman("rm", "-f", "-t", "0", a, b)
    assert podman.daemon.status()["attachments"] == 0
