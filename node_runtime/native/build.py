"""Build the native CNI forwarder (``forward.c``) for every node architecture:
``python -m node_runtime.native.build`` (what ``make native`` runs).

The compiler is the ``ziglang`` package (a pip-installed clang with musl for every target), so the
build needs nothing but the project's venv: ``zig cc -target <arch>-linux-musl -static -O2`` gives
one static executable per architecture that runs on any Linux node of it (AL2023 included). Output:
``build/protocol.h`` (the constants of ``node_runtime.cni.protocol`` as C macros) and
``build/<arch>/eksnet-cni``; nothing is built that is already up to date. Never run during synth:
the installer and the asset take whatever ``make native`` (or the wheel build) left here.

``read_elf`` reads what an executable is for (machine, static or not) without running it: the
aarch64 build cannot run on an x86_64 machine, but its header can be checked."""

from __future__ import annotations

import argparse
import os
import platform
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..cni.protocol import c_header

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "forward.c"
BUILD = HERE / "build"
BINARY = "eksnet-cni"
HEADER = "protocol.h"
ARCHES = ("x86_64", "aarch64")
_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
_ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
CFLAGS = ("-static", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-s")


def node_arch(machine: str | None = None) -> str | None:
    """The build architecture for ``platform.machine()`` (or ``uname -m``), None if we build none."""
    return _MACHINES.get((machine or platform.machine()).lower())


def binary_path(arch: str, build_dir: Path = BUILD) -> Path:
    return build_dir / arch / BINARY


def _zig() -> list[str]:
    return [sys.executable, "-m", "ziglang"]


def _up_to_date(target: Path, sources: list[Path]) -> bool:
    return target.exists() and all(target.stat().st_mtime >= s.stat().st_mtime for s in sources)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)


def build(build_dir: Path = BUILD, arches: tuple[str, ...] = ARCHES, force: bool = False) -> list[Path]:
    """Compile ``forward.c`` for each of ``arches``; returns the executables. Raises
    subprocess.CalledProcessError (with the compiler's message on stderr) when compiling fails."""
    build_dir.mkdir(parents=True, exist_ok=True)
    header = build_dir / HEADER
    _write_if_changed(header, c_header())
    out = []
    for arch in arches:
        if arch not in ARCHES:
            raise ValueError(f"unknown architecture {arch!r}: one of {', '.join(ARCHES)}")
        target = binary_path(arch, build_dir)
        if force or not _up_to_date(target, [SOURCE, header]):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            subprocess.run([*_zig(), "cc", "-target", f"{arch}-linux-musl", *CFLAGS, "-I", str(build_dir),
                            "-o", str(tmp), str(SOURCE)], check=True)
            os.replace(tmp, target)
        out.append(target)
    return out


@dataclass(frozen=True)
class ElfInfo:
    machine: str  # "x86_64", "aarch64", or "e_machine=<n>"
    bits: int
    little_endian: bool
    executable: bool  # ET_EXEC or ET_DYN
    static: bool  # no program interpreter (PT_INTERP) and no dynamic section (PT_DYNAMIC)


def read_elf(path: Path) -> ElfInfo:
    """What an ELF executable is for, from its file header and program headers."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    bits = {1: 32, 2: 64}[data[4]]
    endian = "<" if data[5] == 1 else ">"
    e_type, e_machine = struct.unpack_from(endian + "HH", data, 16)
    if bits == 64:
        e_phoff, = struct.unpack_from(endian + "Q", data, 32)
        e_phentsize, e_phnum = struct.unpack_from(endian + "HH", data, 54)
    else:
        e_phoff, = struct.unpack_from(endian + "I", data, 28)
        e_phentsize, e_phnum = struct.unpack_from(endian + "HH", data, 42)
    types = {struct.unpack_from(endian + "I", data, e_phoff + i * e_phentsize)[0] for i in range(e_phnum)}
    pt_dynamic, pt_interp = 2, 3
    return ElfInfo(machine=_ELF_MACHINES.get(e_machine, f"e_machine={e_machine}"), bits=bits,
                   little_endian=endian == "<", executable=e_type in (2, 3),
                   static=pt_interp not in types and pt_dynamic not in types)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m node_runtime.native.build", description=__doc__.splitlines()[0])
    p.add_argument("--arch", action="append", choices=ARCHES, help="build only this one (repeatable)")
    p.add_argument("--out", type=Path, default=BUILD, help=f"build directory (default {BUILD})")
    p.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = p.parse_args(argv)
    try:
        built = build(args.out, tuple(args.arch or ARCHES), args.force)
    except subprocess.CalledProcessError as exc:
        print(f"native build failed: {exc}", file=sys.stderr)
        return 1
    for path in built:
        info = read_elf(path)
        print(f"{path}: {info.machine}, {'static' if info.static else 'DYNAMIC'}, {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
