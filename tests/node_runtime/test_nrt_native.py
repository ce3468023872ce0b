"""The native forwarder against the Python one and the protocol module: the same bytes on the wire
for any environment and stdin, the same answers, the same refusals (too large, truncated), the same
fallback when the daemon is gone; its constants are protocol.py's; both architectures are static
ELF executables; the installer picks the node's, off the CNI bin dir for the daemon."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node_runtime.cni import protocol
from node_runtime.cni.protocol import Code
from node_runtime.install import (
    DEFAULT_DAEMON_DIR,
    PLUGIN_TYPES,
    Forwarder,
    bundle,
    bundled_arches,
    install,
    settings_block,
    unit_text,
    with_settings,
)
from node_runtime.lab import CNI, install_bin, ipamd
from node_runtime.native.build import ARCHES, BUILD, HEADER, SOURCE, binary_path, read_elf


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> dict[str, Path]:
    """Both forwarders installed side by side, with the socket they use by default."""
    base = tmp_path_factory.mktemp("fwd")
    sock = str(base / "default.sock")
    return {f: install_bin(base / f, f, socket=sock, compile_=False) for f in ("python", "native")}


class FakeDaemon:
    """A unix socket that records each request as the daemon would read it and sends a set answer."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.requests: list[bytes] = []
        self.answer = b"\x00"
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                chunks = []
                while chunk := conn.recv(1 << 20):
                    chunks.append(chunk)
                self.requests.append(b"".join(chunks))
                conn.sendall(self.answer)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def fake(tmp_path):
    d = FakeDaemon(tmp_path / "fake.sock")
    yield d
    d.close()


def run(exe: Path, env: dict, stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe)], input=stdin, env=env, capture_output=True, timeout=60)


env_keys = st.sampled_from(["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH",
                            "CNI_X", "CNIX", "cni_lower", "PATH", "OTHER"])
env_values = st.binary(max_size=24).filter(lambda b: b"\0" not in b)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(env=st.dictionaries(env_keys, env_values, max_size=8), stdin=st.binary(max_size=300),
       code=st.integers(0, 255), out=st.binary(max_size=200), plugin=st.sampled_from(PLUGIN_TYPES))
def test_both_forwarders_send_the_same_bytes_and_print_the_same_answer(both, tmp_path_factory, env, stdin, code,
                                                                        out, plugin):
    """Raw bytes both ways (not UTF-8 either), CNI_* forwarded in environment order, the rest not."""
    fake = FakeDaemon(tmp_path_factory.mktemp("f") / "s")
    try:
        fake.answer = bytes([code]) + out
        full = {k.encode(): v for k, v in env.items()}
        full[protocol.SOCKET_ENV.encode()] = fake.path.encode()
        expected = protocol.encode(b"cni:" + plugin.encode(), b"\0".join(
            k + b"=" + v for k, v in full.items() if k.startswith(b"CNI_")), stdin)
        for forwarder, bin_dir in both.items():
            proc = run(bin_dir / plugin, full, stdin)
            assert (proc.returncode, proc.stdout) == (code, out), (forwarder, proc.stderr)
        assert fake.requests == [expected, expected]
    finally:
        fake.close()


def test_the_header_the_build_used_is_the_protocol_modules():
    assert (BUILD / HEADER).read_text() == protocol.c_header(), "protocol.py changed: run `make native`"
    assert all(binary_path(a).stat().st_mtime >= SOURCE.stat().st_mtime for a in ARCHES), "run `make native`"


def test_the_c_constants_are_the_protocol_modules(tmp_path):
    """Compile a probe against the generated header and compare what C sees with protocol.py."""
    names = [c.name for c in Code]
    probe = tmp_path / "probe.c"
    probe.write_text('#include <stdio.h>\n#include "protocol.h"\nint main(void) {\n'
                     '  const char m[] = EKSNET_MAGIC; for (unsigned i = 0; i < sizeof(m) - 1; i++) printf("%02x", '
                     '(unsigned char)m[i]);\n'
                     '  printf(" %d %u %s %s %s %s %d %s %d", EKSNET_MAGIC_LEN, EKSNET_MAX_REQUEST, EKSNET_DEFAULT_SOCKET,'
                     ' EKSNET_SOCKET_ENV, EKSNET_ENV_PREFIX, EKSNET_KIND_CNI, EKSNET_TIMEOUT_SECONDS, EKSNET_LATEST,'
                     ' EKSNET_SETTINGS_SIZE);\n'
                     '  const char *v[] = EKSNET_SUPPORTED_VERSIONS; for (int i = 0; v[i]; i++) printf(" v=%s", v[i]);\n'
                     + "".join(f'  printf(" {n}=%d", EKSNET_CODE_{n});\n' for n in names)
                     + "  return 0;\n}\n")
    exe = tmp_path / "probe"
    cc = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-musl", "-static", "-I",
                         str(BUILD), "-o", str(exe), str(probe)], capture_output=True, text=True, timeout=300)
    assert cc.returncode == 0, cc.stderr
    seen = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert seen[:10] == [protocol.MAGIC.hex(), str(len(protocol.MAGIC)), str(protocol.MAX_REQUEST),
                         protocol.DEFAULT_SOCKET, protocol.SOCKET_ENV, protocol.ENV_PREFIX, protocol.KIND_CNI.decode(),
                         str(int(protocol.TIMEOUT)), protocol.LATEST, str(protocol.SETTINGS_SIZE)]
    assert [s[2:] for s in seen if s.startswith("v=")] == list(protocol.SUPPORTED_VERSIONS)
    assert dict(s.split("=") for s in seen[10:] if not s.startswith("v=")) == {n: str(int(Code[n])) for n in names}


@pytest.mark.parametrize("arch", ARCHES)
def test_each_architecture_is_a_static_elf_executable_for_it(arch):
    """The aarch64 build cannot run on this x86_64 machine: its ELF header says what it is."""
    info = read_elf(binary_path(arch))
    assert (info.machine, info.bits, info.little_endian, info.executable, info.static) == (arch, 64, True, True, True)


def test_a_request_over_the_limit_is_refused_as_too_large_by_both_and_one_at_the_limit_is_sent(both, fake):
    env = {"CNI_COMMAND": "ADD", protocol.SOCKET_ENV: fake.path}
    kind, block = b"cni:eksnet-ipam", b"CNI_COMMAND=ADD"
    at_limit = b"x" * (protocol.MAX_REQUEST - protocol.request_size(kind, block, b""))
    answers = set()
    for forwarder, bin_dir in both.items():
        proc = run(bin_dir / "eksnet-ipam", env, at_limit)
        assert proc.returncode == 0, (forwarder, proc.stdout[-300:])
        assert len(fake.requests[-1]) == protocol.MAX_REQUEST
        proc = run(bin_dir / "eksnet-ipam", env, b'{"cniVersion": "0.4.0", "pad": "' + at_limit + b'"}')
        error = json.loads(proc.stdout)
        assert proc.returncode == 1 and error["code"] == Code.REQUEST_TOO_LARGE == 105, forwarder
        assert error["msg"] == "request too large" and error["cniVersion"] == "0.4.0"
        answers.add(proc.stdout)
    assert len(fake.requests) == 2 and len(answers) == 1  # refused before sending, byte-identical answers


def test_the_daemon_refuses_oversized_and_truncated_requests_by_name(socket_daemon):
    daemon = socket_daemon
    too_large = protocol.call(daemon.socket, b"cni:eksnet-ipam", b"CNI_COMMAND=ADD", b" " * protocol.MAX_REQUEST)
    assert too_large[0] == 1 and json.loads(too_large[1])["code"] == Code.REQUEST_TOO_LARGE
    with socket.socket(socket.AF_UNIX) as s:  # refused from the announced length: the rest is never read
        s.connect(daemon.socket)
        s.sendall(protocol.MAGIC + (protocol.MAX_REQUEST).to_bytes(4, "big"))
        assert json.loads(s.recv(4096)[1:])["code"] == Code.REQUEST_TOO_LARGE
    full = protocol.encode(b"cni:eksnet-ipam", b"CNI_COMMAND=VERSION", b"{}")
    for cut in (3, len(protocol.MAGIC) + 2, len(full) - 1):
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(daemon.socket)
            s.sendall(full[:cut])
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(4096)
        error = json.loads(answer[1:])
        assert answer[0] == 1 and error["code"] == Code.REQUEST_TRUNCATED and "truncated" in error["msg"], cut
    assert daemon.ctl("status")[0] == 0


@pytest.mark.netns
def test_an_oversized_del_still_tears_the_pod_down(cni_bin, daemon, namespaces, underlay):
    cni = CNI(cni_bin, daemon.env())
    config = {"cniVersion": "1.0.0", "name": "big", "type": "eksnet-macvlan", "master": underlay.master,
              "ipam": {"type": "eksnet-ipam", "ranges": [[{"subnet": "10.68.0.0/24"}]]}}
    ns = namespaces.add("big")
    cni.ok("eksnet-macvlan", "ADD", config, container_id="big", netns=ns, ifname="net1")
    padded = dict(config, padding="x" * protocol.MAX_REQUEST)
    assert cni("eksnet-macvlan", "DEL", padded, container_id="big", netns=ns, ifname="net1") == (0, None)
    assert namespaces.run(ns, "ip", "link", "show", "net1", check=False).returncode != 0


def test_an_unpatched_build_without_a_daemon_fails_soft(tmp_path):
    """No fallback installed (a bare build): DEL succeeds, STATUS is 50, anything else 11."""
    exe = tmp_path / "eksnet-ipam"
    shutil.copy(binary_path(os.uname().machine), exe)
    env = {"CNI_COMMAND": "DEL", protocol.SOCKET_ENV: str(tmp_path / "none.sock")}
    config = b'{"cniVersion": "1.0.0", "name": "n", "type": "eksnet-ipam"}'
    assert run(exe, env, config).returncode == 0
    for command, code in (("STATUS", Code.NOT_AVAILABLE), ("ADD", Code.TRY_AGAIN_LATER)):
        proc = run(exe, dict(env, CNI_COMMAND=command), config)
        assert proc.returncode == 1 and json.loads(proc.stdout) == {
            "cniVersion": "1.0.0", "code": code, "msg": "eksnet-ipamd is not reachable",
            **({"details": "start eksnet-ipamd.service"} if code == Code.TRY_AGAIN_LATER else {})}


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from(["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC", "bogus"]),
       stdin=st.sampled_from([b"", b"{", b'{"cniVersion": "1.1.0", "name": "n", "type": "eksnet-ipam", '
                              b'"ipam": {"ranges": [[{"subnet": "10.0.0.0/24"}]]}}',
                              b'{"cniVersion": "0.4.0", "name": "n", "type": "eksnet-ipam"}']) | st.binary(max_size=40))
def test_without_the_daemon_both_fall_back_to_the_same_answers(both, command, stdin):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_IFNAME": "net1", "CNI_NETNS": "/run/netns/c1",
           protocol.SOCKET_ENV: "/nonexistent/ipamd.sock"}
    python, native = (run(both[f] / "eksnet-ipam", env, stdin) for f in ("python", "native"))
    assert (native.returncode, native.stdout) == (python.returncode, python.stdout)
    assert b"Traceback" not in native.stderr + python.stderr


def test_each_native_copy_carries_its_socket_and_fallback(both):
    runtime = both["native"] / "eksnet-runtime"
    block = settings_block(str(both["native"].parent / "default.sock"), str(runtime / "fallback"))
    for name in PLUGIN_TYPES:
        assert block in (both["native"] / name).read_bytes()
    assert b"socket=" not in binary_path(os.uname().machine).read_bytes()  # the build itself is not patched


def test_the_installed_socket_is_used_when_the_environment_names_none(both, tmp_path):
    fake = FakeDaemon(both["native"].parent / "default.sock")
    try:
        fake.answer = b"\x00ok"
        for bin_dir in both.values():
            assert run(bin_dir / "eksnet-ipvlan", {"CNI_COMMAND": "VERSION"}, b"{}").stdout == b"ok"
        assert len(fake.requests) == 2
    finally:
        fake.close()
        os.unlink(fake.path)


def test_settings_that_cannot_fit_or_a_file_that_is_not_a_forwarder_are_refused():
    with pytest.raises(ValueError, match="too long"):
        settings_block("/" + "s" * protocol.SETTINGS_SIZE, "/f")
    with pytest.raises(ValueError, match="not an eksnet native forwarder"):
        with_settings(Path("/bin/true").read_bytes(), "/s", "/f")


def test_the_installer_picks_the_nodes_architecture(tmp_path):
    install(str(tmp_path / "arm"), compile_=False, daemon_dir=str(tmp_path / "sbin"), machine="aarch64")
    assert read_elf(tmp_path / "arm" / "eksnet-ipam").machine == "aarch64"
    install(str(tmp_path / "riscv"), compile_=False, daemon_dir=str(tmp_path / "sbin"), machine="riscv64")
    assert (tmp_path / "riscv" / "eksnet-ipam").read_text().startswith("#!")  # no build: the Python forwarder
    with pytest.raises(ValueError, match="make native"):
        install(str(tmp_path / "x"), compile_=False, daemon_dir=str(tmp_path / "sbin"), machine="riscv64",
                forwarder=Forwarder.NATIVE)


def test_the_daemon_is_installed_off_the_cni_bin_dir(cni_bin):
    assert DEFAULT_DAEMON_DIR == "/usr/local/sbin"
    assert "ExecStart=/usr/local/sbin/eksnet-ipamd serve\n" in unit_text(DEFAULT_DAEMON_DIR)
    assert not (cni_bin / "eksnet-ipamd").exists() and ipamd(cni_bin).is_file()
    assert sorted(p.name for p in cni_bin.iterdir() if p.is_file()) == sorted(PLUGIN_TYPES)


def test_the_bundle_carries_both_architectures_and_a_node_installs_its_own(tmp_path):
    asset = bundle(str(tmp_path / "asset"))
    assert bundled_arches(asset) == sorted(ARCHES)
    proc = subprocess.run(["/usr/bin/python3", "-E", "-s", "-m", "node_runtime.install", "--dest", str(tmp_path / "bin"),
                           "--python", "/usr/bin/python3", "--daemon-dir", str(tmp_path / "sbin")],
                          cwd=asset, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_elf(tmp_path / "bin" / "eksnet-macvlan").machine == os.uname().machine
    version = run(tmp_path / "bin" / "eksnet-macvlan", {"CNI_COMMAND": "VERSION", protocol.SOCKET_ENV: "/none"},
                  b'{"cniVersion": "0.4.0"}')  # no daemon: the fallback, with Debian's python3 alone
    assert version.returncode == 0 and json.loads(version.stdout)["cniVersion"] == "0.4.0"



def test_paths_too_long_for_the_native_settings_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="too long"):
        install(str(tmp_path / "bin"), socket="/" + "s" * protocol.SETTINGS_SIZE, daemon_dir=str(tmp_path / "sbin"),
                forwarder=Forwarder.NATIVE, compile_=False)
    assert not (tmp_path / "bin").exists() and not (tmp_path / "sbin").exists()
