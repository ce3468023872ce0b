"""`make bench`: run every benchmark module, print one table, write bench/results/<name>.json.

A benchmark is a module ``bench/bench_<name>.py`` with ``run() -> dict`` returning
``{"metrics": [{"metric", "unit", "ours", "reference", "ratio", "goal"?, ...}], ...raw figures}`` (``goal``: the
highest ratio the project aims at, printed with whether this run met it).
``python -m bench NAME...`` runs only the named ones.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _goal(m: dict) -> str:
    """A metric's goal for its ratio, if it has one (``"goal": 1.2`` means at most 1.2x), and whether it is met."""
    goal, ratio = m.get("goal"), m.get("ratio")
    if goal is None or ratio is None:
        return ""
    return f"<= {goal}x: {'met' if ratio <= goal else 'NOT met'}"


def main(argv: list[str]) -> int:
    names = argv or _discover()
    RESULTS.mkdir(exist_ok=True)
    rows: list[tuple[str, ...]] = []
    failed = []
    for name in names:
        started = time.time()
        try:
            result = importlib.import_module(f"bench.bench_{name}").run()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"bench {name}: FAILED: {exc!r}", file=sys.stderr)
            continue
        result.setdefault("benchmark", name)
        result["wall_seconds"] = round(time.time() - started, 3)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, sort_keys=True))
        for m in result.get("metrics", []):
            rows.append((name, m["metric"], m.get("unit", ""), _fmt(m.get("ours")), _fmt(m.get("reference")),
                         _fmt(m.get("ratio")), _goal(m)))
    header = ("benchmark", "metric", "unit", "eksnet", "reference", "ratio", "goal")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
