"""``eksnet plan``: see the network a synthesized app will deploy, before deploying it.

From a cloud assembly (``cdk.out``: its ``manifest.json`` and templates; no AWS call) it prints, per
stack and zone, every subnet with its IPv4 block, its IPv6 block relative to the VPC's /56 (known only
at deploy time), its kind and route targets, CIDR reservations and delegated prefix sizes; per node
group the instance types, ENIs (VPC CNI and Multus), maxPods in its CNI mode and pods per node on each
Multus network; per subnet how many nodes fit and what runs out first; the deploy's quota needs and
the fixed hourly cost they imply, from the dated price table ``data/prices.json``.

Usage::

    eksnet plan [CDK_OUT] [--stack NAME ...] [--json] [--diagram out.svg]
    python -m eksnet.plan [CDK_OUT] [...]

A missing or unreadable assembly, or an unknown stack, is one line on stderr and exit status 2.
See docs/plan.md for how each figure is computed.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksnet.plan_model import (
    Stack,
    TargetKind,
    read_stacks,
)
from eksnet.plan_template import PlanInputError, load_assembly

PRICES_FILE = Path(__file__).resolve().parent / "data" / "prices.json"


@dataclass(frozen=True)
class QuotaNeed:
    region: str
    quota: str
    needed: int
    default: int | None

    @property
    def fits(self) -> bool:
        return self.default is None or self.needed <= self.default


@dataclass(frozen=True)
class CostLine:
    region: str
    item: str
    count: int
    hourly_price: float | None
    hourly: float | None


@dataclass
class Plan:
    source: str
    stacks: list[Stack]
    quotas: list[QuotaNeed]
    costs: list[CostLine]
    prices_checked: str
    prices_sources: dict[str, str]
    findings: list[str] = field(default_factory=list)

    @property
    def hourly_total(self) -> float:
        return round(sum(c.hourly or 0.0 for c in self.costs), 4)


# --- building ------------------------------------------------------------------------------------------------


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PlanInputError(f"cannot read the price table {path}: {exc}") from None


def _quotas(stacks: Sequence[Stack], defaults: dict[str, int]) -> list[QuotaNeed]:
    out: list[QuotaNeed] = []
    regions = sorted({s.region or "unknown region" for s in stacks})
    for region in regions:
        here = [s for s in stacks if (s.region or "unknown region") == region]
        vpcs = [v for s in here for v in s.vpcs]
        gws = [g for v in vpcs for g in v.gateways]
        nat_per_zone: dict[str, int] = {}
        for g in gws:
            if g.kind is TargetKind.NAT:
                nat_per_zone[g.zone or "?"] = nat_per_zone.get(g.zone or "?", 0) + 1
        groups = [g for s in here for c in s.clusters for g in c.node_groups]
        enis = sum((g.enis_per_instance or 0) * g.max_size for g in groups)
        out += [
            QuotaNeed(region, "VPCs per region", len(vpcs), defaults.get("vpcsPerRegion")),
            QuotaNeed(region, "Elastic IPs per region", sum(1 for g in gws if g.kind is TargetKind.NAT and g.public_ip),
                      defaults.get("elasticIpsPerRegion")),
            QuotaNeed(region, "NAT gateways per zone (most in one zone)", max(nat_per_zone.values(), default=0),
                      defaults.get("natGatewaysPerZone")),
            QuotaNeed(region, "Internet gateways per region", sum(1 for g in gws if g.kind is TargetKind.IGW),
                      defaults.get("internetGatewaysPerRegion")),
            QuotaNeed(region, "Egress-only internet gateways per region",
                      sum(1 for g in gws if g.kind is TargetKind.EIGW),
                      defaults.get("egressOnlyInternetGatewaysPerRegion")),
            QuotaNeed(region, "EKS clusters per region", sum(len(s.clusters) for s in here),
                      defaults.get("eksClustersPerRegion")),
            QuotaNeed(region, "network interfaces per region (node groups at max size)", enis,
                      defaults.get("networkInterfacesPerRegion")),
        ]
        for g in groups:
            if g.enis_per_instance is not None:
                out.append(QuotaNeed(region, f"ENIs per instance, node group {g.name} ({', '.join(g.instance_types)})",
                                     g.enis_per_instance, g.max_enis))
    return out


def _costs(stacks: Sequence[Stack], prices: dict[str, Any], findings: list[str]) -> list[CostLine]:
    out: list[CostLine] = []
    table = prices.get("regions") or {}
    for region in sorted({s.region or "unknown region" for s in stacks}):
        here = [s for s in stacks if (s.region or "unknown region") == region]
        gws = [g for s in here for v in s.vpcs for g in v.gateways]
        counts = {
            "NAT gateways": ("natGatewayHour", sum(1 for g in gws if g.kind is TargetKind.NAT)),
            "public IPv4 addresses (NAT gateways' Elastic IPs)":
                ("publicIpv4Hour", sum(1 for g in gws if g.kind is TargetKind.NAT and g.public_ip)),
            "EKS control planes (standard support)": ("eksClusterHour", sum(len(s.clusters) for s in here)),
        }
        row = table.get(region)
        if row is None and any(n for _, n in counts.values()):
            findings.append(f"no prices for region {region} in {PRICES_FILE.name}: its hourly cost is unknown")
        for item, (key, count) in counts.items():
            price = None if row is None else row.get(key)
            out.append(CostLine(region, item, count, price, None if price is None else round(count * price, 4)))
    return out


def build_plan(cdk_out: Path, *, stacks: Sequence[str] = (), prices_file: Path = PRICES_FILE) -> Plan:
    """The plan of the cloud assembly at ``cdk_out``, limited to ``stacks`` when given."""
    templates = load_assembly(cdk_out)
    if stacks:
        known = [t.stack for t in templates]
        unknown = [s for s in stacks if s not in known]
        if unknown:
            raise PlanInputError(f"unknown stack(s) {', '.join(unknown)} in {cdk_out}; it has {', '.join(known)}")
        templates = [t for t in templates if t.stack in stacks]
    prices = load_prices(prices_file)
    read = read_stacks(templates)
    findings = [f"{s.name}: {f}" for s in read for f in s.findings]
    quotas = _quotas(read, prices.get("defaultQuotas") or {})
    findings += [f"{q.region}: {q.quota} needs {q.needed}, above the default quota {q.default}"
                 for q in quotas if not q.fits]
    costs = _costs(read, prices, findings)
    return Plan(source=str(cdk_out), stacks=read, quotas=quotas, costs=costs,
                prices_checked=str(prices.get("checked", "?")), prices_sources=dict(prices.get("sources") or {}),
                findings=findings)


# --- output ----------------------------------------------------------------------------------------------------


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in ("tier", "key", "enis_per_instance", "fits", "hourly_total"):
            if hasattr(type(value), name) and isinstance(getattr(type(value), name), property):
                out[name] = to_jsonable(getattr(value, name))
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def _table(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _money(x: float | None) -> str:
    return "?" if x is None else f"${x:.3f}"


def render_text(plan: Plan) -> str:
    lines: list[str] = [f"eksnet plan of {plan.source}"]
    for stack in plan.stacks:
        lines += ["", f"Stack {stack.name} ({stack.region or 'region?'}, account {stack.account or '?'})"]
        for vpc in stack.vpcs:
            gw = {g.id: g for g in vpc.gateways}
            lines.append(f"  VPC {vpc.name}: IPv4 {vpc.ipv4 or '-'}, IPv6 {vpc.ipv6 or '-'}")
            for g in vpc.gateways:
                where = f" in {g.zone} ({_name(vpc, g.subnet_id)})" if g.kind is TargetKind.NAT else ""
                eip = ", Elastic IP" if g.public_ip else ""
                lines.append(f"    gateway {g.kind.value:<4} {g.id}{where}{eip}")
            for zone in vpc.zones:
                lines.append(f"    zone {zone}")
                rows = [["subnet", "kind", "IPv4", "IPv6", "routes", "reservations", "delegated per node"]]
                for s in (s for s in vpc.subnets if s.zone == zone):
                    routes = ", ".join(f"{r.destination} {r.target.value}" + _nat_zone(gw, r.target_id, zone)
                                       for r in s.routes) or "-"
                    res = "; ".join(f"{r.type} {r.cidr}" for r in s.reservations) or "-"
                    kind = s.tier + (", DNS64" if s.dns64 else "")
                    rows.append([s.name, kind, s.ipv4 or "-", s.ipv6 or "-", routes, res, _delegated(s)])
                lines += _table(rows, "      ")
        for cluster in stack.clusters:
            mode = cluster.cni_mode + (", custom networking" if cluster.custom_networking else "") + \
                (", security groups per pod" if cluster.pod_security_groups else "")
            elsewhere = cluster.vpc_id and not cluster.vpc_id.startswith(f"{stack.name}/")
            lines.append(f"  EKS cluster {cluster.name}: {cluster.ip_family}, Kubernetes {cluster.version or '?'}, "
                         f"VPC CNI {mode}" + (f", in VPC {cluster.vpc_id} (imported)" if elsewhere else ""))
            for g in cluster.node_groups:
                lines.append(f"    node group {g.name}: {', '.join(g.instance_types)}, {g.min_size}-{g.max_size} "
                             f"nodes (desired {g.desired_size})")
                ud = "" if g.user_data_max_pods in (None, g.max_pods) else f" (user data says {g.user_data_max_pods})"
                lines.append(f"      ENIs per instance: {g.enis_per_instance if g.enis_per_instance is not None else '?'}"
                             f" of {g.max_enis or '?'} = {g.vpc_cni_enis_at_max_pods or '?'} VPC CNI at maxPods "
                             f"(of {g.vpc_cni_enis or '?'} it may use) + {g.multus_enis} Multus"
                             + (" + 1 trunk" if g.trunk_eni else ""))
                lines.append(f"      maxPods: {g.max_pods if g.max_pods is not None else '?'}{ud}")
                for net in g.multus:
                    v6 = f" + {net.ipv6_prefixes} x IPv6 /80" if net.ipv6_prefixes else ""
                    lines.append(f"      Multus {net.interface} (device index {net.device_index}): "
                                 f"{net.ipv4_prefixes} x IPv4 /28{v6} per node -> {net.pods_per_node} pods per node "
                                 f"(IPv4 {net.ipv4_pods}, IPv6 {_count(net.ipv6_pods)})")
        cap_rows = [["subnet", "zone", "node group", "nodes fit", "runs out first", "per node"]]
        for vpc in stack.vpcs:
            for s in vpc.subnets:
                for c in s.capacity:
                    per = ", ".join(f"{v} {k}" for k, v in c.per_node.items())
                    cap_rows.append([s.name, s.zone, c.node_group, str(c.nodes),
                                     f"{c.limited_by} ({c.available[c.limited_by]})", per])
        if len(cap_rows) > 1:
            lines.append("  Nodes per subnet")
            lines += _table(cap_rows, "    ")
    lines += ["", "Quotas (needed / default)"]
    lines += _table([[q.region, q.quota, f"{q.needed} / {q.default if q.default is not None else '-'}",
                      "ok" if q.fits else "ABOVE DEFAULT"] for q in plan.quotas], "  ")
    lines += ["", f"Fixed hourly cost (list prices checked {plan.prices_checked}, see data/prices.json)"]
    lines += _table([[c.region, c.item, str(c.count), f"x {_money(c.hourly_price)}", f"= {_money(c.hourly)}/h"]
                     for c in plan.costs], "  ")
    lines.append(f"  total {_money(plan.hourly_total)}/h, {_money(plan.hourly_total * 730)} per 730-hour month")
    if plan.findings:
        lines += ["", "Findings"] + [f"  - {f}" for f in plan.findings]
    return "\n".join(lines) + "\n"


def _delegated(subnet) -> str:
    """The prefixes the Multus function delegates to each node's ENI in ``subnet`` (EC2's sizes: /28, /80)."""
    if subnet.interface is None:
        return "-"
    parts = [f"{n} x /{size}" for n, size in ((subnet.delegated_ipv4_prefixes, 28), (subnet.delegated_ipv6_prefixes, 80))
             if n]
    return f"{subnet.interface}: " + (" + ".join(parts) or "none")


def _count(n: int | None) -> str:
    """Counts as people read them: an IPv6 /80's 2^48 - 1 addresses, not fifteen digits."""
    if n is None:
        return "-"
    if n >= 2**32:
        exp = (n + 1).bit_length() - 1
        return f"2^{exp}" + ("-1" if n + 1 == 2**exp else "")
    return str(n)


def _name(vpc, subnet_id: str | None) -> str:
    return next((s.name for s in vpc.subnets if s.id == subnet_id), subnet_id or "?")


def _nat_zone(gateways: dict, target_id: str, zone: str) -> str:
    g = gateways.get(target_id)
    if g is not None and g.zone is not None and g.zone != zone:
        return f" ({g.zone})"
    return ""


# --- command line --------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: {message}\n")


def _parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Print the network a synthesized eksnet app will deploy (no AWS calls).")
    p.add_argument("cdk_out", nargs="?", default="cdk.out", type=Path, help="cloud assembly directory [cdk.out]")
    p.add_argument("--stack", action="append", default=[], help="only this stack (repeatable)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--diagram", type=Path, help="also draw the VPCs as an SVG grid into this file")
    p.add_argument("--prices", type=Path, default=PRICES_FILE, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m eksnet.plan") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        plan = build_plan(args.cdk_out, stacks=args.stack, prices_file=args.prices)
        if args.diagram is not None:
            from eksnet.plan_diagram import write_svg

            try:
                write_svg(plan, args.diagram)
            except OSError as exc:
                raise PlanInputError(f"cannot write the diagram {args.diagram}: {exc.strerror or exc}") from None
    except PlanInputError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(to_jsonable(plan), indent=2) + "\n" if args.json else render_text(plan))
    return 0


def console_main(argv: Sequence[str] | None = None) -> int:
    """The ``eksnet`` console script: ``eksnet plan ...`` (its one command so far)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "plan":
        print("eksnet: usage: eksnet plan [CDK_OUT] [--stack NAME] [--json] [--diagram out.svg]", file=sys.stderr)
        return 2
    return main(argv[1:], prog="eksnet plan")


if __name__ == "__main__":
    sys.exit(main())
