"""The daemon: an asyncio unix-socket server (mode 0600) in front of the IPAM service and the plugins.

Every request runs the shared CNI skeleton for the plugin the executable named. IPAM calls run on
the event loop thread, one at a time, so concurrent ADDs can never get the same address; netlink
work runs on worker threads (``Host.blocking``). Reconciliation runs on a timer."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import signal
import time
from typing import Any

from ..cni import protocol
from ..cni.delegate import exec_plugin
from ..cni.inprocess import parse_env_block, run_plugin
from ..cni.skeleton import Host, Request
from ..ipam.service import Histogram, IpamService, label
from ..ipam.store import Store
from ..perip import PerIp
from ..plugins import TYPES
from .config import DaemonConfig

log = logging.getLogger("eksnet-ipamd")
READ_TIMEOUT = 30.0  # a client that never finishes its request is dropped


def _log_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("background netlink work failed: %s", future.exception())


class DaemonHost(Host):
    def __init__(self, ipam: IpamService, workers: int) -> None:
        self.ipam = ipam
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eksnet-nl")
        self.pending: dict[object, asyncio.Future] = {}

    async def blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def later(self, key, fn, *args):
        if key in self.pending:
            return  # the same work is already under way (a repeated DEL)
        future = asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)
        self.pending[key] = future

        def done(f: asyncio.Future) -> None:
            if self.pending.get(key) is f:
                del self.pending[key]
            _log_failure(f)

        future.add_done_callback(done)

    async def settle(self, key):
        future = self.pending.get(key)
        if future is not None:
            await asyncio.wait([future])

    async def delegate(self, plugin_type: str, req: Request, command: str, stdin: bytes):
        return await exec_plugin(plugin_type, req, command, stdin)

    def plugin(self, plugin_type: str):
        from ..plugins import get_plugin

        return get_plugin(plugin_type)


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.store = Store(config.state_dir)
        self.ipam = IpamService(self.store, config.cooldown_seconds, config.pools)
        self.host = DaemonHost(self.ipam, config.workers)
        self.ipam.perip = PerIp.from_config(config.pools, self.host)  # None without per-IP pools
        self.servers: list[asyncio.AbstractServer] = []
        self.stopping = asyncio.Event()
        self.requests: dict[tuple[str, str, int], Histogram] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                kind, env, body = await asyncio.wait_for(protocol.read_request(reader), READ_TIMEOUT)
            except protocol.ProtocolError as exc:  # too large, truncated, not the wire format
                code, out = 1, protocol.error_json(exc.code, str(exc))
            else:
                code, out = await self.dispatch(kind, env, body)
            writer.write(protocol.answer(code, out))
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    async def dispatch(self, kind: bytes, env: bytes, body: bytes) -> tuple[int, bytes]:
        if kind.startswith(b"cni:"):
            started = time.perf_counter()
            plugin, envd = kind[4:].decode("utf-8", "replace"), parse_env_block(env)
            code, out = await run_plugin(plugin, envd, body, self.host)
            key = (plugin if plugin in TYPES else "unknown", envd.get("CNI_COMMAND", "")[:8], code)
            if key not in self.requests:
                self.requests[key] = Histogram()
            self.requests[key].observe(time.perf_counter() - started)
            return code, out
        if kind == b"ctl:status":
            status = self.ipam.status()
            if self.ipam.perip is not None:
                status["perip"] = self.ipam.perip.status()
            return 0, json.dumps(status, indent=2).encode() + b"\n"
        if kind == b"ctl:metrics":
            return 0, self.metrics().encode()
        if kind == b"ctl:reconcile":
            return 0, json.dumps({"released": await self.reconcile()}).encode() + b"\n"
        return 1, b'{"code": 4, "msg": "unknown request kind"}\n'

    def metrics(self) -> str:
        lines = ["# HELP eksnet_cni_request_seconds Time the daemon spent on a CNI command (exit code 0 or 1).",
                 "# TYPE eksnet_cni_request_seconds histogram"]
        for (plugin, command, code), hist in sorted(self.requests.items()):
            labels = f'plugin="{plugin}",command="{label(command)}",exit="{code}"'
            for line in hist.lines("eksnet_cni_request_seconds"):
                name, _, value = line.rpartition(" ")
                if "{" in name:
                    name = name.replace("{", "{" + labels + ",", 1)
                else:
                    name = f"{name}{{{labels}}}"
                lines.append(f"{name} {value}")
        return self.ipam.metrics() + "\n".join(lines) + "\n"

    async def reconcile(self) -> int:
        """Release leases whose pod namespace is gone; the stat calls run off the loop."""
        paths = {o.netns for o in self.ipam.owners.values() if o.netns}
        gone = await asyncio.get_running_loop().run_in_executor(
            self.host.pool, lambda: {p for p in paths if not os.path.exists(p)})
        released = self.ipam.reconcile(self.config.reconcile_grace_seconds, exists=lambda p: p not in gone)
        if released:
            log.info("reconciled %d attachments whose namespace is gone", released)
        if self.ipam.perip is not None:  # per-IP addresses on the ENI without a lease
            await self.ipam.perip.reconcile(self.ipam)
        return released

    async def _reconcile_loop(self) -> None:
        interval = self.config.reconcile_interval_seconds
        while interval > 0:
            try:
                await asyncio.wait_for(self.stopping.wait(), interval)
                return
            except TimeoutError:
                pass
            try:
                await self.reconcile()
            except Exception:  # noqa: BLE001 - keep serving; the next round retries
                log.exception("reconciliation failed")

    async def _metrics(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body, status = self.metrics().encode(), "200 OK"
            else:
                body, status = b"not found\n", "404 Not Found"
            writer.write(f"HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def serve(self) -> None:
        path = self.config.socket
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        if os.path.exists(path):
            try:
                control(path, "status")
            except OSError:
                os.unlink(path)  # left behind by a daemon that died
            else:
                raise OSError(f"another eksnet-ipamd is serving {path}")
        old = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            server = await asyncio.start_unix_server(self.handle, path=path, backlog=protocol.BACKLOG)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.servers.append(server)
        if self.config.metrics_listen:
            host, _, port = self.config.metrics_listen.rpartition(":")
            self.servers.append(await asyncio.start_server(self._metrics, host or "127.0.0.1", int(port)))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        log.info("serving on %s (%d leases restored)", path, sum(len(o.leases) for o in self.ipam.owners.values()))
        reconciler = asyncio.create_task(self._reconcile_loop())
        try:
            await self.stopping.wait()
        finally:
            reconciler.cancel()
            for s in self.servers:
                s.close()
            self.host.pool.shutdown(wait=True)
            self.store.close()
            if os.path.exists(path):
                os.unlink(path)


def run(config: DaemonConfig) -> None:
    asyncio.run(Daemon(config).serve())


def control(socket_path: str, op: str) -> tuple[int, bytes]:
    return protocol.call(socket_path, b"ctl:" + op.encode(), b"", b"", timeout=30.0)


def status_dict(socket_path: str) -> dict[str, Any]:
    code, out = control(socket_path, "status")
    return json.loads(out)
