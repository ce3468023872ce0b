"""The daemon: an asyncio unix-socket server (mode 0600) in front of the IPAM service and the plugins.

Every request runs the shared CNI skeleton for the plugin the executable named. IPAM calls run on
the event loop thread, one at a time, so concurrent ADDs can never get the same address; lease
writes are committed by the store's writer thread (group commit) and the answer waits for them;
netlink work runs on worker threads (``Host.blocking``), in the network namespace of the process
that ran the executable (the node's, where ``master`` lives), not necessarily the daemon's.

Nothing that grows with the number of leases runs on the loop in one go: status is O(pools),
reconciliation stats namespace paths on a worker thread and releases in chunks, expired
cooldowns are pruned as they end. The plugins (and pyroute2) are imported before the socket opens.

SIGHUP re-reads the config file: pools change in place (live leases stay, leases outside the new
ranges are reported). Under systemd (``Type=notify``) the daemon sends READY=1 once it serves every
configured pool, RELOADING=1/READY=1 around a reload and STOPPING=1 when it stops."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import json
import logging
import os
import signal
import sys
import time
from typing import Any

from .. import netlink
from ..cni import protocol
from ..cni.delegate import exec_plugin
from ..cni.inprocess import parse_env_block, run_plugin
from ..cni.skeleton import COMMANDS, Host, Request
from ..cni.types import INVALID_ENVIRONMENT
from ..ipam.service import Histogram, IpamService, label
from ..ipam.store import Store
from ..perip import PerIp, is_per_ip
from ..plugins import TYPES, get_plugin
from .config import RESTART_ONLY, ConfigError, DaemonConfig, load
from .notify import hold_reloads, notify, reload_requested, reloading

log = logging.getLogger("eksnet-ipamd")
READ_TIMEOUT = 30.0  # a client that never finishes its request is dropped
STAT_CHUNK = 128  # namespace paths checked per loop iteration during reconciliation
SWITCH_INTERVAL = 0.0005  # seconds: how long the store's writer thread may keep the GIL from the loop


def _log_failure(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("background netlink work failed: %s", future.exception())


class DaemonHost(Host):
    def __init__(self, ipam: IpamService, workers: int) -> None:
        self.ipam = ipam
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eksnet-nl")
        self.pending: dict[object, asyncio.Future] = {}

    async def blocking(self, fn, *args):
        # The request's context goes along: netlink reads the caller's namespace from it.
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.pool, ctx.run, fn, *args)

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
    def __init__(self, config: DaemonConfig, config_file: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:
        self.config = config
        self.config_file = config_file
        self.overrides = overrides or {}
        self.store = Store(config.state_dir, background=True)
        self.ipam = IpamService(self.store, config.cooldown_seconds, config.pools)
        self.ipam.on_recheck = self._schedule_recheck
        self._rechecking: asyncio.Task | None = None
        self.host = DaemonHost(self.ipam, config.workers)
        self.ipam.perip = PerIp.from_config(config.pools, self.host)  # None without per-IP pools
        for plugin_type in TYPES:  # import the plugins (and pyroute2) now, not on the first ADD
            get_plugin(plugin_type)
        # What start-up made lives as long as the daemon: keep the cyclic GC from walking it (a
        # full collection over 1e5 leases' objects would hold the loop for tens of milliseconds).
        gc.freeze()
        self.servers: list[asyncio.AbstractServer] = []
        self.stopping = asyncio.Event()
        self.requests: dict[tuple[str, str, int], Histogram] = {}
        self.ready_sent = False
        self.reload_error = ""
        self.reloads = 0
        self._tasks: set[asyncio.Task] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        caller = netlink.peer_netns(writer.get_extra_info("socket"))
        token = netlink.CALLER_NETNS.set(caller)
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
            netlink.CALLER_NETNS.reset(token)
            if caller is not None:
                os.close(caller)
            writer.close()

    async def dispatch(self, kind: bytes, env: bytes, body: bytes) -> tuple[int, bytes]:
        if kind.startswith(b"cni:"):
            started = time.perf_counter()
            plugin, envd = kind[4:].decode("utf-8", "replace"), parse_env_block(env)
            code, out = await run_plugin(plugin, envd, body, self.host)
            command = envd.get("CNI_COMMAND", "")
            key = (plugin if plugin in TYPES else "unknown", command if command in COMMANDS else "other", code)
            if key not in self.requests:
                self.requests[key] = Histogram()
            self.requests[key].observe(time.perf_counter() - started)
            return code, out
        if kind == b"ctl:status":
            return 0, json.dumps(self.status(), indent=2).encode() + b"\n"
        if kind == b"ctl:reload":
            ok = self.reload()
            return (0 if ok else 1), json.dumps({"reloaded": ok, "error": self.reload_error}).encode() + b"\n"
        if kind == b"ctl:metrics":
            return 0, self.metrics().encode("utf-8", "replace")
        if kind == b"ctl:reconcile":
            return 0, json.dumps({"released": await self.reconcile()}).encode() + b"\n"
        return 1, protocol.error_json(INVALID_ENVIRONMENT, "unknown request kind", kind[:40].decode("utf-8", "replace"))

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

    def status(self) -> dict[str, Any]:
        out = self.ipam.status()
        out["ready"] = out["ready"] and self.ready_sent
        out["reloads"] = self.reloads
        if self.reload_error:
            out["reload_error"] = self.reload_error
        out["outside_leases"] = self.ipam.outside_list()
        if self.ipam.perip is not None:
            out["perip"] = self.ipam.perip.status()
        return out

    def all_served(self) -> bool:
        return all(p.served for p in self.ipam.named.values())

    def _announce(self) -> None:
        """READY=1 once every configured pool is served; the status line says which are not."""
        bad = sorted(n for n, p in self.ipam.named.items() if not p.served)
        if bad:
            for name in bad:
                log.error("pool %r is not served: %s", name, self.ipam.named[name].error)
            notify(f"STATUS=not serving pool(s) {', '.join(bad)}: see the log")
            return
        self.ready_sent = True
        notify("READY=1", f"STATUS=serving {len(self.ipam.named)} pool(s), {self.ipam.leases_total} lease(s)")

    def reload(self) -> bool:
        """Re-read the config file (SIGHUP): pools, cooldown and reconciliation apply now; the
        socket, state directory, metrics address and workers need a restart."""
        self.reloads += 1
        reloading()
        try:
            new = load(self.config_file, self.overrides)
        except ConfigError as exc:
            self.reload_error = str(exc)
            log.error("reload failed, keeping the current config: %s", exc)
            notify("READY=1" if self.ready_sent else "STATUS=reload failed", f"STATUS=reload failed: {exc}")
            return False
        for name in RESTART_ONLY:
            if getattr(new, name) != getattr(self.config, name):
                log.warning("%s changed in the config: it applies on restart", name)
                setattr(new, name, getattr(self.config, name))
        per_ip = {n: p for n, p in new.pools.items() if is_per_ip(p)}
        if per_ip != {n: p for n, p in self.config.pools.items() if is_per_ip(p)}:
            self.ipam.perip = PerIp.from_config(new.pools, self.host)
        self.config = new
        self.ipam.cooldown = new.cooldown_seconds
        named = self.ipam.set_named_pools(new.pools)
        self.reload_error = ""
        log.info("reloaded: %d pool(s) (%d served), %d lease(s) outside their pool's ranges", len(named),
                 sum(p.served for p in named.values()), sum(len(v) for v in self.ipam.outside.values()))
        self._announce()
        return True

    def _schedule_recheck(self) -> None:
        """A pool or a network's ranges changed: check the leases it concerns in steps."""
        if self._rechecking is None or self._rechecking.done():
            try:
                self._rechecking = asyncio.get_running_loop().create_task(self.ipam.recheck_async())
            except RuntimeError:  # no loop yet (start-up): the first request's loop picks it up
                self.ipam.recheck_now()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reconcile(self) -> int:
        """Release leases whose pod namespace is gone, a chunk of paths at a time (each chunk well
        under a millisecond; ADDs are served between chunks). On the loop rather than a thread:
        a thread of Python work takes the GIL from the loop for up to sys.getswitchinterval() at
        each hand-over, which would cost ADDs more than the chunks do."""
        paths, gone = list(self.ipam.by_netns), set()
        for i in range(0, len(paths), STAT_CHUNK):
            gone.update(p for p in paths[i:i + STAT_CHUNK] if p and not os.path.exists(p))
            await asyncio.sleep(0)
        released = await self.ipam.reconcile_async(self.config.reconcile_grace_seconds, gone)
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
                body, status = self.metrics().encode("utf-8", "replace"), "200 OK"
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
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        if reload_requested:  # asked for while starting: the file may have changed since it was read
            reload_requested.clear()
            self.reload()
        log.info("serving on %s (%d leases restored)", path, self.ipam.leases_total)
        self._announce()
        reconciler = asyncio.create_task(self._reconcile_loop())
        self._spawn(self._prune_store())
        try:
            await self.stopping.wait()
        finally:
            notify("STOPPING=1")
            reconciler.cancel()
            for s in self.servers:
                s.close()
            for task in list(self._tasks):
                task.cancel()
            self.host.pool.shutdown(wait=True)
            self.store.close()
            if os.path.exists(path):
                os.unlink(path)


    async def _prune_store(self) -> None:
        """Cooling rows a previous run left past their time (e.g. the daemon was down longer than
        the cooldown) are deleted in the background, a chunk per transaction."""
        try:
            removed = await self.ipam.prune_store()
        except Exception:  # noqa: BLE001 - the next prune catches up
            log.exception("pruning expired cooldowns failed")
            return
        if removed:
            log.info("pruned %d expired cooldown rows", removed)


def run(config: DaemonConfig, config_file: str | None = None, overrides: dict[str, Any] | None = None) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)
    hold_reloads()
    asyncio.run(_main(config, config_file, overrides))


async def _main(config: DaemonConfig, config_file: str | None, overrides: dict[str, Any] | None) -> None:
    await Daemon(config, config_file, overrides).serve()


def control(socket_path: str, op: str) -> tuple[int, bytes]:
    return protocol.call(socket_path, b"ctl:" + op.encode(), b"", b"", timeout=30.0)


def status_dict(socket_path: str) -> dict[str, Any]:
    code, out = control(socket_path, "status")
    return json.loads(out)
