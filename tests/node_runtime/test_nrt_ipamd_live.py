"""The live daemon under what real nodes do (issue 12 items 3 and 5, issue 11 item 4): pools that
change while pods live (reload and restart), systemd readiness over a real NOTIFY_SOCKET, bad input
that must get a clear answer, the caller's namespace, CHECK of routes and MAC, and every path where
a DEL succeeds without the daemon and reconciliation releases the lease afterwards."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from node_runtime.cni.protocol import call
from node_runtime.install import install
from node_runtime.ipamd.notify import notify
from node_runtime.lab import CNI, REFERENCE, Daemon, addresses, ipamd, sh


class LiveDaemon(Daemon):
    """A daemon with a config file, reconciliation on demand (grace 0) and its own environment."""

    def __init__(self, base: Path, bin_dir: Path, pools: dict | None = None, env: dict[str, str] | None = None,
                 cooldown: float = 0.2) -> None:
        self.config_file = base / "ipamd.json"
        base.mkdir(parents=True, exist_ok=True)
        self.write_config(pools or {})
        super().__init__(base, bin_dir, cooldown=cooldown,
                         extra=("--config", str(self.config_file), "--reconcile-grace", "0"), environ=env)

    def write_config(self, pools: dict) -> None:
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pools": pools}))
        os.replace(tmp, self.config_file)

    def reload(self) -> None:
        reloads = self.status()["reloads"]
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while self.status()["reloads"] == reloads:
            assert time.time() < deadline, "SIGHUP was not handled"
            time.sleep(0.02)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(ipamd(self.bin_dir)), *args, "--socket", self.socket],
                              capture_output=True, text=True, timeout=30)


@pytest.fixture
def live(tmp_path, cni_bin):
    made: list[LiveDaemon] = []

    def make(pools: dict | None = None, env: dict[str, str] | None = None, start: bool = True) -> LiveDaemon:
        d = LiveDaemon(tmp_path / f"d{len(made)}", cni_bin, pools, env)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in made:
        d.stop()


def macvlan(master: str, ipam: dict, name: str = "pods", version: str = "1.1.0") -> dict:
    return {"cniVersion": version, "name": name, "type": "eksnet-macvlan", "master": master,
            "ipam": dict({"type": "eksnet-ipam"}, **ipam)}


def last_octet(ip: str) -> int:
    return int(ip.rsplit(".", 1)[1])


# -- readiness (issue 11 item 4) ----------------------------------------------------------------------

@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(20)
    yield sock, path
    sock.close()


def messages(sock: socket.socket, until: str, within: float = 20) -> list[str]:
    """Datagrams received until one holds ``until`` (each as its newline-separated fields)."""
    got: list[str] = []
    deadline = time.time() + within
    while time.time() < deadline:
        sock.settimeout(max(deadline - time.time(), 0.01))
        try:
            fields = sock.recv(4096).decode().split("\n")
        except TimeoutError:
            break
        got += fields
        if until in fields:
            return got
    raise AssertionError(f"no {until} within {within}s; got {got}")


def test_ready_is_sent_once_the_daemon_serves_every_pool(live, notify_socket):
    sock, path = notify_socket
    d = live({"multus": {"ranges": [[{"subnet": "10.80.0.16/28", "delegated": True}]]}},
             env={"NOTIFY_SOCKET": path}, start=False)
    d.start(wait=False)
    got = messages(sock, "READY=1")
    assert d.ctl("status")[0] == 0  # when READY=1 arrives, the socket already answers
    status = d.status()
    assert status["ready"] and status["named_pools"]["multus"]["served"]
    assert status["named_pools"]["multus"]["sets"][0]["capacity"] == 16
    assert any(f.startswith("STATUS=serving 1 pool") for f in got)
    assert d.cli("ready").returncode == 0


def test_a_pool_that_cannot_be_served_withholds_ready_until_a_reload_fixes_it(live, notify_socket):
    sock, path = notify_socket
    d = live({"good": {"ranges": [[{"subnet": "10.81.0.0/28"}]]},
              "bad": {"ranges": [[{"subnet": "10.81.1.0/28", "rangeEnd": "10.81.2.1"}]]}},
             env={"NOTIFY_SOCKET": path})
    with pytest.raises(AssertionError, match="no READY=1"):
        messages(sock, "READY=1", within=1.5)
    status = d.status()
    assert not status["ready"] and status["named_pools"]["good"]["served"]
    assert not status["named_pools"]["bad"]["served"] and "rangeEnd" in status["named_pools"]["bad"]["error"]
    ready = d.cli("ready")
    assert ready.returncode == 1 and "'bad' is not served" in ready.stderr
    d.write_config({"good": {"ranges": [[{"subnet": "10.81.0.0/28"}]]},
                    "bad": {"ranges": [[{"subnet": "10.81.1.0/28", "rangeEnd": "10.81.1.9"}]]}})
    d.proc.send_signal(signal.SIGHUP)
    got = messages(sock, "READY=1")
    assert "RELOADING=1" in got and any(f.startswith("MONOTONIC_USEC=") for f in got)
    assert d.cli("ready").returncode == 0


def test_a_reload_of_an_unreadable_config_keeps_the_pools_served(live):
    d = live({"multus": {"ranges": [[{"subnet": "10.82.0.0/28"}]]}})
    d.config_file.write_text("{ not json")
    d.reload()
    status = d.status()
    assert "cannot read" in status["reload_error"] and status["named_pools"]["multus"]["served"]


def test_sd_notify_speaks_to_abstract_sockets_too(monkeypatch):
    name = f"eksnet-test-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("READY=1", "STATUS=x")
        assert sock.recv(100) == b"READY=1\nSTATUS=x"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notify("READY=1") is False  # not under systemd: nothing to do


def test_the_unit_waits_for_ready_and_reloads_with_sighup(tmp_path):
    install(str(tmp_path / "bin"), unit_dir=str(tmp_path / "units"), compile_=False, daemon_dir=str(tmp_path / "sbin"))
    unit = (tmp_path / "units" / "eksnet-ipamd.service").read_text().splitlines()
    assert "Type=notify" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "units" / "eksnet-ipamd.service")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "eksnet-ipamd.service" not in proc.stderr, proc.stderr


# -- pools that change (item 3) -------------------------------------------------------------------

@pytest.mark.netns
def test_a_second_prefix_added_while_pods_live_then_removed_on_reload_and_restart(live, cni_bin, namespaces,
                                                                                  underlay):
    first = {"subnet": "10.83.0.0/28", "rangeStart": "10.83.0.2", "rangeEnd": "10.83.0.3"}
    second = {"subnet": "10.83.0.16/28", "delegated": True}
    d = live({"multus": {"ranges": [[first]]}})
    cni = CNI(cni_bin, d.env())
    config = macvlan(underlay.master, {"pool": "multus", "routes": [{"dst": "10.83.0.0/24"}]})
    pods = {name: namespaces.add(name) for name in ("p1", "p2", "p3", "p4")}
    ips = {p: addresses(cni.ok("eksnet-macvlan", "ADD", config, container_id=p, netns=pods[p], ifname="net1"))[0]
           for p in ("p1", "p2")}
    rc, out = cni("eksnet-macvlan", "ADD", config, container_id="p3", netns=pods["p3"], ifname="net1")
    assert rc == 1 and out["code"] == 100  # the first range is full
    d.write_config({"multus": {"ranges": [[first, second]]}})  # the node got a second prefix
    d.reload()
    ips["p3"] = addresses(cni.ok("eksnet-macvlan", "ADD", config, container_id="p3", netns=pods["p3"],
                                 ifname="net1"))[0]
    assert 16 <= last_octet(ips["p3"]) < 32
    assert namespaces.ping(pods["p1"], ips["p3"]) and namespaces.ping(pods["p3"], ips["p2"])
    d.restart()
    assert d.status()["leases"] == 3 and d.status()["outside"] == 0
    d.write_config({"multus": {"ranges": [[second]]}})  # the first prefix went away
    d.reload()
    status = d.status()
    assert status["outside"] == 2 and {o["containerID"] for o in status["outside_leases"]} == {"p1", "p2"}
    assert "outside pool 'multus'" in d.log()
    assert "eksnet_ipam_outside_leases 2" in d.ctl("metrics")[1]
    assert namespaces.ping(pods["p1"], ips["p2"])  # live pods keep their addresses
    ip4 = addresses(cni.ok("eksnet-macvlan", "ADD", config, container_id="p4", netns=pods["p4"], ifname="net1"))[0]
    assert 16 <= last_octet(ip4) < 32 and ip4 != ips["p3"]
    cni.ok("eksnet-macvlan", "DEL", config, container_id="p1", netns=pods["p1"], ifname="net1")
    assert d.status()["outside"] == 1
    d.restart()  # the restart path: still reported
    assert d.status()["outside"] == 1 and d.status()["leases"] == 3
    cni.ok("eksnet-macvlan", "DEL", config, container_id="p2", netns=pods["p2"], ifname="net1")
    assert d.status()["outside"] == 0
    assert not (Path(d.state_dir) / "leases.db-journal").exists()


@pytest.mark.netns
def test_a_range_narrowed_in_the_network_config_under_a_live_lease(live, cni_bin, namespaces, underlay):
    d = live()
    cni = CNI(cni_bin, d.env())
    wide = macvlan(underlay.master, {"ranges": [[{"subnet": "10.84.0.0/24", "rangeEnd": "10.84.0.50"}]]})
    a, b = namespaces.add("a"), namespaces.add("b")
    ip_a = addresses(cni.ok("eksnet-macvlan", "ADD", wide, container_id="a", netns=a, ifname="net1"))[0]
    narrow = macvlan(underlay.master, {"ranges": [[{"subnet": "10.84.0.0/24", "rangeStart": "10.84.0.10",
                                                   "rangeEnd": "10.84.0.20"}]]})
    result_b = cni.ok("eksnet-macvlan", "ADD", narrow, container_id="b", netns=b, ifname="net1")
    ip_b = addresses(result_b)[0]
    assert 10 <= last_octet(ip_b) <= 20 and ip_b != ip_a  # no code 7 because the range changed
    assert d.status()["outside"] == 1
    assert namespaces.ping(a, ip_b)
    d.restart()
    cni.ok("eksnet-macvlan", "CHECK", dict(narrow, prevResult=result_b), container_id="b", netns=b, ifname="net1")
    cni.ok("eksnet-macvlan", "DEL", narrow, container_id="a", netns=a, ifname="net1")
    assert d.status()["outside"] == 0 and d.status()["leases"] == 1


# -- bad input gets a clear answer (item 5) ---------------------------------------------------------

def test_environment_values_that_are_not_utf8_never_break_metrics(live):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = live()
    d.stop()
    d.extra = (*d.extra, "--metrics-listen", f"127.0.0.1:{port}")
    d.start()
    body = json.dumps({"cniVersion": "1.1.0", "name": "n", "type": "eksnet-ipam",
                       "ipam": {"type": "eksnet-ipam", "ranges": [[{"subnet": "10.85.0.0/24"}]]}}).encode()
    for env in (b"CNI_COMMAND=\xff\xfeADD", b"CNI_COMMAND=ADD\0CNI_CONTAINERID=c\xff\0CNI_IFNAME=net1\0CNI_NETNS=/x",
                b"CNI_COMMAND=ADD\0CNI_CONTAINERID=c1\0CNI_IFNAME=net1\0CNI_NETNS=/run/netns/\xff\xfe",
                b"CNI_COMMAND=\xc3"):
        code, out = call(d.socket, b"cni:eksnet-ipam", env, body, timeout=10)
        assert code in (0, 1) and json.loads(out or b"{}") is not None
    assert d.status()["leases"] == 1  # the ADD with a non-UTF-8 CNI_NETNS was recorded
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'command="other"' in text and 'command="ADD"' in text
    assert d.ctl("metrics")[0] == 0
    assert d.ctl("reconcile")[0] == 0 and d.status()["leases"] == 0  # that namespace path does not exist


def test_miscased_keys_and_the_gateway_reservation_behave_as_host_local(live, cni_bin, tmp_path):
    d = live()
    cni = CNI(cni_bin, d.env())

    networks = iter(range(100))

    def first_two(plugin: str, ipam: dict) -> list[str]:
        config = {"cniVersion": "1.0.0", "name": f"hl{next(networks)}", "type": plugin,
                  "IPAM": dict(ipam, type=plugin, dataDir=str(tmp_path / "hl"))}
        return [addresses(cni.ok(plugin, "ADD", config, container_id=f"c{i}", netns=f"/run/netns/c{i}",
                                 ifname="net1"))[0] for i in range(2)]

    miscased = {"Ranges": [[{"Subnet": "10.86.0.0/24", "rangestart": "10.86.0.10", "RANGEEND": "10.86.0.11"}]],
                "vendorExtension": {"x": 1}}
    assert first_two("eksnet-ipam", miscased) == first_two("host-local", miscased) == ["10.86.0.10", "10.86.0.11"]
    plain = {"ranges": [[{"subnet": "10.87.0.0/29"}]]}  # no gateway: host-local claims .1
    assert first_two("eksnet-ipam", plain) == first_two("host-local", plain) == ["10.87.0.2", "10.87.0.3"]
    v6 = {"ranges": [[{"subnet": "fd87::/120"}]]}
    assert first_two("eksnet-ipam", v6) == first_two("host-local", v6) == ["fd87::2", "fd87::3"]
    assert "ignoring unknown key 'vendorExtension'" in d.log()
    assert (REFERENCE / "host-local").exists()


def test_a_delegated_prefix_hands_out_all_sixteen_addresses(live, cni_bin):
    d = live({"eni1": {"delegated": True, "ranges": [[{"subnet": "10.88.0.32/28"}]]}})
    cni = CNI(cni_bin, d.env())
    config = {"cniVersion": "1.0.0", "name": "deleg", "type": "eksnet-ipam", "ipam": {"type": "eksnet-ipam",
                                                                                        "pool": "eni1"}}
    got = {addresses(cni.ok("eksnet-ipam", "ADD", config, container_id=f"c{i}", netns=f"/run/netns/c{i}",
                            ifname="net1"))[0] for i in range(16)}
    assert got == {f"10.88.0.{i}" for i in range(32, 48)}


@pytest.mark.netns
def test_master_is_looked_up_in_the_callers_namespace(live, cni_bin, namespaces):
    d = live()
    node = namespaces.add("node")
    node_name = os.path.basename(node)
    master = f"ekm{os.getpid() % 100000}"[:15]
    namespaces.run(node, "ip", "link", "add", master, "type", "veth", "peer", "name", master + "p")
    namespaces.run(node, "ip", "link", "set", master, "up")
    assert sh("ip", "link", "show", master, check=False).returncode != 0  # not in the daemon's namespace
    pod = namespaces.add("pod")
    config = macvlan(master, {"ranges": [[{"subnet": "10.89.0.0/24"}]]})
    env = CNI(cni_bin, d.env()).env("ADD", "c1", pod, "net1")
    proc = subprocess.run(["ip", "netns", "exec", node_name, str(cni_bin / "eksnet-macvlan")],
                          input=json.dumps(config).encode(), env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    link = namespaces.run(pod, "ip", "-d", "link", "show", "net1").stdout
    assert "macvlan" in link
    assert d.status()["leases"] == 1  # served by the daemon, not the in-process fallback


@pytest.mark.netns
def test_check_fails_when_a_route_is_gone_or_the_mac_changed(live, cni_bin, namespaces, underlay):
    d = live()
    cni = CNI(cni_bin, d.env())
    config = macvlan(underlay.master, {"ranges": [[{"subnet": "10.90.0.0/24", "gateway": "10.90.0.1"}]],
                                       "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.0.2.0/24", "gw": "10.90.0.9"}]})
    ns = namespaces.add("p")
    result = cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    checked = dict(config, prevResult=result)
    cni.ok("eksnet-macvlan", "CHECK", checked, container_id="c1", netns=ns, ifname="net1")
    namespaces.run(ns, "ip", "route", "del", "192.0.2.0/24")
    rc, out = cni("eksnet-macvlan", "CHECK", checked, container_id="c1", netns=ns, ifname="net1")
    assert rc == 1 and out["code"] == 104 and "192.0.2.0/24 via 10.90.0.9" in out["details"]
    namespaces.run(ns, "ip", "route", "add", "192.0.2.0/24", "via", "10.90.0.9", "dev", "net1")
    cni.ok("eksnet-macvlan", "CHECK", checked, container_id="c1", netns=ns, ifname="net1")
    namespaces.run(ns, "ip", "link", "set", "net1", "address", "02:11:22:33:44:55")
    rc, out = cni("eksnet-macvlan", "CHECK", checked, container_id="c1", netns=ns, ifname="net1")
    assert rc == 1 and out["code"] == 104 and "MAC" in out["details"]


# -- a DEL without the daemon: reconciliation releases the lease (item 5) -----------------------------

def _released_by_reconciliation(d: LiveDaemon, namespaces, ns: str) -> None:
    assert d.status()["leases"] == 1, "the DEL that ran without the daemon left the lease"
    assert json.loads(d.ctl("reconcile")[1]) == {"released": 0}  # the pod's namespace still exists
    namespaces.delete(ns)
    assert json.loads(d.ctl("reconcile")[1]) == {"released": 1}
    assert d.status()["leases"] == 0


@pytest.mark.netns
def test_del_with_the_daemon_down_then_reconciliation_releases(live, cni_bin, namespaces, underlay):
    d = live()
    cni = CNI(cni_bin, d.env())
    config = macvlan(underlay.master, {"ranges": [[{"subnet": "10.91.0.0/24"}]]})
    ns = namespaces.add("p")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    d.stop()
    assert cni("eksnet-macvlan", "DEL", config, container_id="c1", netns=ns, ifname="net1") == (0, None)
    d.start()
    _released_by_reconciliation(d, namespaces, ns)


@pytest.mark.netns
def test_del_too_large_for_the_daemon_then_reconciliation_releases(live, cni_bin, namespaces, underlay):
    d = live()
    cni = CNI(cni_bin, d.env())
    config = macvlan(underlay.master, {"ranges": [[{"subnet": "10.92.0.0/24"}]]})
    ns = namespaces.add("p")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    huge = dict(config, padding="x" * (5 * 1024 * 1024))
    rc, out = cni("eksnet-macvlan", "DEL", huge, container_id="c1", netns=ns, ifname="net1")
    assert rc == 0, out
    _released_by_reconciliation(d, namespaces, ns)


@pytest.mark.netns
def test_del_while_the_daemon_is_killed_mid_request_then_reconciliation_releases(live, cni_bin, namespaces,
                                                                                 underlay):
    d = live()
    cni = CNI(cni_bin, d.env())
    config = macvlan(underlay.master, {"ranges": [[{"subnet": "10.93.0.0/24"}]]})
    ns = namespaces.add("p")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="c1", netns=ns, ifname="net1")
    d.proc.send_signal(signal.SIGSTOP)  # it accepts (the kernel queues the connection) but never answers
    proc = subprocess.Popen([str(cni_bin / "eksnet-macvlan")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=cni.env("DEL", "c1", ns, "net1"))
    proc.stdin.write(json.dumps(config).encode())
    proc.stdin.close()
    time.sleep(0.5)
    assert proc.poll() is None  # waiting for the daemon's answer
    d.kill9()
    assert proc.wait(60) == 0 and proc.stdout.read() == b""
    d.start()
    _released_by_reconciliation(d, namespaces, ns)


def test_a_reload_asked_for_while_the_daemon_starts_is_applied_not_fatal(live):
    d = live({"p": {"ranges": [[{"subnet": "10.94.0.0/28"}]]}}, start=False)
    d.start(wait=False)
    deadline = time.time() + 20
    while not _catches_sighup(d.proc.pid):  # the interpreter is up; the loop is not serving yet
        assert d.proc.poll() is None and time.time() < deadline, d.log()
        time.sleep(0.001)
    assert d.ctl("status")[0] != 0
    d.write_config({"p": {"ranges": [[{"subnet": "10.94.0.0/28"}, {"subnet": "10.94.0.16/28"}]]}})
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 20
    while d.ctl("status")[0] != 0:
        assert d.proc.poll() is None, d.log()
        assert time.time() < deadline
        time.sleep(0.02)
    deadline = time.time() + 10
    while len(d.status()["named_pools"]["p"]["sets"][0]["ranges"]) != 2:
        assert time.time() < deadline, "the second range never applied"
        time.sleep(0.02)


def _catches_sighup(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & 1)  # bit 0: signal 1, SIGHUP
    return False
