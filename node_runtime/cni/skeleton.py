"""The shared CNI skeleton: parse the environment and stdin, check versions, dispatch the command
to a plugin and render its result or error as the spec says.

A plugin only implements ``add/delete/check/gc/status``; it never touches the protocol. The same
``run`` serves the daemon (which runs the plugins for the thin executables) and the executables'
in-process fallback, so both behave identically."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .types import (
    DECODE_FAILURE,
    INCOMPATIBLE_VERSION,
    INTERNAL,
    INVALID_CONFIG,
    INVALID_ENVIRONMENT,
    LATEST,
    SUPPORTED_VERSIONS,
    UNSUPPORTED_FIELD,
    CNIError,
    at_least,
    check_supported,
    normalize_result,
    result_for_version,
)

COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_KNOWN_ARGS = frozenset({"IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID",
                         "K8S_POD_UID"})


@dataclass
class Request:
    """One CNI invocation: the environment and the network configuration, validated."""

    command: str
    config: dict[str, Any]
    version: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: dict[str, str] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes = b""

    @property
    def network(self) -> str:
        return self.config["name"]

    def prev_result(self) -> dict[str, Any] | None:
        raw = self.config.get("prevResult")
        return None if raw is None else normalize_result(raw)


class Plugin:
    """Base of every plugin: commands it does not override succeed doing nothing."""

    name = "plugin"
    supported_versions: tuple[str, ...] = SUPPORTED_VERSIONS

    async def add(self, req: Request, host: Host) -> dict[str, Any]:
        raise NotImplementedError

    async def delete(self, req: Request, host: Host) -> None:
        return None

    async def check(self, req: Request, host: Host) -> None:
        return None

    async def gc(self, req: Request, host: Host) -> None:
        return None

    async def status(self, req: Request, host: Host) -> None:
        return None


class Host:
    """What the process running a plugin offers it: the IPAM service, a way to run blocking
    (netlink) work off the event loop, and delegation to other plugin executables."""

    ipam: Any = None

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    async def later(self, key: Any, fn: Callable[..., Any], *args: Any) -> None:
        """Run blocking work the answer need not wait for. A long-lived host (the daemon) runs it
        after answering; ``settle(key)`` waits for it. Here: at once."""
        await self.blocking(fn, *args)

    async def settle(self, key: Any) -> None:
        """Wait for work ``later`` started under ``key`` (e.g. a link still being deleted)."""
        return None

    async def delegate(self, plugin_type: str, req: Request, command: str, stdin: bytes) -> dict[str, Any] | None:
        raise CNIError(INVALID_CONFIG, f"cannot delegate to {plugin_type!r} here")

    def plugin(self, plugin_type: str) -> Plugin | None:
        """An in-process plugin for ``plugin_type`` (skips an exec), or None."""
        return None


def _text(env: dict[str, str], key: str) -> str:
    return env.get(key, "")


def parse_args(raw: str) -> dict[str, str]:
    """CNI_ARGS ("K=V;K=V"); unknown keys are code 2 unless IgnoreUnknown is set, as in libcni."""
    args: dict[str, str] = {}
    if not raw:
        return args
    for pair in raw.split(";"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CNIError(INVALID_ENVIRONMENT, "invalid CNI_ARGS", f"pair {pair!r} is not KEY=VALUE")
        args[key] = value
    ignore = args.get("IgnoreUnknown", "").lower() in ("1", "true")
    unknown = sorted(set(args) - _KNOWN_ARGS)
    if unknown and not ignore:
        raise CNIError(UNSUPPORTED_FIELD, "unknown CNI_ARGS", ", ".join(unknown))
    return args


def _check_ifname(name: str) -> None:
    if not name:
        raise CNIError(INVALID_ENVIRONMENT, "CNI_IFNAME is required")
    if len(name.encode()) > 15 or name in (".", "..") or any(c in name for c in "/:") or any(c.isspace() for c in name):
        raise CNIError(INVALID_ENVIRONMENT, "invalid CNI_IFNAME", f"{name!r}: at most 15 bytes, no '/', ':' or spaces")


def _decode_config(stdin: bytes) -> dict[str, Any]:
    try:
        config = json.loads(stdin.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CNIError(DECODE_FAILURE, "failed to decode network configuration", str(exc)[:200]) from None
    if not isinstance(config, dict):
        raise CNIError(DECODE_FAILURE, "network configuration is not a JSON object")
    return config


def parse_request(env: dict[str, str], stdin: bytes, supported: tuple[str, ...] = SUPPORTED_VERSIONS) -> Request:
    command = _text(env, "CNI_COMMAND")
    if command not in COMMANDS:
        raise CNIError(INVALID_ENVIRONMENT, "invalid CNI_COMMAND", f"{command!r} is not one of {', '.join(COMMANDS)}")
    config = _decode_config(stdin)
    version = check_supported(config.get("cniVersion"), supported)
    req = Request(command=command, config=config, version=version, env=env, stdin=stdin)
    if command in ("CHECK",) and not at_least(version, "0.4.0"):
        raise CNIError(INCOMPATIBLE_VERSION, "config version does not allow CHECK", f"cniVersion {version}")
    if command in ("GC", "STATUS") and not at_least(version, "1.1.0"):
        raise CNIError(INCOMPATIBLE_VERSION, f"config version does not allow {command}", f"cniVersion {version}")
    name = config.get("name")
    if command != "STATUS" and (not isinstance(name, str) or not _ID.match(name)):
        raise CNIError(INVALID_CONFIG, "invalid network name", "name: letters, digits, '_', '.', '-'")
    if not isinstance(config.get("type"), str) or not config["type"]:
        raise CNIError(INVALID_CONFIG, "missing plugin type", "type must be a non-empty string")
    req.path = [p for p in _text(env, "CNI_PATH").split(":") if p]
    req.args = parse_args(_text(env, "CNI_ARGS"))
    if command in ("ADD", "DEL", "CHECK"):
        req.container_id = _text(env, "CNI_CONTAINERID")
        if not _ID.match(req.container_id):
            raise CNIError(INVALID_ENVIRONMENT, "invalid CNI_CONTAINERID",
                           "required: letters, digits, '_', '.', '-'")
        req.ifname = _text(env, "CNI_IFNAME")
        _check_ifname(req.ifname)
        req.netns = _text(env, "CNI_NETNS")
        if command != "DEL" and not req.netns:
            raise CNIError(INVALID_ENVIRONMENT, f"CNI_NETNS is required for {command}")
    return req


def _version_info(stdin: bytes, supported: tuple[str, ...]) -> dict[str, Any]:
    asked = LATEST
    try:
        config = json.loads(stdin.decode("utf-8")) if stdin.strip() else {}
        if isinstance(config, dict) and config.get("cniVersion") in supported:
            asked = config["cniVersion"]
    except (UnicodeDecodeError, ValueError, RecursionError):
        pass
    return {"cniVersion": asked, "supportedVersions": list(supported)}


def error_version(stdin: bytes) -> str:
    try:
        version = json.loads(stdin.decode("utf-8")).get("cniVersion")
    except Exception:  # noqa: BLE001 - any undecodable input reports in the latest version
        return LATEST
    return version if version in SUPPORTED_VERSIONS else LATEST


def dump(obj: Any) -> bytes:
    return (json.dumps(obj) + "\n").encode()


async def run(plugin: Plugin, env: dict[str, str], stdin: bytes, host: Host,
              on_error: Callable[[BaseException], Awaitable[None]] | None = None) -> tuple[int, bytes]:
    """Run one CNI command; returns (exit code, stdout). Never raises for bad input."""
    try:
        if _text(env, "CNI_COMMAND") == "VERSION":
            return 0, dump(_version_info(stdin, plugin.supported_versions))
        req = parse_request(env, stdin, plugin.supported_versions)
        if req.command == "ADD":
            result = await plugin.add(req, host)
            return 0, dump(result_for_version(result, req.version))
        if req.command == "DEL":
            await plugin.delete(req, host)
        elif req.command == "CHECK":
            if not req.config.get("disableCheck"):
                await plugin.check(req, host)
        elif req.command == "GC":
            if not req.config.get("disableGC"):
                await plugin.gc(req, host)
        elif req.command == "STATUS":
            await plugin.status(req, host)
        return 0, b""
    except CNIError as err:
        return 1, dump(err.to_json(error_version(stdin)))
    except Exception as exc:  # noqa: BLE001 - a plugin bug still answers with a CNI error, never a traceback
        if on_error is not None:
            await on_error(exc)
        return 1, dump(CNIError(INTERNAL, "internal error", f"{type(exc).__name__}: {exc}"[:500])
                        .to_json(error_version(stdin)))
