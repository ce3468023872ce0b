"""The thin executables' whole job: hand the CNI environment and stdin to the daemon over its unix
socket, print its answer, exit with its code. Imports only built-in modules (``_socket``,
``posix``, ``sys``) so a plugin start costs about a bare interpreter start (~10 ms, against
120-160 ms for importing pyroute2).

When the daemon cannot be reached (not running, or killed mid-request), the same plugin code
runs in this process instead (``node_runtime.cni.inprocess``): DEL still succeeds, ADD of
``eksnet-ipam`` answers "try again later" (code 11).

Wire format (both ways over one connection): request ``MAGIC`` then three length-prefixed fields
(4-byte big-endian length): the kind (``cni:<type>`` or ``ctl:<op>``), the environment
(``KEY=VALUE`` joined by NUL), the body (stdin). The answer is one byte of exit code followed by
what to print, up to EOF."""

import _socket
import posix
import sys

DEFAULT_SOCKET = "/run/eksnet/ipamd.sock"
MAGIC = b"EKSNET1\n"
SOCKET_ENV = b"EKSNET_IPAMD_SOCKET"
TIMEOUT = 120.0


def encode(kind: bytes, env: bytes, body: bytes) -> bytes:
    return MAGIC + b"".join(len(f).to_bytes(4, "big") + f for f in (kind, env, body))


def decode(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Inverse of ``encode``; raises ValueError on anything else."""
    if not data.startswith(MAGIC):
        raise ValueError("bad magic")
    fields, pos = [], len(MAGIC)
    for _ in range(3):
        if pos + 4 > len(data):
            raise ValueError("truncated")
        size = int.from_bytes(data[pos:pos + 4], "big")
        pos += 4
        if pos + size > len(data):
            raise ValueError("truncated")
        fields.append(data[pos:pos + size])
        pos += size
    if pos != len(data):
        raise ValueError("trailing bytes")
    return fields[0], fields[1], fields[2]


def call(path: str, kind: bytes, env: bytes, body: bytes, timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """One request to the daemon; raises OSError when it cannot answer."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(encode(kind, env, body))
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    data = b"".join(chunks)
    if not data:
        raise OSError("eksnet-ipamd closed the connection without an answer")
    return data[0], data[1:]


def cni_env() -> bytes:
    return b"\0".join(k + b"=" + v for k, v in posix.environ.items() if k.startswith(b"CNI_"))


def main(plugin: str, socket_path: str = DEFAULT_SOCKET) -> None:
    path = posix.environ.get(SOCKET_ENV, socket_path.encode()).decode("utf-8", "surrogateescape")
    env = cni_env()
    try:
        body = sys.stdin.buffer.read() if sys.stdin is not None else b""
    except OSError:
        body = b""
    try:
        code, out = call(path, b"cni:" + plugin.encode(), env, body)
    except OSError:
        from node_runtime.cni.inprocess import run_env_block

        code, out = run_env_block(plugin, env, body)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    sys.exit(code)
