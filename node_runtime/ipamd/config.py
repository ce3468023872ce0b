"""The daemon's configuration: a JSON file, then flags on top. Errors name the key to fix."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, fields
from typing import Any

from ..perip import validate_pools

DEFAULT_CONFIG = "/etc/eksnet/ipamd.json"
RESTART_ONLY = ("socket", "state_dir", "metrics_listen", "workers")  # a reload cannot change these
log = logging.getLogger("eksnet-ipamd")


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
        # Each pool is checked by the IPAM service: a bad pool is reported as not served (status,
        # log, no READY=1), the others are served.
        if not isinstance(self.pools, dict):
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


def config_path(path: str | None) -> str | None:
    """The file to read: the one named, else the default one if present."""
    if path is None and os.path.exists(DEFAULT_CONFIG):
        return DEFAULT_CONFIG
    return path


def load(path: str | None, overrides: dict[str, Any]) -> DaemonConfig:
    data: dict[str, Any] = {}
    path = config_path(path)
    if path and not os.path.exists(path):
        # A node starts the daemon before its setup writes the pools: no pools until the file is
        # written and the daemon reloaded (SIGHUP), which reads this same path.
        log.warning("%s does not exist yet: no pools until it is written and the daemon reloaded", path)
    elif path:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a JSON object")
    known = {f.name for f in fields(DaemonConfig)}
    unknown = sorted(set(data) - known)
    if unknown:  # written by a newer node setup, or a typo: said, not fatal
        log.warning("ignoring unknown keys in %s: %s; known: %s", path, ", ".join(unknown), ", ".join(sorted(known)))
        data = {k: v for k, v in data.items() if k in known}
    data.update({k: v for k, v in overrides.items() if v is not None})
    return DaemonConfig(**data).validate()
