"""The daemon's configuration: a JSON file, then flags on top. Errors name the key to fix."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

from ..perip import validate_pools

DEFAULT_CONFIG = "/etc/eksnet/ipamd.json"


class ConfigError(ValueError):
    pass


@dataclass
class DaemonConfig:
    socket: str = "/run/eksnet/ipamd.sock"
    state_dir: str = "/var/lib/eksnet/ipamd"
    cooldown_seconds: float = 30.0
    reconcile_interval_seconds: float = 60.0
    reconcile_grace_seconds: float = 120.0
    metrics_listen: str = ""
    workers: int = 16
    pools: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> DaemonConfig:
        for name in ("cooldown_seconds", "reconcile_interval_seconds", "reconcile_grace_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.workers, int) or not 1 <= self.workers <= 256:
            raise ConfigError("workers must be an integer from 1 to 256")
        if not isinstance(self.pools, dict) or not all(
                isinstance(v, dict) and isinstance(v.get("ranges"), list) for v in self.pools.values()):
            raise ConfigError('pools must map names to {"ranges": [[{"subnet": ...}]]}')
        try:
            validate_pools(self.pools)  # the "mode" of each pool; per-IP pools: node_runtime/perip.py
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.metrics_listen and ":" not in self.metrics_listen:
            raise ConfigError("metrics_listen must be HOST:PORT")
        if not self.socket:
            raise ConfigError("socket must be a path")
        return self


def load(path: str | None, overrides: dict[str, Any]) -> DaemonConfig:
    data: dict[str, Any] = {}
    if path is None and os.path.exists(DEFAULT_CONFIG):
        path = DEFAULT_CONFIG
    if path:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
    known = {f.name for f in fields(DaemonConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown keys in {path}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return DaemonConfig(**data).validate()
