"""The price table is data with a date and a source for every figure, covering the regions the app deploys to."""

from __future__ import annotations

import datetime as dt
import re

from eksnet.plan import load_prices

KEYS = ("natGatewayHour", "publicIpv4Hour", "eksClusterHour")


def test_the_table_is_dated_and_every_price_names_its_source():
    prices = load_prices()
    checked = dt.date.fromisoformat(prices["checked"])
    assert checked <= dt.date.today()
    assert prices["currency"] == "USD"
    for key in (*KEYS, "defaultQuotas"):
        assert re.match(r"https://(aws\.amazon\.com|docs\.aws\.amazon\.com)/", prices["sources"][key]), key


def test_every_region_prices_every_item_per_hour():
    for region, row in load_prices()["regions"].items():
        assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region)
        for key in KEYS:
            assert 0 < row[key] < 1, (region, key)


def test_the_default_apps_region_is_priced(plan):
    regions = {s.region for s in plan.stacks}
    assert regions <= set(load_prices()["regions"])
    assert all(c.hourly is not None for c in plan.costs)
