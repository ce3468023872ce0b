"""What the command-line tools share: usage errors are one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

USAGE_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` whose errors are one line (``prog: error: ...``) and exit 2; ``--help`` still prints usage."""

    def error(self, message: str) -> NoReturn:
        raise SystemExit(error(self.prog, message))


def error(prog: str, message: str) -> int:
    """Print ``prog: error: message`` on one line; returns the usage-error status for ``main`` to return."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return USAGE_ERROR
