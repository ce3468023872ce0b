"""Config keys matched as the reference plugins match them.

The reference plugins decode their config with Go's ``encoding/json``, which matches an object key
to a struct field case-insensitively (``rangestart`` and ``RangeStart`` both set ``rangeStart``; of
two spellings of one key, the later one wins) and ignores keys it does not know. A NAD written for
host-local must behave the same with eksnet-ipam, so configs pass through ``fold`` first. Unknown
keys are reported once per (where, key), never refused: configs may carry other tools' keys."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("eksnet-ipamd")
_reported: set[tuple[str, str]] = set()
_REPORT_LIMIT = 1024


def fold(obj: dict[str, Any], known: Iterable[str], where: str = "config",
         passthrough: Iterable[str] = ()) -> dict[str, Any]:
    """``obj`` with each key spelled as in ``known`` when it matches one case-insensitively.

    Keys in ``passthrough`` are kept as they are, silently (keys another layer reads, such as the
    skeleton's ``cniVersion`` or ``prevResult``); any other unknown key is kept and logged."""
    by_lower = {k.lower(): k for k in known}
    quiet = {k.lower() for k in passthrough}
    out: dict[str, Any] = {}
    for key, value in obj.items():
        canonical = by_lower.get(key.lower()) if isinstance(key, str) else None
        if canonical is None:
            out[key] = value
            if isinstance(key, str) and key.lower() not in quiet:
                _report(where, key)
            continue
        out[canonical] = value  # Go's decoder: the later spelling of a field overwrites the earlier
    return out


def _report(where: str, key: str) -> None:
    item = (where, key)
    if item in _reported or len(_reported) >= _REPORT_LIMIT:
        return
    _reported.add(item)
    log.info("ignoring unknown key %r in %s", key, where)
