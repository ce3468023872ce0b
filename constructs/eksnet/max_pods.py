"""Max pods per node, computed from the instance type's network limits and the VPC CNI mode.

Why computed: kubelet's ``maxPods`` must match what the VPC CNI can actually address on the
node. Too high and pods stay ``ContainerCreating`` waiting for an IP; too low and prefix mode's
extra addresses are wasted. The formula is the one of amazon-eks-ami's
``max-pods-calculator.sh`` (and of the EKS user guide):

* secondary IP mode: ``ENIs * (IPv4 per ENI - 1) + 2`` (the first address of each ENI is the
  ENI's own; the ``+ 2`` are aws-node and kube-proxy, which run on the host network);
* prefix mode (Nitro or bare metal only): ``ENIs * ((IPv4 per ENI - 1) * 16) + 2``;
* custom networking: the primary ENI carries no pods, so one ENI fewer;
* security groups for pods: the trunk ENI takes one of the instance's ENI slots (EC2 counts it in the
  instance's maximum), so one ENI fewer again;
* IPv6: one /80 prefix on the primary ENI, so the ENI count does not limit pods;
* the recommended value is capped at 110 pods (instance types with 30 vCPUs or fewer) or
  250 (more than 30 vCPUs), as the calculator does; ``cap=False`` gives the uncapped figure
  (the calculator's ``--show-max-allowed``, the numbers of ``eni-max-pods.txt``).

The limits come from an offline table, ``data/instance_limits.json`` (facts from EC2
DescribeInstanceTypes), so synth stays offline. ``python -m eksnet.max_pods refresh`` rewrites
it from EC2 when AWS credentials are available.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parent / "data" / "instance_limits.json"

IPS_PER_IPV4_PREFIX = 16  # a /28 prefix
MAX_PODS_LOW_CPU = 110  # the Kubernetes recommendation, for instance types with <= 30 vCPUs
MAX_PODS_HIGH_CPU = 250  # for larger instance types
HIGH_CPU_THRESHOLD = 30


@dataclass(frozen=True)
class InstanceLimits:
    """The network facts of one instance type that decide how many pods it can address."""

    instance_type: str
    max_enis: int  # network interfaces on the default network card: the only card the VPC CNI uses
    ipv4_per_eni: int
    ipv6_per_eni: int
    vcpus: int
    hypervisor: str  # "nitro", "xen", or "" (bare metal reports none)
    bare_metal: bool = False

    @property
    def supports_prefix_delegation(self) -> bool:
        """Prefix delegation needs the Nitro system (bare metal instances are Nitro too)."""
        return self.hypervisor == "nitro" or self.bare_metal

    @property
    def supports_trunk_eni(self) -> bool:
        """Security groups for pods need a trunk ENI: Nitro instances, except the burstable t family."""
        return self.supports_prefix_delegation and not self.instance_type.startswith(("t1.", "t2.", "t3", "t4"))

    @property
    def pod_cap(self) -> int:
        return MAX_PODS_HIGH_CPU if self.vcpus > HIGH_CPU_THRESHOLD else MAX_PODS_LOW_CPU


class UnknownInstanceType(LookupError):
    pass


@functools.cache
def _table(path: Path = DATA_FILE) -> dict[str, InstanceLimits]:
    raw = json.loads(path.read_text())
    return {name: InstanceLimits(instance_type=name, **row) for name, row in raw["instanceTypes"].items()}


def limits(instance_type: str) -> InstanceLimits:
    """The limits of ``instance_type`` from the offline table."""
    try:
        return _table()[instance_type]
    except KeyError:
        raise UnknownInstanceType(
            f"instance type {instance_type!r} is not in {DATA_FILE.name}: check the name, refresh the table with "
            "`python -m eksnet.max_pods refresh` (needs AWS credentials), or give the node group an explicit max_pods"
        ) from None


def max_pods(
    instance_type: str | InstanceLimits,
    *,
    ipv6: bool = False,
    prefix_delegation: bool = False,
    custom_networking: bool = False,
    trunk_eni: bool = False,
    max_enis: int | None = None,
    multus_enis: int = 0,
    cap: bool = True,
) -> int:
    """The kubelet ``maxPods`` for ``instance_type`` under the given VPC CNI mode.

    ``max_enis`` limits the ENIs the CNI may use (the calculator's ``--cni-max-eni``); ``trunk_eni``
    is security groups for pods (``ENABLE_POD_ENI``), whose trunk ENI is not available to pods.
    ``multus_enis`` are the Multus ENIs a node carries (``eksnet.multus``): the VPC CNI leaves them alone
    (``no_manage``), so they are ENIs it cannot use; ``check_multus_fit`` refuses a type that cannot hold them.
    Raises ValueError for a combination the VPC CNI cannot run (IPv6 or prefix mode off Nitro,
    custom networking on a type with a single ENI).
    """
    lim = instance_type if isinstance(instance_type, InstanceLimits) else limits(instance_type)
    check_multus_fit(lim, multus_enis)
    if ipv6:
        if not lim.supports_prefix_delegation:
            raise ValueError(
                f"{lim.instance_type} is not a Nitro instance type: IPv6 clusters assign pods /80 prefixes, "
                "which only Nitro instances support; choose a Nitro type such as t3.medium or m5.large"
            )
        # One /80 prefix on the primary ENI: addresses never run out, so only the cap applies.
        return lim.pod_cap
    if prefix_delegation and not lim.supports_prefix_delegation:
        raise ValueError(
            f"{lim.instance_type} is not a Nitro instance type: prefix mode (ENABLE_PREFIX_DELEGATION) needs Nitro; "
            "choose a Nitro type or use secondary IP mode"
        )
    enis = lim.max_enis - multus_enis
    enis = enis if max_enis is None else min(max_enis, enis)
    if custom_networking:
        enis -= 1
    if trunk_eni:
        enis -= 1
    if enis < 1:
        taken = " and ".join(
            n for n, on in (("custom networking", custom_networking), ("the trunk ENI", trunk_eni),
                            (f"{multus_enis} Multus ENI(s)", multus_enis > 0)) if on
        )
        raise ValueError(
            f"{lim.instance_type} has {lim.max_enis} ENI(s): {taken or 'max_enis'} leaves none for pods; "
            "choose an instance type with more network interfaces"
        )
    per_eni = (lim.ipv4_per_eni - 1) * (IPS_PER_IPV4_PREFIX if prefix_delegation else 1)
    computed = enis * per_eni + 2
    return min(computed, lim.pod_cap) if cap else computed


def check_multus_fit(instance_type: str | InstanceLimits, multus_enis: int) -> None:
    """Refuse an instance type that cannot hold its primary ENI plus ``multus_enis`` Multus ENIs."""
    lim = instance_type if isinstance(instance_type, InstanceLimits) else limits(instance_type)
    if not isinstance(multus_enis, int) or multus_enis < 0:
        raise ValueError(f"multus_enis must be a whole number >= 0, got {multus_enis!r}")
    if 1 + multus_enis > lim.max_enis:
        raise ValueError(
            f"{lim.instance_type} holds at most {lim.max_enis} network interface(s): the primary ENI plus "
            f"{multus_enis} Multus ENI(s) need {1 + multus_enis}; choose an instance type with more network "
            "interfaces or give the node fewer Multus interfaces"
        )


# --- refresh from EC2 -------------------------------------------------------------------------


def row_from_describe(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One DescribeInstanceTypes item -> (name, table row)."""
    net = item["NetworkInfo"]
    card_index = net.get("DefaultNetworkCardIndex", 0)
    cards = {c["NetworkCardIndex"]: c for c in net.get("NetworkCards", [])}
    enis = cards[card_index]["MaximumNetworkInterfaces"] if card_index in cards else net["MaximumNetworkInterfaces"]
    return item["InstanceType"], {
        "max_enis": int(enis),
        "ipv4_per_eni": int(net["Ipv4AddressesPerInterface"]),
        "ipv6_per_eni": int(net.get("Ipv6AddressesPerInterface", 0)),
        "vcpus": int(item["VCpuInfo"]["DefaultVCpus"]),
        "hypervisor": item.get("Hypervisor", ""),
        "bare_metal": bool(item.get("BareMetal", False)),
    }


def fetch(ec2_client, source: str) -> dict[str, Any]:
    """Every instance type EC2 describes, as the table document (sorted, so diffs stay small)."""
    rows: dict[str, dict[str, Any]] = {}
    for page in ec2_client.get_paginator("describe_instance_types").paginate():
        for item in page["InstanceTypes"]:
            name, row = row_from_describe(item)
            rows[name] = row
    if not rows:
        raise RuntimeError("EC2 DescribeInstanceTypes returned no instance types: refusing to write an empty table")
    return {
        "source": source,
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
        "instanceTypes": dict(sorted(rows.items())),
    }


def write_table(document: dict[str, Any], path: Path = DATA_FILE) -> None:
    # One instance type a line: readable, and a refresh shows as a small diff.
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in document["instanceTypes"].items()]
    header = {k: v for k, v in document.items() if k != "instanceTypes"}
    head = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in header.items())
    path.write_text("{\n" + head + ',\n  "instanceTypes": {\n  ' + ",\n  ".join(lines) + "\n  }\n}\n")
    _table.cache_clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eksnet.max_pods", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ref = sub.add_parser("refresh", help="rewrite the offline table from EC2 DescribeInstanceTypes (needs credentials)")
    ref.add_argument("--region", default=None, help="region to ask (default: the SDK's)")
    ref.add_argument("--output", type=Path, default=DATA_FILE)
    calc = sub.add_parser("calc", help="print max pods for instance types")
    calc.add_argument("instance_types", nargs="+")
    calc.add_argument("--ipv6", action="store_true")
    calc.add_argument("--prefix-delegation", action="store_true")
    calc.add_argument("--custom-networking", action="store_true")
    calc.add_argument("--pod-security-groups", action="store_true", help="security groups for pods (a trunk ENI)")
    calc.add_argument("--uncapped", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "calc":
        for it in args.instance_types:
            print(
                it,
                max_pods(
                    it,
                    ipv6=args.ipv6,
                    prefix_delegation=args.prefix_delegation,
                    custom_networking=args.custom_networking,
                    trunk_eni=args.pod_security_groups,
                    cap=not args.uncapped,
                ),
            )
        return 0
    import boto3
    import botocore.exceptions

    session = boto3.session.Session(region_name=args.region)
    if session.get_credentials() is None:
        print("no AWS credentials found: the offline table is left as it is", file=sys.stderr)
        return 2
    client = session.client("ec2")
    try:
        document = fetch(client, f"EC2 DescribeInstanceTypes in {client.meta.region_name}")
    except botocore.exceptions.BotoCoreError as exc:
        print(f"EC2 refused the refresh: {exc}", file=sys.stderr)
        return 1
    except botocore.exceptions.ClientError as exc:
        print(f"EC2 refused the refresh: {exc}", file=sys.stderr)
        return 1
    write_table(document, args.output)
    print(f"wrote {len(document['instanceTypes'])} instance types to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
