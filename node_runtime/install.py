"""Install the node runtime into a directory: ``python -m node_runtime.install --dest /opt/cni/bin``
(or ``--bundle DIR``: node_runtime + pyroute2 + the native forwarders built, the asset a node
installs from with only python3).

Writes one executable per CNI type (``eksnet-ipam``, ``eksnet-ipvlan``, ``eksnet-macvlan``) into
DEST, a copy of this package and of pyroute2 under ``DEST/eksnet-runtime/``, and the daemon
(``eksnet-ipamd``) into ``--daemon-dir`` (``/usr/local/sbin``): nothing that scans the CNI bin dir
(tools, runtimes probing VERSION) ever starts a daemon.

The CNI executables are the native forwarder (``node_runtime/native``, static, ~1 ms a start) when
this package holds a build for the node's architecture (``uname -m``), else the Python forwarder:
a five-line script whose shebang names a real interpreter (``sys.executable`` by default,
``--python`` on a node, never a pyenv shim: ~50 ms a start) run with ``-S -I`` (no site, no
environment: a fast, predictable start). Each native copy carries its settings (socket, fallback
script) in a block the installer writes, as the scripts carry theirs in their text. Every file is
replaced atomically (write, fsync, rename) so a kubelet running the plugins meanwhile never sees
half a file."""

from __future__ import annotations

import argparse
import compileall
import fnmatch
import hashlib
import importlib.util
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

from .cni import protocol
from .cni.protocol import DEFAULT_SOCKET
from .native.build import BUILD as NATIVE_BUILD
from .native.build import binary_path, node_arch

PLUGIN_TYPES = ("eksnet-ipam", "eksnet-ipvlan", "eksnet-macvlan")
DAEMON = "eksnet-ipamd"
DEFAULT_DAEMON_DIR = "/usr/local/sbin"
RUNTIME_DIR = "eksnet-runtime"
FALLBACK = "fallback"  # in RUNTIME_DIR: what a native forwarder execs when the daemon cannot answer
DATA = Path(__file__).resolve().parent / "data"
UNIT = "eksnet-ipamd.service"
CONFLIST = "10-eksnet-multus.conflist"

PLUGIN_SHIM = '''#!{python} -SI
# eksnet CNI plugin {name}: hands the request to eksnet-ipamd (see node_runtime/cni/forward.py).
import sys
sys.path.insert(0, {runtime!r})
from node_runtime.cni.forward import main
main({name!r}, {socket!r})
'''

FALLBACK_SHIM = '''#!{python} -SI
# eksnet CNI plugins without the daemon: the native forwarders exec this (see node_runtime/cni/inprocess.py).
import sys
sys.path.insert(0, {runtime!r})
from node_runtime.cni.inprocess import main
main(sys.argv[1])
'''

DAEMON_SHIM = '''#!{python} -SI
# eksnet IPAM daemon (see node_runtime/ipamd/__main__.py).
import sys
sys.path.insert(0, {runtime!r})
from node_runtime.ipamd.__main__ import main
sys.exit(main())
'''


class Forwarder(Enum):
    """Which forwarder the CNI executables are."""

    AUTO = "auto"  # native when this package holds a build for the node's architecture, else Python
    NATIVE = "native"  # the static C forwarder; an error when none is built for the architecture
    PYTHON = "python"  # the Python forwarder (node_runtime/cni/forward.py)


def _write(path: Path, content: str | bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


_IGNORED = ("__pycache__", "*.pyc", "*.tmp")  # bytecode and temporaries never ship: imports write them
# node_runtime's own files that never go to a node: the local test/bench/demo harness (lab.py).
NOT_SHIPPED = ("lab.py",)


def _packages() -> dict[str, Path]:
    """What a node needs, by its name in a bundle: node_runtime and pyroute2 (the node's Python has none).

    pyroute2 is found, not imported: importing it costs ~150 ms, and a synth only needs its files."""
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("pyroute2 is not installed: the node runtime bundle ships it", name="pyroute2")
    return {"node_runtime": Path(__file__).resolve().parent,
            "pyroute2": Path(next(iter(spec.submodule_search_locations))).resolve()}


def _skipped(name: str, source: Path, directory: Path, entry: str) -> bool:
    """Whether ``entry`` of ``directory`` (inside package ``name`` at ``source``) stays out of a bundle."""
    if any(fnmatch.fnmatch(entry, p) for p in _IGNORED):
        return True
    return name == "node_runtime" and directory == source and entry in NOT_SHIPPED


def _copy_packages(into: Path) -> None:
    """node_runtime (but ``NOT_SHIPPED``) and pyroute2 side by side in ``into`` (all the runtime needs on a node):
    exactly ``bundle_files()``, the set the fingerprint and the zip are made of."""
    for rel, source in bundle_files():
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def bundle_files() -> Iterator[tuple[str, Path]]:
    """(name in a bundle, source file) of everything a bundle holds, in a stable order (symlinks followed)."""
    for name, source in sorted(_packages().items()):
        for root, dirs, files in os.walk(source, followlinks=True):
            here = Path(root)
            dirs[:] = sorted(d for d in dirs if not _skipped(name, source, here, d))
            for f in sorted(files):
                if not _skipped(name, source, here, f):
                    yield f"{name}/{(here / f).relative_to(source).as_posix()}", here / f


def bundle_fingerprint() -> str:
    """SHA-256 of what ``bundle`` writes (paths, modes and contents of the same files), computed from the
    sources without copying them: a synth names the node runtime asset by it and stages the bundle only
    when the cloud assembly does not already hold it."""
    digest = hashlib.sha256()
    for rel, path in bundle_files():
        digest.update(f"{rel}\0{path.stat().st_mode & 0o111:o}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def bundle_zip(dest: str) -> Path:
    """The bundle as one zip file at ``dest`` (written to a temporary name, then renamed: all or nothing), as
    the asset a node downloads: the same files as ``bundle``, each with its mode and a fixed date, so the
    same sources make the same bytes."""
    path = Path(dest)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w") as z:
            for rel, source in bundle_files():
                info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o755 if source.stat().st_mode & 0o111 else 0o644) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, source.read_bytes(), compresslevel=1)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def bundle(dest: str) -> Path:
    """Write a bundle (``node_runtime/`` + ``pyroute2/``, with the native forwarders of every
    architecture ``make native`` built) to ship as an asset: on the node, ``cd BUNDLE && python3 -m
    node_runtime.install --dest /opt/cni/bin`` needs nothing else and picks the node's forwarder."""
    path = Path(dest).resolve()
    if path.exists() and any(path.iterdir()):
        raise OSError(f"{path} is not empty")
    path.mkdir(parents=True, exist_ok=True)
    _copy_packages(path)
    return path


def bundled_arches(root: Path) -> list[str]:
    """Architectures a bundle (or a package dir's parent) holds a native forwarder for."""
    return sorted(p.parent.name for p in (root / "node_runtime" / "native" / "build").glob("*/eksnet-cni"))


def _copy_runtime(dest: Path, python: str, compile_: bool = True) -> Path:
    target = dest / RUNTIME_DIR
    staging = dest / f".{RUNTIME_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    _copy_packages(staging)
    _write(staging / FALLBACK, FALLBACK_SHIM.format(python=python, runtime=str(target)), 0o755)
    if compile_:  # bytecode now, so the first plugin start on the node does not compile
        compileall.compile_dir(staging, quiet=2, workers=1, stripdir=str(staging), prependdir=str(target))
    old = dest / f".{RUNTIME_DIR}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def unit_text(daemon_dir: str) -> str:
    return (DATA / UNIT).read_text().replace("@BINDIR@", daemon_dir)


def settings_block(socket: str, fallback: str) -> bytes:
    """The native forwarder's settings as ``forward.c`` reads them: marker, then NUL-ended
    ``key=value`` strings, padded with NULs to ``protocol.SETTINGS_SIZE``."""
    for what, value in (("socket", socket), ("fallback", fallback)):
        if "\0" in value or not value:
            raise ValueError(f"the {what} path {value!r} must be non-empty without NUL")
    block = protocol.SETTINGS_MARKER + b"\0" + b"".join(
        f"{key}={value}".encode() + b"\0" for key, value in (("socket", socket), ("fallback", fallback)))
    if len(block) >= protocol.SETTINGS_SIZE:
        raise ValueError(f"socket and fallback paths are too long for the native forwarder "
                         f"({len(block)} bytes of settings, at most {protocol.SETTINGS_SIZE - 1})")
    return block.ljust(protocol.SETTINGS_SIZE, b"\0")


def with_settings(binary: bytes, socket: str, fallback: str) -> bytes:
    """A copy of a native forwarder build that uses ``socket`` and execs ``fallback``."""
    marker = protocol.SETTINGS_MARKER + b"\0"
    at = binary.find(marker)
    if at < 0 or binary.find(marker, at + 1) >= 0:
        raise ValueError("not an eksnet native forwarder build: its settings marker is missing or repeated")
    if len(binary) < at + protocol.SETTINGS_SIZE:
        raise ValueError("not an eksnet native forwarder build: its settings block is cut short")
    return binary[:at] + settings_block(socket, fallback) + binary[at + protocol.SETTINGS_SIZE:]


def native_binary(machine: str | None = None) -> Path | None:
    """The native forwarder built for ``machine`` (default: this one's ``uname -m``), if any."""
    arch = node_arch(machine)
    path = binary_path(arch) if arch else None
    return path if path is not None and path.is_file() else None


def install(dest: str, python: str | None = None, socket: str = DEFAULT_SOCKET, unit_dir: str | None = None,
            conf_dir: str | None = None, compile_: bool = True, *, daemon_dir: str = DEFAULT_DAEMON_DIR,
            forwarder: Forwarder = Forwarder.AUTO, machine: str | None = None) -> list[Path]:
    """Install the CNI executables into ``dest`` and the daemon into ``daemon_dir``; returns what
    was written. ``machine`` (default ``platform.machine()``) picks the native build."""
    python = python or sys.executable
    if not os.path.isabs(python):
        raise ValueError(f"--python must be an absolute path, got {python!r}")
    if not os.path.isabs(socket):
        raise ValueError(f"--socket must be an absolute path, got {socket!r}")
    forwarder = Forwarder(forwarder)
    native = native_binary(machine) if forwarder is not Forwarder.PYTHON else None
    if forwarder is Forwarder.NATIVE and native is None:
        raise ValueError(f"no native forwarder is built for {machine or os.uname().machine!r} in {NATIVE_BUILD}: "
                         "run `make native`, or install the Python forwarder (--forwarder python)")
    dest_path = Path(dest).resolve()
    # Settings first: paths too long for the native forwarder are refused before anything is written.
    binary = with_settings(native.read_bytes(), socket, str(dest_path / RUNTIME_DIR / FALLBACK)) if native else b""
    dest_path.mkdir(parents=True, exist_ok=True)
    runtime = _copy_runtime(dest_path, python, compile_)
    written = [runtime]
    for name in PLUGIN_TYPES:
        path = dest_path / name
        if native is not None:
            _write(path, binary, 0o755)
        else:
            _write(path, PLUGIN_SHIM.format(python=python, runtime=str(runtime), name=name, socket=socket), 0o755)
        written.append(path)
    daemon_path = Path(daemon_dir).resolve()
    daemon_path.mkdir(parents=True, exist_ok=True)
    path = daemon_path / DAEMON
    _write(path, DAEMON_SHIM.format(python=python, runtime=str(runtime)), 0o755)
    written.append(path)
    if unit_dir:
        Path(unit_dir).mkdir(parents=True, exist_ok=True)
        path = Path(unit_dir) / UNIT
        _write(path, unit_text(str(daemon_path)), 0o644)
        written.append(path)
    if conf_dir:
        Path(conf_dir).mkdir(parents=True, exist_ok=True)
        path = Path(conf_dir) / CONFLIST
        _write(path, (DATA / CONFLIST).read_text(), 0o644)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m node_runtime.install", description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dest", help="directory for the executables, e.g. /opt/cni/bin")
    where.add_argument("--bundle", help="instead: write node_runtime + pyroute2 there, to ship as an asset")
    p.add_argument("--python", help="interpreter the executables run (default: this one)")
    p.add_argument("--socket", default=DEFAULT_SOCKET, help=f"daemon socket the plugins use (default {DEFAULT_SOCKET})")
    p.add_argument("--daemon-dir", default=DEFAULT_DAEMON_DIR,
                   help=f"directory for the eksnet-ipamd executable, off the CNI bin dir (default {DEFAULT_DAEMON_DIR})")
    p.add_argument("--forwarder", choices=[f.value for f in Forwarder], default=Forwarder.AUTO.value,
                   help="CNI executables: native (static C) or python; auto (default): native when built for "
                        "this machine's architecture")
    p.add_argument("--unit-dir", help="also write the systemd unit there (e.g. /etc/systemd/system)")
    p.add_argument("--conf-dir", help="also write the example conflist there")
    args = p.parse_args(argv)
    try:
        if args.bundle:
            print(bundle(args.bundle))
            return 0
        for path in install(args.dest, args.python, args.socket, args.unit_dir, args.conf_dir,
                            daemon_dir=args.daemon_dir, forwarder=Forwarder(args.forwarder)):
            print(path)
    except (OSError, ValueError) as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
