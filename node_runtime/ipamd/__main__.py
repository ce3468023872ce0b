"""``eksnet-ipamd``: run the daemon in the foreground, or ask a running one for its status/metrics.

    eksnet-ipamd [--config FILE] [--socket PATH] [--state-dir DIR] [--cooldown S] ...
    eksnet-ipamd status|metrics|reconcile|reload|ready [--socket PATH]

``ready`` exits 0 when the daemon answers and serves every pool of its config (what a node's
readiness check asks), else 1 and says which pool is not served. ``reload`` is SIGHUP through the
socket, and answers whether the new config applied.
"""

from __future__ import annotations

import argparse
import logging
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eksnet-ipamd", description="eksnet IPAM daemon")
    p.add_argument("command", nargs="?", default="serve", choices=["serve", "status", "metrics", "reconcile", "reload", "ready"])
    p.add_argument("--config", help="JSON config file (default /etc/eksnet/ipamd.json if present)")
    p.add_argument("--socket", help="unix socket path (default /run/eksnet/ipamd.sock)")
    p.add_argument("--state-dir", dest="state_dir", help="lease database directory (default /var/lib/eksnet/ipamd)")
    p.add_argument("--cooldown", dest="cooldown_seconds", type=float, help="seconds before a released address is reused")
    p.add_argument("--reconcile-interval", dest="reconcile_interval_seconds", type=float)
    p.add_argument("--reconcile-grace", dest="reconcile_grace_seconds", type=float)
    p.add_argument("--metrics-listen", dest="metrics_listen", help="HOST:PORT for GET /metrics")
    p.add_argument("--workers", type=int, help="netlink worker threads (default 16)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from .notify import hold_reloads

        hold_reloads()
    from .config import ConfigError, load

    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    try:
        config = load(args.config, overrides)
    except ConfigError as exc:
        print(f"eksnet-ipamd: {exc}", file=sys.stderr)
        return 2
    if args.command != "serve":
        from .server import control

        try:
            code, out = control(config.socket, "status" if args.command == "ready" else args.command)
        except OSError as exc:
            print(f"eksnet-ipamd: cannot reach the daemon at {config.socket}: {exc}", file=sys.stderr)
            return 1
        if args.command == "ready":
            return _ready(out)
        sys.stdout.write(out.decode())
        return code
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from .server import run

    try:
        run(config, args.config, overrides)
    except OSError as exc:
        print(f"eksnet-ipamd: {exc}", file=sys.stderr)
        return 1
    return 0


def _ready(out: bytes) -> int:
    import json

    status = json.loads(out)
    pools = status.get("named_pools", {})
    bad = {name: p.get("error", "") for name, p in pools.items() if not p.get("served")}
    if status.get("ready") and not bad:
        print(f"ready: {len(pools)} pool(s) served: {', '.join(sorted(pools)) or '-'}")
        return 0
    for name, error in sorted(bad.items()):
        print(f"pool {name!r} is not served: {error}", file=sys.stderr)
    if not bad:
        print("not ready yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
