"""Run another CNI plugin executable (a delegate, e.g. the reference ``host-local`` IPAM) found in
``CNI_PATH``, the way libcni does: same environment, ``CNI_COMMAND`` set, config on stdin."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from .skeleton import Request
from .types import DELEGATE_FAILURE, INVALID_CONFIG, CNIError

DELEGATE_TIMEOUT = 60.0


def find(plugin_type: str, path: list[str]) -> str:
    if not plugin_type or "/" in plugin_type or plugin_type in (".", ".."):
        raise CNIError(INVALID_CONFIG, f"invalid plugin type {plugin_type!r}")
    for directory in path:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(INVALID_CONFIG, f"failed to find plugin {plugin_type!r} in CNI_PATH", ":".join(path))


async def exec_plugin(plugin_type: str, req: Request, command: str, stdin: bytes) -> dict[str, Any] | None:
    binary = find(plugin_type, req.path)
    env = dict(req.env, CNI_COMMAND=command)
    proc = await asyncio.create_subprocess_exec(binary, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), DELEGATE_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise CNIError(DELEGATE_FAILURE, f"{plugin_type} timed out") from None
    if proc.returncode != 0:
        try:
            error = json.loads(out)
            raise CNIError(int(error["code"]), str(error.get("msg", "")), str(error.get("details", "")))
        except (ValueError, KeyError, TypeError):
            raise CNIError(DELEGATE_FAILURE, f"{plugin_type} failed (exit {proc.returncode})",
                           (out + err).decode("utf-8", "replace")[-500:]) from None
    if command != "ADD":
        return None
    try:
        return json.loads(out)
    except ValueError:
        raise CNIError(DELEGATE_FAILURE, f"{plugin_type} printed no JSON result", out[-500:].decode("utf-8", "replace")) from None
