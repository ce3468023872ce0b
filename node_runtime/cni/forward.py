"""The Python forwarder: what the executables run when no native forwarder is installed (and the
reference the C forwarder, ``node_runtime/native/forward.c``, is tested against). Its whole job:
hand the CNI environment and stdin to the daemon over its unix socket (``protocol``), print the
answer, exit with its code. Imports only built-in modules (``_socket``, ``posix``, ``sys``) so a
plugin start costs about a bare interpreter start (~10 ms, against 120-160 ms for pyroute2).

When the daemon cannot be reached (not running, or killed mid-request), the same plugin code runs
in this process instead (``node_runtime.cni.inprocess``): DEL still tears down and succeeds, STATUS
answers, ADD of ``eksnet-ipam`` answers "try again later" (code 11). A request over the protocol's
size limit is refused here with code 105 (``Code.REQUEST_TOO_LARGE``), except a DEL, which runs
in-process so the pod can still be torn down."""

import posix
import sys

from node_runtime.cni import protocol

# Kept for callers of the old names; the protocol module is where they live.
DEFAULT_SOCKET = protocol.DEFAULT_SOCKET
call, decode, encode = protocol.call, protocol.decode, protocol.encode


def cni_env() -> bytes:
    prefix = protocol.ENV_PREFIX.encode()
    return b"\0".join(k + b"=" + v for k, v in posix.environ.items() if k.startswith(prefix))


def read_stdin() -> bytes:
    try:
        return sys.stdin.buffer.read() if sys.stdin is not None else b""
    except OSError:
        return b""


def forward(plugin: str, env: bytes, body: bytes, socket_path: str) -> tuple[int, bytes]:
    """The answer for one CNI request: the daemon's, or the in-process fallback's."""
    kind = protocol.KIND_CNI + plugin.encode()
    size = protocol.request_size(kind, env, body)
    if size <= protocol.MAX_REQUEST:
        try:
            return protocol.call(socket_path, kind, env, body)
        except OSError:
            pass
    elif posix.environ.get(b"CNI_COMMAND") != b"DEL":
        from node_runtime.cni.skeleton import error_version

        return 1, protocol.error_json(protocol.Code.REQUEST_TOO_LARGE, "request too large",
                                      f"{size} bytes, the limit is {protocol.MAX_REQUEST}", error_version(body))
    from node_runtime.cni.inprocess import run_env_block

    return run_env_block(plugin, env, body)


def main(plugin: str, socket_path: str = protocol.DEFAULT_SOCKET) -> None:
    path = posix.environ.get(protocol.SOCKET_ENV.encode(), socket_path.encode()).decode("utf-8", "surrogateescape")
    code, out = forward(plugin, cni_env(), read_stdin(), path)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    sys.exit(code)
