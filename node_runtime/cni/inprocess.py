"""Run a plugin in this process: the executables' fallback when the daemon is not reachable.

Same skeleton and plugin code as in the daemon, with no IPAM service (``host.ipam is None``).
The Python forwarder calls ``run_env_block``; the C forwarder execs the installed fallback script,
which calls ``main`` with the request's stdin and environment as they came."""

from __future__ import annotations

import asyncio
from typing import Any

from .delegate import exec_plugin
from .skeleton import Host, Request, dump, error_version, run
from .types import INVALID_CONFIG, CNIError


class LocalHost(Host):
    def __init__(self, ipam: Any = None) -> None:
        self.ipam = ipam

    async def blocking(self, fn, *args):
        # pyroute2's sync IPRoute cannot be built inside a running loop: always a worker thread.
        return await asyncio.to_thread(fn, *args)

    async def delegate(self, plugin_type: str, req: Request, command: str, stdin: bytes):
        return await exec_plugin(plugin_type, req, command, stdin)

    def plugin(self, plugin_type: str):
        from ..plugins import get_plugin

        return get_plugin(plugin_type)


def parse_env_block(env: bytes) -> dict[str, str]:
    out = {}
    for item in env.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return out


async def run_plugin(plugin_type: str, env: dict[str, str], body: bytes, host: Host) -> tuple[int, bytes]:
    from ..plugins import get_plugin
    plugin = get_plugin(plugin_type)
    if plugin is None:
        return 1, dump(CNIError(INVALID_CONFIG, f"unknown eksnet plugin {plugin_type!r}").to_json(error_version(body)))
    return await run(plugin, env, body, host)


def run_env_block(plugin_type: str, env: bytes, body: bytes) -> tuple[int, bytes]:
    return asyncio.run(run_plugin(plugin_type, parse_env_block(env), body, LocalHost()))


def main(plugin_type: str) -> None:
    """The fallback as a program: the plugin runs on this process's CNI_* environment and stdin
    (what the daemon would have been sent), prints its answer and exits with its code."""
    import sys

    from .forward import cni_env, read_stdin

    code, out = run_env_block(plugin_type, cni_env(), read_stdin())
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    sys.exit(code)
