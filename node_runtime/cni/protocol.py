"""The wire protocol between the CNI executables and eksnet-ipamd, in one place: framing, the size
limit, the socket, the CNI versions and every error code (``Code``). The daemon (``ipamd/server.py``),
the Python forwarder (``forward.py``), the in-process fallback and the C forwarder
(``node_runtime/native/forward.c``, through the header ``c_header()`` writes) all take them from here.

A request, client to daemon, over one unix-socket connection::

    MAGIC | u32 len | kind | u32 len | env | u32 len | body        (lengths big-endian)

``kind`` is ``cni:<plugin type>`` (a CNI executable) or ``ctl:<op>`` (status, metrics, reconcile);
``env`` is the caller's ``CNI_*`` variables as ``KEY=VALUE`` joined by NUL; ``body`` is its stdin.
The whole request is at most ``MAX_REQUEST`` bytes. The answer, daemon to client, is one byte of
exit code followed by what the executable prints, up to EOF.

Import cost matters: the Python forwarder imports this module on every plugin start, so the top
level uses built-in modules only (``typing`` alone costs 10-40 ms). ``Code`` is an ``IntEnum``, and
``enum`` costs ~3 ms to import: it is built on first use (module ``__getattr__``), which only error
paths and the daemon reach."""

from __future__ import annotations

import _socket

MAGIC = b"EKSNET1\n"
DEFAULT_SOCKET = "/run/eksnet/ipamd.sock"
SOCKET_ENV = "EKSNET_IPAMD_SOCKET"  # overrides the socket an executable was installed with
ENV_PREFIX = "CNI_"  # the environment variables forwarded to the daemon
KIND_CNI = b"cni:"
KIND_CTL = b"ctl:"
MAX_REQUEST = 4 * 1024 * 1024  # a request (MAGIC and lengths included) larger than this is refused
TIMEOUT = 120.0  # seconds a forwarder waits for the daemon's answer
# The daemon's listen backlog: a burst of pods (hundreds of ADDs at once) must queue, not be refused
# (a refused connect would send the forwarder to its fallback, which cannot allocate).
BACKLOG = 1024
_LEN = 4

# CNI spec versions the plugins speak (oldest first) and the one errors use when the config names none.
SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"

# Error codes: the CNI spec's (below 100; SPEC.md "Error") and eksnet's own (100 and up).
_CODES: dict[str, tuple[int, str]] = {
    "INCOMPATIBLE_VERSION": (1, "incompatible CNI version"),
    "UNSUPPORTED_FIELD": (2, "unsupported field in the network configuration"),
    "UNKNOWN_CONTAINER": (3, "container unknown or does not exist"),
    "INVALID_ENVIRONMENT": (4, "invalid necessary environment variables"),
    "IO_FAILURE": (5, "I/O failure"),
    "DECODE_FAILURE": (6, "failed to decode content"),
    "INVALID_CONFIG": (7, "invalid network config"),
    "TRY_AGAIN_LATER": (11, "try again later"),
    "NOT_AVAILABLE": (50, "the plugin is not available"),
    "NOT_AVAILABLE_LIMITED": (51, "the plugin is not available: existing containers are not affected"),
    "POOL_EXHAUSTED": (100, "no address left in the range set"),
    "INTERFACE_EXISTS": (101, "the interface already exists"),
    "NETLINK_FAILURE": (102, "a netlink request failed"),
    "DELEGATE_FAILURE": (103, "the delegated (IPAM) plugin failed"),
    "CHECK_FAILED": (104, "CHECK found a difference from prevResult"),
    "REQUEST_TOO_LARGE": (105, "the request is larger than the protocol allows"),
    "REQUEST_TRUNCATED": (106, "the request ended before the lengths it announced"),
    "EC2_REFUSED": (107, "EC2 refused to assign a per-IP address to the Multus ENI"),
    "INTERNAL": (999, "internal error (a bug)"),
}
SPEC_CODES = frozenset(v for v, _ in _CODES.values() if v < 100)
OUR_CODES = frozenset(v for v, _ in _CODES.values() if v >= 100)


def __getattr__(name: str):
    """``Code``, built on first use (see the module docstring for why)."""
    if name != "Code":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from enum import IntEnum

    code = IntEnum("Code", {key: value for key, (value, _) in _CODES.items()}, module=__name__, qualname="Code")
    code.__doc__ = "Every error code a CNI answer of eksnet can carry; ``.meaning`` says what it means."
    code.meaning = property(lambda self: _CODES[self.name][1])
    globals()["Code"] = code
    return code


class ProtocolError(ValueError):
    """A request that is not the wire format; ``code`` is what the daemon answers with."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code


# -- framing ----------------------------------------------------------------------------------------

def request_size(kind: bytes, env: bytes, body: bytes) -> int:
    return len(MAGIC) + 3 * _LEN + len(kind) + len(env) + len(body)


def encode(kind: bytes, env: bytes, body: bytes) -> bytes:
    return MAGIC + b"".join(len(f).to_bytes(_LEN, "big") + f for f in (kind, env, body))


def decode(data: bytes, limit: int = MAX_REQUEST) -> tuple[bytes, bytes, bytes]:
    """Inverse of ``encode``; raises ProtocolError (too large, truncated, not the wire format)."""
    if len(data) > limit:
        raise ProtocolError(_CODES["REQUEST_TOO_LARGE"][0], f"request too large: over {limit} bytes")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise ProtocolError(_CODES["REQUEST_TRUNCATED"][0], "request truncated in its header")
        raise ProtocolError(_CODES["DECODE_FAILURE"][0], "bad request: not the eksnet wire format")
    fields, pos = [], len(MAGIC)
    for _ in range(3):
        if pos + _LEN > len(data):
            raise ProtocolError(_CODES["REQUEST_TRUNCATED"][0], "request truncated in a length")
        size = int.from_bytes(data[pos:pos + _LEN], "big")
        pos += _LEN
        if pos + size > len(data):
            raise ProtocolError(_CODES["REQUEST_TRUNCATED"][0], f"request truncated: a field announces {size} bytes")
        fields.append(data[pos:pos + size])
        pos += size
    if pos != len(data):
        raise ProtocolError(_CODES["DECODE_FAILURE"][0], "bad request: bytes after the last field")
    return fields[0], fields[1], fields[2]


async def read_request(reader, limit: int = MAX_REQUEST) -> tuple[bytes, bytes, bytes]:
    """Read one request from an ``asyncio.StreamReader``, refusing it as soon as its announced
    lengths pass ``limit`` (nothing more is read). Raises ProtocolError."""
    from asyncio import IncompleteReadError

    try:
        magic = await reader.readexactly(len(MAGIC))
    except IncompleteReadError as exc:
        decode(exc.partial, limit)  # raises: empty/partial magic is truncated, anything else is not ours
        raise
    if magic != MAGIC:
        raise ProtocolError(_CODES["DECODE_FAILURE"][0], "bad request: not the eksnet wire format")
    fields, size = [], len(MAGIC)
    for _ in range(3):
        try:
            length = int.from_bytes(await reader.readexactly(_LEN), "big")
        except IncompleteReadError:
            raise ProtocolError(_CODES["REQUEST_TRUNCATED"][0], "request truncated in a length") from None
        size += _LEN + length
        if size > limit:
            raise ProtocolError(_CODES["REQUEST_TOO_LARGE"][0], f"request too large: over {limit} bytes")
        try:
            fields.append(await reader.readexactly(length))
        except IncompleteReadError as exc:
            raise ProtocolError(_CODES["REQUEST_TRUNCATED"][0],
                                f"request truncated: a field announces {length} bytes, "
                                f"{len(exc.partial)} came") from None
    return fields[0], fields[1], fields[2]


def answer(code: int, out: bytes) -> bytes:
    return bytes([code]) + out


def error_json(code: int, msg: str, details: str = "", version: str = LATEST) -> bytes:
    """A CNI error as the executables print it (the forwarders' own errors; plugins use CNIError)."""
    import json

    out = {"cniVersion": version, "code": int(code), "msg": msg}
    if details:
        out["details"] = details
    return (json.dumps(out) + "\n").encode()


# -- the client side --------------------------------------------------------------------------------

def call(path: str, kind: bytes, env: bytes, body: bytes, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """One request to the daemon; returns (exit code, output). Raises OSError when the daemon
    cannot answer (no socket, refused, closed without an answer, timed out).

    When the daemon refuses a request before reading all of it (too large), sending fails with
    EPIPE and reading ends in a reset: its answer is still read, so the refusal is reported, not
    "not reachable"."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        try:
            sock.sendall(encode(kind, env, body))
            sock.shutdown(_socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the answer, if any, says why
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                if not chunks:
                    raise
                break  # it answered, then closed with our request unread (Linux reports that as a reset)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    data = b"".join(chunks)
    if not data:
        raise OSError("eksnet-ipamd closed the connection without an answer")
    return data[0], data[1:]


# -- the C forwarder's view -------------------------------------------------------------------------

SETTINGS_MARKER = b"EKSNET-FORWARDER-SETTINGS-1"
SETTINGS_SIZE = 4096  # bytes reserved in the C forwarder for what node_runtime.install writes


def _c_string(value: bytes) -> str:
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:03o}" for b in value) + '"'


def c_header() -> str:
    """``protocol.h`` for ``node_runtime/native/forward.c``: these constants, as C macros."""
    lines = ["/* Generated from node_runtime/cni/protocol.py by `python -m node_runtime.cni.protocol c-header`:",
             " * do not edit; `make native` writes it. */",
             "#ifndef EKSNET_PROTOCOL_H", "#define EKSNET_PROTOCOL_H",
             f"#define EKSNET_MAGIC {_c_string(MAGIC)}",
             f"#define EKSNET_MAGIC_LEN {len(MAGIC)}",
             f"#define EKSNET_DEFAULT_SOCKET {_c_string(DEFAULT_SOCKET.encode())}",
             f"#define EKSNET_SOCKET_ENV {_c_string(SOCKET_ENV.encode())}",
             f"#define EKSNET_ENV_PREFIX {_c_string(ENV_PREFIX.encode())}",
             f"#define EKSNET_KIND_CNI {_c_string(KIND_CNI)}",
             f"#define EKSNET_MAX_REQUEST {MAX_REQUEST}u",
             f"#define EKSNET_TIMEOUT_SECONDS {int(TIMEOUT)}",
             f"#define EKSNET_SETTINGS_MARKER {_c_string(SETTINGS_MARKER)}",
             f"#define EKSNET_SETTINGS_SIZE {SETTINGS_SIZE}",
             f"#define EKSNET_LATEST {_c_string(LATEST.encode())}",
             "#define EKSNET_SUPPORTED_VERSIONS {" + ", ".join(_c_string(v.encode()) for v in SUPPORTED_VERSIONS)
             + ", 0}"]
    lines += [f"#define EKSNET_CODE_{name} {value}" for name, (value, _) in _CODES.items()]
    lines += ["#endif", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv != ["c-header"]:
        print("usage: python -m node_runtime.cni.protocol c-header", file=__import__("sys").stderr)
        return 2
    print(c_header(), end="")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
