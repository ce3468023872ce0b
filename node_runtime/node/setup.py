"""``python -m node_runtime.node.setup``: make every Multus ENI of this node usable, and serve its addresses.

For each interface of ``/etc/eksnet/multus.json`` it waits (``waitSeconds``) until IMDS lists an ENI at
that device index and the kernel has its link, then: renames the link ``multus<index>`` (seed 003's
``ip link set eth1 name multus``), tells systemd-networkd to leave it alone, sets ``rp_filter`` and brings
it up. It then writes one ``eksnet-ipamd`` pool per ENI into ``ipamd.json`` (prefix mode: the ENI's
delegated IPv4 /28 and IPv6 /80 prefixes; per-IP mode: the configured ranges and the ENI's id) and
reloads the daemon when the pools changed. Safe to run again at any time: at every boot
(``eksnet-multus-interfaces.service``) and whenever an ENI appears (udev -> ``eksnet-multus-hotplug.service``).

Exit status 0 when every expected interface is configured, 1 otherwise (the missing ones named).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..perip import ranges_in_subnet
from .config import DEFAULT_CONFIG, Interface, NodeConfig, NodeConfigError, rooted
from .imds import Imds, ImdsError

LOCK = "/run/eksnet/multus-setup.lock"
NETWORKD_DIR = "/etc/systemd/network"


def log(msg: str) -> None:
    print(f"eksnet-multus-setup: {msg}", file=sys.stderr, flush=True)


def links_by_mac() -> dict[str, str]:
    """MAC -> link name of every link in this network namespace."""
    out = {}
    for dev in Path("/sys/class/net").iterdir():
        try:
            out[(dev / "address").read_text().strip().lower()] = dev.name
        except OSError:
            continue
    return out


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def configure_link(iface: Interface, mac: str, link: str, rp_filter: int) -> None:
    unit = Path(rooted(f"{NETWORKD_DIR}/05-eksnet-{iface.name}.network"))
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(f"[Match]\nMACAddress={mac}\n\n[Link]\nUnmanaged=yes\n")
    if link != iface.name:
        _ip("link", "set", "dev", link, "down")
        _ip("link", "set", "dev", link, "name", iface.name)
    Path(f"/proc/sys/net/ipv4/conf/{iface.name}/rp_filter").write_text(f"{rp_filter}\n")
    _ip("link", "set", "dev", iface.name, "up")
    log(f"device {iface.device_index} ({mac}): {link} -> {iface.name}, up, rp_filter={rp_filter}")


PENDING = object()  # IMDS does not show yet what the ENI will have


def pool_for(iface: Interface, imds: Imds, mac: str) -> Any:
    """The daemon pool of one ENI; None when the ENI carries no pool (no prefixes expected, none delegated);
    ``PENDING`` while IMDS does not show what the ENI should have yet."""
    if iface.mode == "per-ip":
        eni_id = (imds.optional(f"latest/meta-data/network/interfaces/macs/{mac}/interface-id") or "").strip()
        if not eni_id:
            return PENDING
        # One range set per zone is listed; this ENI's subnet picks its own (node_runtime/perip.py).
        subnets = imds.eni(mac, "subnet-ipv4-cidr-block") + imds.eni(mac, "subnet-ipv6-cidr-blocks")
        ranges = ranges_in_subnet(iface.ranges, subnets)
        return {"mode": "per-ip", "eniId": eni_id, "ranges": ranges} if ranges else None
    v4, v6 = imds.eni(mac, "ipv4-prefix"), imds.eni(mac, "ipv6-prefix")
    if len(v4) < iface.ipv4_prefixes or len(v6) < iface.ipv6_prefixes:
        return PENDING  # the Lambda delegates them when it creates the ENI; IMDS may lag a little
    sets = [[{"subnet": p} for p in family] for family in (v4, v6) if family]
    # Delegated: AWS routes every address of the prefix to the ENI, so eksnet-ipamd hands out all 16 of a /28.
    return {"ranges": sets, "delegated": True} if sets else None


def read_json(path: str) -> dict[str, Any]:
    try:
        with open(rooted(path)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def write_json(path: str, data: dict[str, Any]) -> None:
    target = Path(rooted(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, target)


def reload_ipamd(config: NodeConfig) -> None:
    """Make the daemon read its pools again: ``EKSNET_IPAMD_RELOAD`` (a command; tests, demo), else systemd."""
    command = os.environ.get("EKSNET_IPAMD_RELOAD")
    if command:
        subprocess.run(shlex.split(command), check=False)
    elif not os.environ.get("EKSNET_ROOT") and os.path.isdir("/run/systemd/system"):
        subprocess.run(["systemctl", "try-reload-or-restart", config.ipamd_unit], check=False)


@contextmanager
def locked():
    path = Path(rooted(LOCK))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def run(config: NodeConfig, *, wait_seconds: float, only: int | None = None, imds: Imds | None = None) -> list[int]:
    """Configure the expected interfaces (or only device ``only``); returns the device indexes still missing."""
    imds = imds or Imds()
    wanted = [i for i in config.interfaces if only is None or i.device_index == only]
    pending = {i.device_index: i for i in wanted}
    pools: dict[str, Any] = {}
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            macs = imds.macs_by_device()
        except ImdsError as exc:
            log(str(exc))
            macs = {}
        links = links_by_mac()
        for index, iface in list(pending.items()):
            mac = macs.get(index)
            link = links.get(mac or "")
            if mac is None or link is None:
                continue
            pool = pool_for(iface, imds, mac) if config.ipam_pools else None
            if pool is PENDING:
                continue
            try:
                configure_link(iface, mac, link, config.rp_filter)
            except (subprocess.CalledProcessError, OSError) as exc:
                log(f"device {index}: {getattr(exc, 'stderr', '') or exc}")
                continue
            if pool is not None:
                pools[iface.pool] = pool
            del pending[index]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(1)
    if not config.ipam_pools:
        return _report(pending, wait_seconds)
    with locked():
        current = read_json(config.ipamd_config)
        merged = dict(current)
        merged_pools = dict(current.get("pools", {}))
        merged_pools.update(pools)
        if only is None:  # a full run knows which ENIs are gone: their pools go too
            for iface in wanted:
                if iface.device_index in pending:
                    merged_pools.pop(iface.pool, None)
        merged["pools"] = merged_pools
        if merged != current:
            write_json(config.ipamd_config, merged)
            reload_ipamd(config)
    return _report(pending, wait_seconds)


def _report(pending: dict[int, Interface], wait_seconds: float) -> list[int]:
    for index in sorted(pending):
        log(f"device {index}: no Multus ENI configured after {wait_seconds:.0f}s; this node takes no pods until it is")
    return sorted(pending)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m node_runtime.node.setup", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--wait", type=float, help="seconds to wait for the ENIs (default: the config's waitSeconds)")
    p.add_argument("--device", type=int, help="configure this device index only")
    args = p.parse_args(argv)
    try:
        config = NodeConfig.load(args.config)
    except NodeConfigError as exc:
        log(str(exc))
        return 2
    missing = run(config, wait_seconds=config.wait_seconds if args.wait is None else args.wait, only=args.device)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
