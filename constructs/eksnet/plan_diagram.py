"""``eksnet plan --diagram out.svg``: each VPC of a plan drawn as a grid, with drawsvg.

Why a grid and no layout engine: a VPC reads best as zones (columns) by subnet tiers (rows: public,
private, IPv6-only, Multus per device index, isolated), with the internet-facing gateways on the top
edge, each zone's NAT gateways at the top of its column, and the clusters with their node groups and
Multus interfaces along the bottom edge. Positions then follow from counting, so the drawing is
deterministic (the README's SVG is checked against the current app) and needs nothing beyond drawsvg.

A cluster is drawn below the VPC of its subnets, also when that VPC is another stack's (exports).
Every box a test or a tool may look for carries an ``id`` and a ``class``: ``subnet`` (with
``data-zone``, ``data-tier``, ``data-vpc``), ``gateway`` (``data-kind``), ``zone`` (the column, with
``data-zone`` and ``data-vpc``), ``cluster`` and ``nodegroup``. Ids are ``<stack>--<logical id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import drawsvg as draw

from eksnet.plan import Plan
from eksnet.plan_model import Cluster, Stack, Subnet, SubnetKind, TargetKind, Vpc

FONT = "font-family:DejaVu Sans,Helvetica,Arial,sans-serif"
LINE = 14  # text line height
PAD = 12
COL_W = 330
GW_W, GW_H = 150, 2 * LINE + 12
TITLE_H = 2 * LINE + 14
ZONE_LABEL_H = LINE + 10
NODEGROUP_W = 330
KIND_ORDER = [SubnetKind.PUBLIC, SubnetKind.PRIVATE, SubnetKind.IPV6_ONLY, SubnetKind.MULTUS, SubnetKind.ISOLATED]
FILL = {
    SubnetKind.PUBLIC: "#e3f2e1",
    SubnetKind.PRIVATE: "#e1ebf7",
    SubnetKind.IPV6_ONLY: "#efe3f7",
    SubnetKind.MULTUS: "#fcecd6",
    SubnetKind.ISOLATED: "#ececec",
}
GW_FILL = {TargetKind.IGW: "#c9e4c5", TargetKind.EIGW: "#c5dcf0", TargetKind.NAT: "#f6d7a7"}


def element_id(stack: str, logical_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stack}--{logical_id}")


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    w: float
    h: float


def _texts(group: draw.Group, box: _Box, lines: list[str], *, bold_first: bool = True) -> None:
    for i, text in enumerate(lines):
        group.append(draw.Text(text, 11, box.x + 8, box.y + 16 + i * LINE, style=FONT,
                               font_weight="bold" if bold_first and i == 0 else "normal"))


def _rows(vpc: Vpc) -> list[tuple[str, int]]:
    """The grid's rows: (tier, k) for the k-th subnet of that tier in a zone, tiers in a fixed order."""
    def order(tier: str) -> tuple[int, int, str]:
        kind = next(k for k in KIND_ORDER if tier.startswith(k.value))
        index = tier[len(kind.value):].strip()
        return KIND_ORDER.index(kind), int(index) if index.isdigit() else 0, tier

    counts: dict[str, int] = {}
    for zone in vpc.zones:
        here: dict[str, int] = {}
        for s in vpc.subnets:
            if s.zone == zone:
                here[s.tier] = here.get(s.tier, 0) + 1
        for tier, n in here.items():
            counts[tier] = max(counts.get(tier, 0), n)
    return [(tier, k) for tier in sorted(counts, key=order) for k in range(counts[tier])]


def _route_text(subnet: Subnet) -> str:
    return ", ".join(f"{r.destination} \u2192 {r.target.value}" for r in subnet.routes) or "no routes out"


def _subnet_lines(subnet: Subnet) -> list[str]:
    lines = [
        f"{subnet.name}  [{subnet.tier}{', DNS64' if subnet.dns64 else ''}]",
        f"IPv4 {subnet.ipv4 or '-'}",
        f"IPv6 {subnet.ipv6 or '-'}",
        _route_text(subnet),
    ]
    lines += [f"reserved ({r.type}): {r.cidr}" for r in subnet.reservations] or ["no reservations"]
    if subnet.interface is not None:
        lines.append(f"{subnet.interface} ENI per node: {subnet.delegated_ipv4_prefixes} x /28"
                     + (f" + {subnet.delegated_ipv6_prefixes} x /80" if subnet.delegated_ipv6_prefixes else ""))
    lines += [f"{c.node_group}: {c.nodes} nodes fit ({c.limited_by})" for c in subnet.capacity]
    return lines


def _node_group_lines(cluster: Cluster) -> list[list[str]]:
    out = []
    for g in cluster.node_groups:
        lines = [
            f"node group {g.name}",
            f"{', '.join(g.instance_types)}, {g.min_size}-{g.max_size} nodes",
            f"maxPods {g.max_pods if g.max_pods is not None else '?'}"
            + (f" (user data {g.user_data_max_pods})" if g.user_data_max_pods not in (None, g.max_pods) else ""),
            f"ENIs {g.enis_per_instance if g.enis_per_instance is not None else '?'}/{g.max_enis or '?'}: "
            f"{g.vpc_cni_enis_at_max_pods or '?'} VPC CNI + {g.multus_enis} Multus",
        ]
        lines += [f"{n.interface} (device {n.device_index}): {n.ipv4_prefixes}x/28"
                  + (f" + {n.ipv6_prefixes}x/80" if n.ipv6_prefixes else "") + f", {n.pods_per_node} pods/node"
                  for n in g.multus]
        out.append(lines)
    return out


def _panel(stack: Stack, vpc: Vpc, top: float, clusters: list[tuple[Stack, Cluster]]
           ) -> tuple[list[draw.DrawingElement], float, float]:
    """One VPC's panel, from ``top``; returns its elements, height and width."""
    vpc_key = f"{stack.name}/{vpc.id}"
    rows = _rows(vpc)
    zones = vpc.zones or ["?"]
    nat_by_zone = {z: [g for g in vpc.gateways if g.kind is TargetKind.NAT and g.zone == z] for z in zones}
    nat_row = max((len(v) for v in nat_by_zone.values()), default=0)
    edge = [g for g in vpc.gateways if g.kind is not TargetKind.NAT]
    cluster_lines = [_node_group_lines(c) for _, c in clusters]

    width = PAD * 2 + len(zones) * (COL_W + PAD) - PAD
    subnet_h = max((len(_subnet_lines(s)) for s in vpc.subnets), default=1) * LINE + 12
    panel = draw.Group(id=element_id(stack.name, vpc.id), class_="vpc", data_vpc=vpc_key)
    y = top + PAD
    title = _Box(PAD, y, width - 2 * PAD, TITLE_H)
    _texts(panel, title, [f"{stack.name}: VPC {vpc.name} ({stack.region or 'region?'})",
                          f"IPv4 {vpc.ipv4 or '-'}   IPv6 {vpc.ipv6 or '-'} (Amazon-provided, known at deploy)"])
    y += TITLE_H + PAD
    # Top edge: internet-facing gateways.
    if edge:
        for i, g in enumerate(edge):
            box = _Box(PAD + i * (GW_W + PAD), y, GW_W, GW_H)
            panel.append(draw.Rectangle(box.x, box.y, box.w, box.h, rx=6, fill=GW_FILL.get(g.kind, "#ddd"),
                                        stroke="#555", id=element_id(stack.name, g.id), class_="gateway",
                                        data_kind=g.kind.value, data_vpc=vpc_key))
            _texts(panel, box, [g.kind.value, "internet gateway" if g.kind is TargetKind.IGW else "egress-only IGW"])
        y += GW_H + PAD
    # Zone columns.
    grid_top = y
    grid_h = ZONE_LABEL_H + nat_row * (GW_H + PAD) + len(rows) * (subnet_h + PAD) + PAD
    for c, zone in enumerate(zones):
        x = PAD + c * (COL_W + PAD)
        panel.append(draw.Rectangle(x, grid_top, COL_W, grid_h, fill="none", stroke="#999", stroke_dasharray="6 4",
                                    id=element_id(stack.name, f"{vpc.id}--zone--{zone}"), class_="zone",
                                    data_zone=zone, data_vpc=vpc_key))
        panel.append(draw.Text(f"zone {zone}", 12, x + 8, grid_top + 16, style=FONT, font_weight="bold"))
        inner_w = COL_W - 2 * 8
        for i, g in enumerate(nat_by_zone[zone]):
            box = _Box(x + 8, grid_top + ZONE_LABEL_H + i * (GW_H + PAD), min(GW_W + 90, inner_w), GW_H)
            panel.append(draw.Rectangle(box.x, box.y, box.w, box.h, rx=6, fill=GW_FILL[TargetKind.NAT], stroke="#555",
                                        id=element_id(stack.name, g.id), class_="gateway", data_kind=g.kind.value,
                                        data_zone=zone, data_vpc=vpc_key))
            _texts(panel, box, ["NAT gateway" + (" + Elastic IP" if g.public_ip else ""),
                                f"in {next((s.name for s in vpc.subnets if s.id == g.subnet_id), '?')}"])
        seen: dict[str, int] = {}
        for s in (s for s in vpc.subnets if s.zone == zone):
            k = seen.get(s.tier, 0)
            seen[s.tier] = k + 1
            r = rows.index((s.tier, k))
            box = _Box(x + 8, grid_top + ZONE_LABEL_H + nat_row * (GW_H + PAD) + r * (subnet_h + PAD),
                       inner_w, subnet_h)
            panel.append(draw.Rectangle(box.x, box.y, box.w, box.h, rx=4, fill=FILL[s.kind], stroke="#444",
                                        id=element_id(stack.name, s.id), class_="subnet", data_zone=zone,
                                        data_tier=s.tier, data_vpc=vpc_key))
            _texts(panel, box, _subnet_lines(s))
    y = grid_top + grid_h + PAD
    # Bottom edge: clusters, their node groups and Multus interfaces.
    for (owner, cluster), groups in zip(clusters, cluster_lines, strict=True):
        per_row = max(1, (width - 2 * PAD - 16) // (NODEGROUP_W + PAD))
        ng_h = max((len(lines) for lines in groups), default=1) * LINE + 12
        n_rows = -(-len(groups) // per_row) if groups else 0
        ch = 2 * LINE + 10 + n_rows * (ng_h + PAD)
        panel.append(draw.Rectangle(PAD, y, width - 2 * PAD, ch, rx=8, fill="#f7f7f7", stroke="#333",
                                    id=element_id(owner.name, cluster.id), class_="cluster", data_vpc=vpc_key))
        _texts(panel, _Box(PAD, y, width, LINE), [
            f"EKS cluster {cluster.name}: {cluster.ip_family}, Kubernetes {cluster.version or '?'}, "
            f"VPC CNI {cluster.cni_mode}"])
        for i, (g, lines) in enumerate(zip(cluster.node_groups, groups, strict=True)):
            box = _Box(PAD + 8 + (i % per_row) * (NODEGROUP_W + PAD), y + 2 * LINE + 4 + (i // per_row) * (ng_h + PAD),
                       NODEGROUP_W, ng_h)
            panel.append(draw.Rectangle(box.x, box.y, box.w, box.h, rx=6, fill="#ffffff", stroke="#666",
                                        id=element_id(owner.name, g.id), class_="nodegroup", data_vpc=vpc_key))
            _texts(panel, box, lines)
        y += ch + PAD
    height = y - top
    frame = draw.Rectangle(0, top, width, height, fill="#fcfcfc", stroke="#222", class_="vpc-frame")
    return [frame, panel], height, width


def render_svg(plan: Plan) -> str:
    panels: list[draw.DrawingElement] = []
    top, width = 0.0, 400.0
    clusters = [(s, c) for s in plan.stacks for c in s.clusters]
    for stack in plan.stacks:
        for vpc in stack.vpcs:
            here = [(s, c) for s, c in clusters if c.vpc_id == f"{stack.name}/{vpc.id}"]
            elements, height, w = _panel(stack, vpc, top, here)
            panels += elements
            top += height + PAD
            width = max(width, w)
    d = draw.Drawing(width, max(top, 40), origin=(0, 0))
    d.append(draw.Rectangle(0, 0, width, max(top, 40), fill="#ffffff"))
    if not panels:
        d.append(draw.Text("no VPC in this plan", 12, PAD, 24, style=FONT))
    for e in panels:
        d.append(e)
    return d.as_svg() + ("\n" if not d.as_svg().endswith("\n") else "")


def write_svg(plan: Plan, path: Path) -> None:
    Path(path).write_text(render_svg(plan))
