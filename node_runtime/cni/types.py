"""CNI error codes, versions and result conversion between spec versions (no I/O).

Internally a result is always in the 1.x shape; ``result_for_version`` renders the shape the
caller asked for (``ips[].version`` exists before 1.0.0 only)."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from .protocol import LATEST, OUR_CODES, SPEC_CODES, SUPPORTED_VERSIONS, Code

__all__ = ["LATEST", "OUR_CODES", "SPEC_CODES", "SUPPORTED_VERSIONS", "CNIError", "Code"]

# Versions and error codes live with the wire protocol (one module, shared with the C forwarder);
# these names are the ones the plugins use.
INCOMPATIBLE_VERSION = Code.INCOMPATIBLE_VERSION
UNSUPPORTED_FIELD = Code.UNSUPPORTED_FIELD
UNKNOWN_CONTAINER = Code.UNKNOWN_CONTAINER
INVALID_ENVIRONMENT = Code.INVALID_ENVIRONMENT
IO_FAILURE = Code.IO_FAILURE
DECODE_FAILURE = Code.DECODE_FAILURE
INVALID_CONFIG = Code.INVALID_CONFIG
TRY_AGAIN_LATER = Code.TRY_AGAIN_LATER
NOT_AVAILABLE = Code.NOT_AVAILABLE
NOT_AVAILABLE_LIMITED = Code.NOT_AVAILABLE_LIMITED
POOL_EXHAUSTED = Code.POOL_EXHAUSTED
INTERFACE_EXISTS = Code.INTERFACE_EXISTS
NETLINK_FAILURE = Code.NETLINK_FAILURE
DELEGATE_FAILURE = Code.DELEGATE_FAILURE
CHECK_FAILED = Code.CHECK_FAILED
INTERNAL = Code.INTERNAL


class CNIError(Exception):
    """An error the plugin reports as CNI error JSON on stdout (exit code 1)."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": version, "code": int(self.code), "msg": self.msg}
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
