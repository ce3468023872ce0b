"""CNI error codes, versions and result conversion between spec versions (no I/O).

Internally a result is always in the 1.x shape; ``result_for_version`` renders the shape the
caller asked for (``ips[].version`` exists before 1.0.0 only)."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"

# Spec error codes (SPEC.md "Error"): below 100 are the spec's, 100+ are ours.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
NOT_AVAILABLE_LIMITED = 51
# Plugin specific.
POOL_EXHAUSTED = 100
INTERFACE_EXISTS = 101
NETLINK_FAILURE = 102
DELEGATE_FAILURE = 103
CHECK_FAILED = 104
INTERNAL = 999

SPEC_CODES = frozenset({1, 2, 3, 4, 5, 6, 7, 11, 50, 51})
OUR_CODES = frozenset({POOL_EXHAUSTED, INTERFACE_EXISTS, NETLINK_FAILURE, DELEGATE_FAILURE, CHECK_FAILED, INTERNAL})


class CNIError(Exception):
    """An error the plugin reports as CNI error JSON on stdout (exit code 1)."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CNIError(INVALID_CONFIG, f"invalid cniVersion {version!r}", "expected MAJOR.MINOR.PATCH")
    return int(parts[0]), int(parts[1]), int(parts[2])


def at_least(version: str, minimum: str) -> bool:
    return version_tuple(version) >= version_tuple(minimum)


def check_supported(version: Any, supported: tuple[str, ...] = SUPPORTED_VERSIONS) -> str:
    if not isinstance(version, str):
        raise CNIError(INVALID_CONFIG, "cniVersion must be a string")
    version_tuple(version)
    if version not in supported:
        raise CNIError(INCOMPATIBLE_VERSION, "incompatible CNI versions",
                       f"config is {version!r}, plugin supports {list(supported)}")
    return version


def _ip_family(address: str) -> str:
    return "4" if ipaddress.ip_interface(address).version == 4 else "6"


def normalize_result(result: Any) -> dict[str, Any]:
    """A result (or prevResult) of any supported version in the internal 1.x shape.

    Raises CNIError(DECODE_FAILURE) when it does not have the shape of a result."""
    if not isinstance(result, dict):
        raise CNIError(DECODE_FAILURE, "result is not a JSON object")
    out = copy.deepcopy(result)
    ips = out.get("ips", [])
    if not isinstance(ips, list):
        raise CNIError(DECODE_FAILURE, "result ips is not a list")
    for ip in ips:
        if not isinstance(ip, dict) or not isinstance(ip.get("address"), str):
            raise CNIError(DECODE_FAILURE, "result ips[] needs an address")
        try:
            ipaddress.ip_interface(ip["address"])
        except ValueError as exc:
            raise CNIError(DECODE_FAILURE, f"result ips[] address: {exc}") from None
        ip.pop("version", None)
    for key in ("interfaces", "routes"):
        if not isinstance(out.get(key, []), list):
            raise CNIError(DECODE_FAILURE, f"result {key} is not a list")
    return out


def result_for_version(result: dict[str, Any], version: str) -> dict[str, Any]:
    """Render an internal result for ``version``: ips[].version before 1.0.0, cniVersion set."""
    out = copy.deepcopy(result)
    out["cniVersion"] = version
    legacy = not at_least(version, "1.0.0")
    for ip in out.get("ips", []):
        if legacy:
            ip["version"] = _ip_family(ip["address"])
        else:
            ip.pop("version", None)
    for key in ("interfaces", "routes"):
        if key in out and not out[key]:
            del out[key]
    out.setdefault("dns", {})
    return out
