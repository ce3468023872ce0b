"""``python -m node_runtime.node.ready``: is this node ready for pods on its Multus networks?

Passes (exit 0) only when every interface of ``/etc/eksnet/multus.json`` is attached (IMDS lists an ENI
at its device index), configured (the link of that MAC is named as expected and up), described to
``eksnet-ipamd`` (its pool in ``ipamd.json`` holds what IMDS shows for the ENI now) and served (the daemon
answers on its socket and lists the pool). Otherwise exit 1, naming each failure. ``--wait S`` retries
until it passes or S seconds went by.

kubelet's drop-in runs it as ``ExecStartPre``: kubelet does not start, so the node never registers and
never takes pods, until it passes (a kubelet may not remove its own taints under NodeRestriction, so
gating the start is the way). kubelet's ``Restart=`` runs it again after a failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .config import DEFAULT_CONFIG, NodeConfig, NodeConfigError, rooted
from .imds import Imds, ImdsError
from .setup import PENDING, pool_for, read_json


def daemon_pools(socket_path: str) -> tuple[set[str] | None, str | None]:
    """The pool names the daemon serves (None if its status does not name them), or an error."""
    from node_runtime.cni.forward import call  # the daemon's control request, as `eksnet-ipamd status` sends it

    try:
        code, out = call(socket_path, b"ctl:status", b"", b"", timeout=10.0)
    except OSError as exc:
        return None, f"eksnet-ipamd does not answer on {socket_path}: {exc}"
    if code != 0:
        return None, f"eksnet-ipamd status failed ({code}): {out.decode(errors='replace').strip()}"
    try:
        status: dict[str, Any] = json.loads(out)
    except ValueError:
        return None, "eksnet-ipamd status is not JSON"
    return pool_names(status), None


def pool_names(status: dict[str, Any]) -> set[str] | None:
    """Pool names from the daemon's status, in any of the shapes it has had: ``named_pools`` (list or
    mapping), ``pools`` as a mapping, or ``pools`` entries carrying ``name``/``pool``."""
    named = status.get("named_pools")
    if isinstance(named, dict):  # eksnet-ipamd with readiness: name -> {"served": bool, ...}
        return {str(n) for n, v in named.items() if not isinstance(v, dict) or v.get("served", True)}
    if isinstance(named, list):
        return {str(n) for n in named}
    pools = status.get("pools")
    if isinstance(pools, dict):
        return set(pools)
    if isinstance(pools, list) and pools and all(isinstance(p, dict) and ("name" in p or "pool" in p) for p in pools):
        return {str(p.get("name", p.get("pool"))) for p in pools}
    return None


def check(config: NodeConfig, imds: Imds | None = None) -> list[str]:
    """Every reason the node is not ready (empty: ready)."""
    imds = imds or Imds()
    problems: list[str] = []
    try:
        macs = imds.macs_by_device()
    except ImdsError as exc:
        return [str(exc)]
    ipamd = read_json(config.ipamd_config).get("pools", {})
    for iface in config.interfaces:
        mac = macs.get(iface.device_index)
        if mac is None:
            problems.append(f"{iface.name}: no ENI attached at device index {iface.device_index}")
            continue
        link = Path(f"/sys/class/net/{iface.name}")
        try:
            link_mac = (link / "address").read_text().strip().lower()
            up = int((link / "flags").read_text().strip(), 16) & 1
        except OSError:
            problems.append(f"{iface.name}: no such link (ENI {mac} at device index {iface.device_index} not renamed)")
            continue
        if link_mac != mac:
            problems.append(f"{iface.name}: has MAC {link_mac}, but the ENI at device index {iface.device_index} "
                            f"is {mac}")
            continue
        if not up:
            problems.append(f"{iface.name}: link is down")
        if not config.ipam_pools:
            continue
        expected = pool_for(iface, imds, mac)
        if expected is PENDING:
            problems.append(f"{iface.name}: IMDS does not show the ENI's prefixes/id yet")
        elif ipamd.get(iface.pool) != expected:
            problems.append(f"{iface.name}: pool {iface.pool} in {rooted(config.ipamd_config)} is "
                            f"{ipamd.get(iface.pool)!r}, IMDS shows {expected!r}")
    if not config.ipam_pools:
        return problems
    served, error = daemon_pools(rooted(config.ipamd_socket))
    if error:
        problems.append(error)
    elif served is not None:
        for iface in config.interfaces:
            if iface.pool in ipamd and iface.pool not in served:
                problems.append(f"{iface.name}: eksnet-ipamd does not serve pool {iface.pool} (serves {sorted(served)})")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m node_runtime.node.ready", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--wait", type=float, default=0.0, help="retry for this many seconds before failing")
    args = p.parse_args(argv)
    try:
        config = NodeConfig.load(args.config)
    except NodeConfigError as exc:
        print(f"eksnet-multus-ready: {exc}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.wait
    while True:
        problems = check(config)
        if not problems:
            print(f"eksnet-multus-ready: ready ({', '.join(i.name for i in config.interfaces)})", file=sys.stderr)
            return 0
        if time.monotonic() >= deadline:
            for line in problems:
                print(f"eksnet-multus-ready: not ready: {line}", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
