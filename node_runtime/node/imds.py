"""IMDSv2, just what the node setup needs: the ENIs by MAC and their delegated prefixes. ``EKSNET_IMDS`` overrides
the base URL (tests, ``make demo``). Standard library only: the node's Python has nothing else."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

DEFAULT_BASE = "http://169.254.169.254"
_MACS = "latest/meta-data/network/interfaces/macs/"


class ImdsError(OSError):
    pass


class Imds:
    def __init__(self, base: str | None = None, timeout: float = 5.0) -> None:
        self.base = (base or os.environ.get("EKSNET_IMDS") or DEFAULT_BASE).rstrip("/")
        self.timeout = timeout
        self._token: str | None = None

    def _request(self, method: str, path: str, headers: dict[str, str]) -> str:
        req = urllib.request.Request(f"{self.base}/{path}", method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - link-local/loopback URL
                return resp.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise KeyError(path) from None
            if exc.code == 401:
                self._token = None
            raise ImdsError(f"IMDS {method} {path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ImdsError(f"IMDS {method} {path}: {exc}") from None

    def get(self, path: str) -> str:
        if self._token is None:
            self._token = self._request("PUT", "latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "600"})
        return self._request("GET", path, {"X-aws-ec2-metadata-token": self._token})

    def optional(self, path: str) -> str | None:
        try:
            return self.get(path)
        except KeyError:
            return None

    def macs_by_device(self) -> dict[int, str]:
        """Device index -> MAC of every ENI attached now."""
        out: dict[int, str] = {}
        for line in self.get(_MACS).split():
            mac = line.strip().rstrip("/")
            number = self.optional(f"{_MACS}{mac}/device-number")
            if mac and number is not None and number.strip().isdigit():
                out[int(number)] = mac.lower()
        return out

    def eni(self, mac: str, key: str) -> list[str]:
        """The lines of ``macs/<mac>/<key>`` (e.g. ``ipv4-prefix``): empty when IMDS has no such key."""
        value = self.optional(f"{_MACS}{mac}/{key}")
        return [v.strip() for v in value.split()] if value else []
