"""``python -m demo --cni-bin DIR``: run the demo (as root); DIR holds the executables of ``make cni-bin``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .flow import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    p.add_argument("--cni-bin", required=True, type=Path, help="the CNI executables, as `make cni-bin DEST=` installs")
    p.add_argument("--pods", type=int, default=6, help="pods to add, spread over the two nodes (default 6)")
    p.add_argument("--report", type=Path, help="also write the figures (EC2 calls, latencies) as JSON here")
    args = p.parse_args(argv)
    return run(args.cni_bin, args.pods, args.report)


if __name__ == "__main__":
    sys.exit(main())
