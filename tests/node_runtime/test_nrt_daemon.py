"""eksnet-ipam through its executable and the daemon, as a runtime calls it: every spec version
and command, concurrency, crash safety, cooldown, GC, reconciliation, status and metrics."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from cni_strategies import VERSIONS

from node_runtime.lab import CNI, Daemon, addresses, ipamd


def conf(version: str = "1.1.0", name: str = "net", ranges=None, **extra) -> dict:
    return {"cniVersion": version, "name": name, "type": "eksnet-ipam",
            "ipam": {"type": "eksnet-ipam", "ranges": ranges or [[{"subnet": "10.40.0.0/24", "gateway": "10.40.0.1"}],
                                                                [{"subnet": "fd40::/80"}]],
                     "routes": [{"dst": "0.0.0.0/0"}]}, **extra}


@pytest.fixture
def cni(cni_bin, daemon) -> CNI:
    return CNI(cni_bin, daemon.env())


def add(cni: CNI, cid: str, config: dict | None = None, ifname: str = "net1") -> dict:
    return cni.ok("eksnet-ipam", "ADD", config or conf(), container_id=cid, netns=f"/run/netns/{cid}", ifname=ifname)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_version_add_check_del_and_repeated_del(cni, daemon, version):
    config = conf(version)
    result = add(cni, "c1", config)
    assert result["cniVersion"] == version
    assert result["ips"][0]["address"].startswith("10.40.0.") and result["ips"][0]["gateway"] == "10.40.0.1"
    assert ("version" in result["ips"][0]) == (version < "1.0.0")
    assert result["routes"] == [{"dst": "0.0.0.0/0"}]
    if version >= "0.4.0":
        cni.ok("eksnet-ipam", "CHECK", dict(config, prevResult=result), container_id="c1", netns="/run/netns/c1",
               ifname="net1")
    for _ in range(2):
        assert cni("eksnet-ipam", "DEL", dict(config, prevResult=result), container_id="c1", ifname="net1") == (0, None)
    assert daemon.status()["leases"] == 0


def test_repeated_add_returns_the_same_addresses(cni):
    assert addresses(add(cni, "c1")) == addresses(add(cni, "c1"))


def test_check_of_an_unknown_attachment_is_code_3(cni):
    rc, out = cni("eksnet-ipam", "CHECK", dict(conf(), prevResult={"ips": []}), container_id="nobody",
                  netns="/run/netns/x", ifname="net1")
    assert rc == 1 and out["code"] == 3


def test_del_of_an_unknown_container_succeeds(cni):
    assert cni("eksnet-ipam", "DEL", conf(), container_id="never-added", ifname="net1") == (0, None)


def test_fifty_concurrent_adds_get_fifty_distinct_addresses(cni, daemon):
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: add(cni, f"c{i}"), range(50)))
    v4 = [addresses(r)[0] for r in results]
    v6 = [addresses(r)[1] for r in results]
    assert len(set(v4)) == 50 and len(set(v6)) == 50
    assert daemon.status()["leases"] == 100


def test_kill_9_during_a_burst_then_restart_leaves_no_duplicate_and_gc_leaves_no_leak(cni, daemon):
    config = conf(ranges=[[{"subnet": "10.41.0.0/24"}]])
    for i in range(10):
        add(cni, f"old{i}", config)

    def churn(i: int):
        rc, out = cni("eksnet-ipam", "ADD", config, container_id=f"b{i}", netns=f"/run/netns/b{i}", ifname="net1")
        if i % 3 == 0:
            cni("eksnet-ipam", "DEL", config, container_id=f"old{i % 10}", ifname="net1")
        return f"b{i}", rc, out

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(churn, i) for i in range(60)]
        while sum(f.done() for f in futures) < 15:
            time.sleep(0.005)
        daemon.kill9()
        outcomes = [f.result() for f in futures]
    for _, rc, out in outcomes:  # after the kill: "try again later", never a traceback
        assert rc == 0 or out["code"] == 11, out
    daemon.start()
    status = daemon.status()
    held: dict[str, str] = {}
    for cid, rc, out in outcomes:
        if rc == 0:  # every answered ADD is still leased, to the same address, and unique
            again = add(cni, cid, config)
            assert addresses(again) == addresses(out)
            assert addresses(out)[0] not in held
            held[addresses(out)[0]] = cid
    assert daemon.status()["leases"] == status["leases"]
    for i in range(10):  # new ADDs after the restart never get an address someone holds
        fresh = addresses(add(cni, f"after{i}", config))[0]
        assert fresh not in held
        held[fresh] = f"after{i}"
    valid = [{"containerID": cid, "ifname": "net1"} for cid in held.values()]
    cni.ok("eksnet-ipam", "GC", dict(config, **{"cni.dev/valid-attachments": valid}))
    assert daemon.status()["leases"] == len(held)


def test_gc_accepts_the_older_attachments_key(cni, daemon):
    add(cni, "keep")
    add(cni, "drop")
    cni.ok("eksnet-ipam", "GC", conf(**{"cni.dev/attachments": [{"containerID": "keep", "ifname": "net1"}]}))
    assert daemon.status()["attachments"] == 1


def test_a_released_address_waits_for_its_cooldown(cni_bin, tmp_path):
    d = Daemon(tmp_path / "d", cni_bin, cooldown=30)
    d.start()
    try:
        cni = CNI(cni_bin, d.env())
        tiny = conf(ranges=[[{"subnet": "10.42.0.0/29", "rangeStart": "10.42.0.2", "rangeEnd": "10.42.0.3"}]])
        first, second = add(cni, "a", tiny), add(cni, "b", tiny)
        cni.ok("eksnet-ipam", "DEL", tiny, container_id="a", ifname="net1")
        rc, out = cni("eksnet-ipam", "ADD", tiny, container_id="c", netns="/run/netns/c", ifname="net1")
        assert rc == 1 and out["code"] == 11 and "cooling" in out["details"]
        assert addresses(first) != addresses(second)
    finally:
        d.stop()


def test_a_full_pool_is_a_plugin_error(cni):
    tiny = conf(ranges=[[{"subnet": "10.43.0.0/31"}]])
    add(cni, "a", tiny)
    add(cni, "b", tiny)
    rc, out = cni("eksnet-ipam", "ADD", tiny, container_id="c", netns="/run/netns/c", ifname="net1")
    assert rc == 1 and out["code"] == 100


def test_without_the_daemon_del_succeeds_add_says_try_again_and_status_says_unavailable(cni_bin, tmp_path):
    cni = CNI(cni_bin, {"EKSNET_IPAMD_SOCKET": str(tmp_path / "absent.sock")})
    assert cni("eksnet-ipam", "DEL", conf(), container_id="c1", ifname="net1") == (0, None)
    rc, out = cni("eksnet-ipam", "ADD", conf(), container_id="c1", netns="/run/netns/c1", ifname="net1")
    assert rc == 1 and out["code"] == 11
    rc, out = cni("eksnet-ipam", "STATUS", conf())
    assert rc == 1 and out["code"] == 50


def test_status_succeeds_with_the_daemon_up(cni):
    assert cni("eksnet-ipam", "STATUS", conf()) == (0, None)


def test_invalid_ranges_are_code_7(cni):
    rc, out = cni("eksnet-ipam", "ADD", conf(ranges=[[{"subnet": "10.0.0.0/33"}]]), container_id="c",
                  netns="/run/netns/c", ifname="net1")
    assert rc == 1 and out["code"] == 7


def test_reconciliation_releases_leases_of_vanished_namespaces(cni_bin, tmp_path):
    d = Daemon(tmp_path / "d", cni_bin, extra=("--reconcile-grace", "0"))
    d.start()
    try:
        cni = CNI(cni_bin, d.env())
        alive = tmp_path / "alive-ns"
        alive.write_text("")
        cni.ok("eksnet-ipam", "ADD", conf(), container_id="alive", netns=str(alive), ifname="net1")
        cni.ok("eksnet-ipam", "ADD", conf(), container_id="gone", netns=str(tmp_path / "gone-ns"), ifname="net1")
        assert json.loads(d.ctl("reconcile")[1]) == {"released": 1}
        assert d.status()["attachments"] == 1
    finally:
        d.stop()


def test_the_socket_is_private(socket_daemon):
    daemon = socket_daemon
    mode = os.stat(daemon.socket).st_mode
    assert stat.S_ISSOCK(mode) and mode & 0o777 == 0o600


def test_metrics_are_served_over_http_in_prometheus_format(cni_bin, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = Daemon(tmp_path / "d", cni_bin, extra=("--metrics-listen", f"127.0.0.1:{port}"))
    d.start()
    try:
        add(CNI(cni_bin, d.env()), "c1")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "eksnet_ipam_allocation_seconds_count 1" in text
        assert "eksnet_ipam_adds_total 1" in text
        assert d.ctl("metrics")[1].startswith("# HELP")
    finally:
        d.stop()


def test_status_cli_prints_the_daemons_status(daemon_bin, socket_daemon):
    daemon = socket_daemon
    out = subprocess.run([str(ipamd(daemon_bin)), "status", "--socket", daemon.socket],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and json.loads(out.stdout)["leases"] == 0


def test_a_bad_daemon_config_is_a_clear_error(daemon_bin, tmp_path):
    bad = tmp_path / "ipamd.json"
    bad.write_text(json.dumps({"cooldown_seconds": -1}))
    out = subprocess.run([str(ipamd(daemon_bin)), "--config", str(bad)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2 and "cooldown_seconds" in out.stderr


@pytest.mark.parametrize("stdin", [b"", b"{", b"[]", b'{"cniVersion": "1.0.0"}', b"\x00\xff",
                                   json.dumps({"cniVersion": "1.0.0", "name": "n", "type": "eksnet-ipam",
                                               "ipam": {"ranges": "nope"}}).encode()])
def test_garbage_through_the_executable_gets_a_cni_error_not_a_traceback(cni, stdin):
    proc = cni.raw("eksnet-ipam", cni.env("ADD", "c1", "/run/netns/c1", "net1"), stdin)
    assert proc.returncode == 1 and b"Traceback" not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["code"] in (6, 7)


def test_a_second_daemon_on_the_same_socket_refuses_to_start(daemon_bin, socket_daemon, tmp_path):
    daemon = socket_daemon
    second = Daemon(tmp_path / "second", daemon_bin)
    second.socket = daemon.socket
    proc = subprocess.run(second.argv(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "another eksnet-ipamd" in proc.stderr
    assert daemon.status()["leases"] == 0  # the first one still serves


def test_a_request_that_is_not_the_wire_format_gets_an_error(socket_daemon):
    daemon = socket_daemon
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(daemon.socket)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        answer = s.recv(4096)
    assert answer[0] == 1 and json.loads(answer[1:])["code"] == 6


def test_fuzzed_requests_to_the_daemon_always_get_a_valid_cni_answer(socket_daemon):
    """Hypothesis drives the daemon directly over its socket (no process start per example)."""
    daemon = socket_daemon
    from cni_strategies import envs, stdins
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from node_runtime.cni.protocol import call
    from node_runtime.cni.types import OUR_CODES, SPEC_CODES

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(env=envs, stdin=stdins, plugin=st.sampled_from(["eksnet-ipam", "eksnet-macvlan", "eksnet-ipvlan", "nope"]))
    def check(env, stdin, plugin):
        block = b"\0".join(f"{k}={v}".encode("utf-8", "surrogatepass").replace(b"\0", b"") for k, v in env.items())
        code, out = call(daemon.socket, b"cni:" + plugin.encode(), block, stdin, timeout=30)
        assert code in (0, 1)
        if code == 1:
            error = json.loads(out)
            assert error["code"] in SPEC_CODES | OUR_CODES - {999}, error
        elif out.strip():
            json.loads(out)

    check()
    assert daemon.ctl("status")[0] == 0  # still serving
