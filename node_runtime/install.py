"""Install the node runtime into a directory: ``python -m node_runtime.install --dest /opt/cni/bin``
(or ``--bundle DIR``: node_runtime + pyroute2, the asset a node installs from with only python3).

Writes one executable per CNI type (``eksnet-ipam``, ``eksnet-ipvlan``, ``eksnet-macvlan``) and the
daemon (``eksnet-ipamd``). Each is a five-line script whose shebang names a real interpreter
(``sys.executable`` by default, ``--python`` on a node, never a pyenv shim: ~50 ms a start) run
with ``-S -I`` (no site, no environment: a fast, predictable start), with a copy of this package
and of pyroute2 under ``DEST/eksnet-runtime/``. Every file is replaced atomically (write, fsync,
rename) so a kubelet running the plugins meanwhile never sees half a file."""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import sys
from pathlib import Path

from .cni.forward import DEFAULT_SOCKET

PLUGIN_TYPES = ("eksnet-ipam", "eksnet-ipvlan", "eksnet-macvlan")
DAEMON = "eksnet-ipamd"
RUNTIME_DIR = "eksnet-runtime"
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

DAEMON_SHIM = '''#!{python} -SI
# eksnet IPAM daemon (see node_runtime/ipamd/__main__.py).
import sys
sys.path.insert(0, {runtime!r})
from node_runtime.ipamd.__main__ import main
sys.exit(main())
'''


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _copy_packages(into: Path) -> None:
    """node_runtime and pyroute2 side by side in ``into`` (all the runtime needs on a node)."""
    import pyroute2

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(Path(__file__).resolve().parent, into / "node_runtime", ignore=ignore)
    shutil.copytree(Path(pyroute2.__file__).resolve().parent, into / "pyroute2", ignore=ignore)


def bundle(dest: str) -> Path:
    """Write a bundle (``node_runtime/`` + ``pyroute2/``) to ship as an asset: on the node,
    ``cd BUNDLE && python3 -m node_runtime.install --dest /opt/cni/bin`` needs nothing else."""
    path = Path(dest).resolve()
    if path.exists() and any(path.iterdir()):
        raise OSError(f"{path} is not empty")
    path.mkdir(parents=True, exist_ok=True)
    _copy_packages(path)
    return path


def _copy_runtime(dest: Path, compile_: bool = True) -> Path:
    target = dest / RUNTIME_DIR
    staging = dest / f".{RUNTIME_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    _copy_packages(staging)
    if compile_:  # bytecode now, so the first plugin start on the node does not compile
        compileall.compile_dir(staging, quiet=2, workers=1, stripdir=str(staging), prependdir=str(target))
    old = dest / f".{RUNTIME_DIR}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def unit_text(bin_dir: str) -> str:
    return (DATA / UNIT).read_text().replace("@BINDIR@", bin_dir)


def install(dest: str, python: str | None = None, socket: str = DEFAULT_SOCKET, unit_dir: str | None = None,
            conf_dir: str | None = None, compile_: bool = True) -> list[Path]:
    python = python or sys.executable
    if not os.path.isabs(python):
        raise ValueError(f"--python must be an absolute path, got {python!r}")
    dest_path = Path(dest).resolve()
    dest_path.mkdir(parents=True, exist_ok=True)
    runtime = _copy_runtime(dest_path, compile_)
    written = [runtime]
    for name in PLUGIN_TYPES:
        path = dest_path / name
        _write(path, PLUGIN_SHIM.format(python=python, runtime=str(runtime), name=name, socket=socket), 0o755)
        written.append(path)
    path = dest_path / DAEMON
    _write(path, DAEMON_SHIM.format(python=python, runtime=str(runtime)), 0o755)
    written.append(path)
    if unit_dir:
        Path(unit_dir).mkdir(parents=True, exist_ok=True)
        path = Path(unit_dir) / UNIT
        _write(path, unit_text(str(dest_path)), 0o644)
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
    p.add_argument("--unit-dir", help="also write the systemd unit there (e.g. /etc/systemd/system)")
    p.add_argument("--conf-dir", help="also write the example conflist there")
    args = p.parse_args(argv)
    try:
        if args.bundle:
            print(bundle(args.bundle))
            return 0
        for path in install(args.dest, args.python, args.socket, args.unit_dir, args.conf_dir):
            print(path)
    except (OSError, ValueError) as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
