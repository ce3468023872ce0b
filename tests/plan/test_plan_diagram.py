"""The diagram, checked as a structure: it parses, every subnet and gateway of the plan is drawn
exactly once, each subnet inside its zone's column, and no two boxes overlap. The README's SVG is
the current default app's."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest
from eksnet.plan_diagram import element_id, render_svg
from support.paths import ROOT

SVG = "{http://www.w3.org/2000/svg}"
COMMITTED = ROOT / "docs" / "plan-default-app.svg"
REGENERATE = ".venv/bin/python -m eksnet.plan cdk.out --diagram docs/plan-default-app.svg (after make synth)"


@pytest.fixture(scope="module")
def svg(plan) -> str:
    return render_svg(plan)


@pytest.fixture(scope="module")
def rects(svg) -> list[ET.Element]:
    return list(ET.fromstring(svg).iter(f"{SVG}rect"))


def box(e: ET.Element) -> tuple[float, float, float, float]:
    x, y, w, h = (float(e.get(k)) for k in ("x", "y", "width", "height"))
    return x, y, x + w, y + h


def of_class(rects, cls: str) -> list[ET.Element]:
    return [r for r in rects if r.get("class") == cls]


def test_the_svg_parses_as_svg(svg):
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width")) > 0 and float(root.get("height")) > 0


def test_every_subnet_is_drawn_exactly_once(plan, rects):
    drawn = [r.get("id") for r in of_class(rects, "subnet")]
    expected = [element_id(s.name, n.id) for s in plan.stacks for v in s.vpcs for n in v.subnets]
    assert sorted(drawn) == sorted(expected)
    assert len(set(drawn)) == len(drawn)


def test_every_gateway_is_drawn_exactly_once(plan, rects):
    drawn = [(r.get("id"), r.get("data-kind")) for r in of_class(rects, "gateway")]
    expected = [(element_id(s.name, g.id), g.kind.value) for s in plan.stacks for v in s.vpcs for g in v.gateways]
    assert sorted(drawn) == sorted(expected)
    assert {k for _, k in drawn} == {"IGW", "EIGW", "NAT"}


def test_every_node_group_is_drawn_inside_its_cluster(plan, rects):
    clusters = {r.get("id"): r for r in of_class(rects, "cluster")}
    groups = {r.get("id"): r for r in of_class(rects, "nodegroup")}
    for stack in plan.stacks:
        for cluster in stack.clusters:
            outer = box(clusters[element_id(stack.name, cluster.id)])
            for g in cluster.node_groups:
                inner = box(groups[element_id(stack.name, g.id)])
                assert outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def test_each_subnet_and_nat_gateway_sits_inside_its_zones_column(plan, rects):
    columns = {(r.get("data-vpc"), r.get("data-zone")): box(r) for r in of_class(rects, "zone")}
    zoned = of_class(rects, "subnet") + [r for r in of_class(rects, "gateway") if r.get("data-kind") == "NAT"]
    planned_zone = {element_id(s.name, n.id): n.zone for s in plan.stacks for v in s.vpcs for n in v.subnets}
    for r in zoned:
        if r.get("class") == "subnet":
            assert r.get("data-zone") == planned_zone[r.get("id")]
        x0, y0, x1, y1 = box(r)
        cx0, cy0, cx1, cy1 = columns[(r.get("data-vpc"), r.get("data-zone"))]
        assert cx0 <= x0 and cy0 <= y0 and x1 <= cx1 and y1 <= cy1, r.get("id")


def test_columns_are_zones_and_rows_are_tiers(plan, rects):
    subnets = of_class(rects, "subnet")
    for vpc_key, group in itertools.groupby(sorted(subnets, key=lambda r: r.get("data-vpc")), lambda r: r.get("data-vpc")):
        group = list(group)
        x_by_zone = {(r.get("data-zone")): set() for r in group}
        y_by_tier = {(r.get("data-tier")): set() for r in group}
        for r in group:
            x_by_zone[r.get("data-zone")].add(box(r)[0])
            y_by_tier[r.get("data-tier")].add(box(r)[1])
        assert all(len(xs) == 1 for xs in x_by_zone.values()), vpc_key
        assert all(len(ys) == 1 for ys in y_by_tier.values()), vpc_key


def test_no_two_boxes_overlap(rects):
    leaves = [r for r in rects if r.get("class") in ("subnet", "gateway", "nodegroup")]
    assert leaves
    for a, b in itertools.combinations(leaves, 2):
        ax0, ay0, ax1, ay1 = box(a)
        bx0, by0, bx1, by1 = box(b)
        assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a.get("id"), b.get("id"))
    containers = of_class(rects, "zone") + of_class(rects, "cluster")
    for a, b in itertools.combinations(containers, 2):
        ax0, ay0, ax1, ay1 = box(a)
        bx0, by0, bx1, by1 = box(b)
        assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a.get("id"), b.get("id"))


def test_the_diagram_is_deterministic(plan, svg):
    assert render_svg(plan) == svg


def test_the_committed_readme_diagram_is_the_current_apps(svg):
    assert COMMITTED.is_file(), f"generate it: {REGENERATE}"
    assert COMMITTED.read_text() == svg, f"docs/plan-default-app.svg is stale: regenerate it with {REGENERATE}"
