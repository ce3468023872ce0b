"""What ships onto a node: executables with a real interpreter, a self-contained runtime, a unit
systemd accepts, an example conflist our plugins accept; and no CDK (nor anything but the
standard library and pyroute2) in node_runtime."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from node_runtime.cni.skeleton import parse_request
from node_runtime.install import CONFLIST, DATA, PLUGIN_TYPES, install, main
from node_runtime.lab import CNI, forwarder_of, ipamd
from node_runtime.native.build import read_elf

PACKAGE = Path(__file__).resolve().parents[2] / "node_runtime"


def test_every_executable_is_static_or_names_a_real_interpreter_not_a_shim(cni_bin):
    scripts = [ipamd(cni_bin), cni_bin / "eksnet-runtime" / "fallback"]
    if forwarder_of(cni_bin) == "native":
        for name in PLUGIN_TYPES:
            info = read_elf(cni_bin / name)
            assert os.access(cni_bin / name, os.X_OK) and info.static and info.machine == os.uname().machine
    else:
        scripts += [cni_bin / name for name in PLUGIN_TYPES]
    for exe in scripts:
        assert os.access(exe, os.X_OK)
        interpreter = exe.read_text().splitlines()[0][2:].split()[0]
        with open(os.path.realpath(interpreter), "rb") as f:
            assert f.read(4) == b"\x7fELF", f"{exe.name} runs {interpreter}, which is not a binary"


def test_python_can_be_overridden_for_the_node(tmp_path):
    assert main(["--dest", str(tmp_path / "bin"), "--daemon-dir", str(tmp_path / "sbin"), "--forwarder", "python",
                 "--python", "/usr/bin/python3.11"]) == 0
    for script in (tmp_path / "bin" / "eksnet-ipam", tmp_path / "sbin" / "eksnet-ipamd",
                   tmp_path / "bin" / "eksnet-runtime" / "fallback"):
        assert script.read_text().startswith("#!/usr/bin/python3.11 -SI\n")


def test_a_relative_interpreter_is_refused(tmp_path, capsys):
    assert main(["--dest", str(tmp_path), "--daemon-dir", str(tmp_path), "--python", "python3"]) == 1
    assert "absolute" in capsys.readouterr().err


def test_the_installed_runtime_works_with_debians_python_alone(tmp_path):
    """The node has /usr/bin/python3 and nothing else: the copy under DEST must be enough."""
    install(str(tmp_path), python="/usr/bin/python3", compile_=False, daemon_dir=str(tmp_path / "sbin"))
    proc = subprocess.run([str(tmp_path / "eksnet-macvlan")], input=b'{"cniVersion": "1.0.0"}',
                          env={"CNI_COMMAND": "VERSION", "EKSNET_IPAMD_SOCKET": str(tmp_path / "none")},
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cniVersion"] == "1.0.0"
    proc = subprocess.run([str(tmp_path / "sbin" / "eksnet-ipamd"), "--help"], capture_output=True, timeout=60)
    assert proc.returncode == 0 and b"eksnet IPAM daemon" in proc.stdout


def test_the_ipam_plugin_path_never_imports_pyroute2(cni_bin, daemon):
    """Start cost: the executable forwards to the daemon with built-in modules only."""
    probe = (f"import sys; sys.path.insert(0, {str(cni_bin / 'eksnet-runtime')!r}); import atexit;"
             "atexit.register(lambda: sys.stderr.write(' '.join(sorted(sys.modules))));"
             "from node_runtime.cni.forward import main; main('eksnet-ipam')")
    config = {"cniVersion": "1.0.0", "name": "n", "type": "eksnet-ipam",
              "ipam": {"ranges": [[{"subnet": "10.60.0.0/24"}]]}}
    env = dict(CNI(cni_bin).env("ADD", "c1", "/run/netns/c1", "net1"), **daemon.env())
    proc = subprocess.run([sys.executable, "-SI", "-c", probe], input=json.dumps(config).encode(), env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    modules = proc.stderr.decode().split()
    assert "node_runtime.cni.forward" in modules
    assert not [m for m in modules if m.startswith(("pyroute2", "asyncio", "json", "node_runtime.ipam"))]


def test_the_systemd_unit_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: install the systemd package (.ci/run does)")
    install(str(tmp_path / "bin"), unit_dir=str(tmp_path / "units"), compile_=False, daemon_dir=str(tmp_path / "sbin"))
    unit = tmp_path / "units" / "eksnet-ipamd.service"
    assert f"ExecStart={tmp_path / 'sbin'}/eksnet-ipamd serve" in unit.read_text()
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "eksnet-ipamd.service" not in proc.stderr, proc.stderr


def test_the_unit_check_can_fail(tmp_path):
    broken = tmp_path / "eksnet-broken.service"
    broken.write_text("[Service]\nExecStart=relative/path\n")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0


def test_the_example_conflist_is_accepted_by_our_plugins(tmp_path):
    install(str(tmp_path / "bin"), conf_dir=str(tmp_path / "net.d"), compile_=False, daemon_dir=str(tmp_path / "sbin"))
    conflist = json.loads((tmp_path / "net.d" / CONFLIST).read_text())
    assert conflist == json.loads((DATA / CONFLIST).read_text())
    for plugin in conflist["plugins"]:
        assert plugin["type"] in PLUGIN_TYPES and plugin["ipam"]["type"] in PLUGIN_TYPES
        config = dict(plugin, cniVersion=conflist["cniVersion"], name=conflist["name"])
        env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/x", "CNI_IFNAME": "net1"}
        parse_request(env, json.dumps(config).encode())


def test_node_runtime_imports_only_the_standard_library_and_pyroute2():
    allowed = set(sys.stdlib_module_names) | {"pyroute2", "node_runtime"}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            # Per-IP mode's EC2 calls (and only they) use botocore: the node's python3-botocore package.
            here = allowed | {"botocore"} if path.name == "ec2assign.py" else allowed
            for name in names:
                assert name.split(".")[0] in here, f"{path.relative_to(PACKAGE)} imports {name}"


def test_reinstalling_replaces_the_runtime_in_place(tmp_path):
    install(str(tmp_path), compile_=False, daemon_dir=str(tmp_path))
    (tmp_path / "eksnet-runtime" / "stale.txt").write_text("old")
    install(str(tmp_path), compile_=False, daemon_dir=str(tmp_path))
    assert not (tmp_path / "eksnet-runtime" / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_lab_harness_never_ships_to_a_node(tmp_path):
    """node_runtime/lab.py is the tests', benchmarks' and demo's harness: neither the asset bundle nor an
    installed runtime carries it."""
    assert (PACKAGE / "lab.py").exists()
    assert main(["--bundle", str(tmp_path / "asset")]) == 0
    install(str(tmp_path / "bin"), compile_=False, daemon_dir=str(tmp_path / "sbin"))
    for runtime in (tmp_path / "asset" / "node_runtime", tmp_path / "bin" / "eksnet-runtime" / "node_runtime"):
        assert (runtime / "install.py").exists() and not (runtime / "lab.py").exists()


def test_a_bundle_installs_on_a_node_that_has_only_python3(tmp_path):
    """What the node's user data does: unpack the asset, run the installer with the system python
    (no venv: only the system interpreter and the bundle in the current directory)."""
    assert main(["--bundle", str(tmp_path / "asset")]) == 0
    proc = subprocess.run(["/usr/bin/python3", "-E", "-s", "-m", "node_runtime.install", "--dest", str(tmp_path / "bin"),
                           "--python", "/usr/bin/python3", "--unit-dir", str(tmp_path / "units"),
                           "--daemon-dir", str(tmp_path / "sbin")],
                          cwd=tmp_path / "asset", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bin" / "eksnet-runtime" / "pyroute2").is_dir()
    assert (tmp_path / "units" / "eksnet-ipamd.service").exists()
