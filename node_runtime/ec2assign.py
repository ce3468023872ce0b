"""The EC2 calls of per-IP mode: assign one address to the node's own Multus ENI, unassign it, and
list what the ENI holds. Blocking (botocore); the daemon runs them on its worker threads.

Credentials and region come from the instance, through botocore's own chains (the instance role
through IMDSv2, the region from IMDS unless ``AWS_REGION`` or the pool's ``region`` says
otherwise). On AL2023 nodes botocore is the distro package ``python3-botocore``, which the node
user data installs with ``dnf`` when an interface is in per-IP mode (``PER_IP_NODE_PACKAGES`` of
``eksnet.multus.perip``): it is imported only when a per-IP pool is configured, so nodes with
prefix-mode pools never need it. ``AWS_ENDPOINT_URL_EC2`` (or ``AWS_ENDPOINT_URL``) points the
calls elsewhere: the tests and the demo use moto's server on 127.0.0.1.

The range is shared by every node, so EC2 is the arbiter: an assignment never sets
``AllowReassignment``, and an address that another interface holds comes back as
``HeldElsewhere`` so that the caller tries the next one."""

from __future__ import annotations

import ipaddress
import os
import threading
from typing import Any

# EC2 error codes that mean "another network interface holds this address". AWS documents the
# codes but not which one AssignPrivateIpAddresses / AssignIpv6Addresses return for an address in
# use elsewhere (CreateNetworkInterface returns InvalidIPAddress.InUse); the message test covers the
# InvalidParameterValue form. Whatever the code, ``Ec2Assigner.assign`` then checks that the address
# is not on our own interface before calling it held elsewhere.
_IN_USE_CODES = frozenset({"InvalidIPAddress.InUse", "PrivateIpAddressInUse", "Ipv6AddressInUse"})
_IN_USE_WORDS = ("in use", "already assigned")
# Codes that mean "try again later": throttling and EC2's own trouble.
_TRANSIENT_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException", "InternalError",
                              "ServiceUnavailable", "Unavailable", "InsufficientCapacity"})
# Unassigning an address the interface no longer holds: already done.
_NOT_HELD_WORDS = ("not assigned", "does not have", "not found on", "is not associated")


class Ec2Error(Exception):
    """EC2 refused or could not be reached. ``transient``: worth retrying later (CNI code 11)."""

    def __init__(self, code: str, message: str, transient: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient


class HeldElsewhere(Ec2Error):
    """The address is assigned to another network interface: skip it, try the next one."""


def endpoint_url() -> str | None:
    """``AWS_ENDPOINT_URL_EC2``, else ``AWS_ENDPOINT_URL`` (older botocore ignores both)."""
    return os.environ.get("AWS_ENDPOINT_URL_EC2") or os.environ.get("AWS_ENDPOINT_URL") or None


def _import_botocore() -> Any:
    """botocore, also when the daemon runs with ``python3 -SI`` (no site-packages on sys.path):
    then the interpreter's own site-packages (the distro's python3-botocore, or a venv's) are added."""
    try:
        import botocore.config
        import botocore.exceptions
        import botocore.session
    except ImportError:
        import site
        import sys
        from pathlib import Path

        candidates = site.getsitepackages()
        venv = Path(sys.executable).parent.parent  # -S skips venv detection: find pyvenv.cfg ourselves
        if (venv / "pyvenv.cfg").exists():
            candidates.insert(0, str(venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                                     / "site-packages"))
        # AL2023's python3-botocore is installed for the system python3 (3.9), while the daemon runs on
        # python3.11: botocore and its dependencies are pure Python, so the distro's directory serves too.
        candidates += sorted(str(p.parent) for p in Path("/usr/lib").glob("python3*/site-packages/botocore"))
        sys.path.extend(p for p in candidates if p not in sys.path)
        try:
            import botocore.config
            import botocore.exceptions
            import botocore.session
        except ImportError:
            raise Ec2Error("BotocoreMissing", "per-IP pools need botocore: install python3-botocore (dnf) on the "
                           "node", transient=False) from None
    return botocore


def make_client(region: str | None = None) -> Any:
    """A botocore EC2 client: standard retry mode (backoff on throttling), short timeouts so that
    a pod's ADD fails in seconds rather than minutes when EC2 cannot be reached."""
    botocore = _import_botocore()
    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 3},
                                    connect_timeout=3, read_timeout=10)
    return botocore.session.get_session().create_client("ec2", region_name=region, endpoint_url=endpoint_url(),
                                                        config=config)


def _version(address: str) -> int:
    return ipaddress.ip_address(address).version


class Ec2Assigner:
    """Assign, unassign and list the secondary addresses of one node's Multus ENIs."""

    def __init__(self, client: Any = None, region: str | None = None) -> None:
        self._client = client
        self._region = region
        self._lock = threading.Lock()  # one client, even when a warm-up and a first call race

    @property
    def ready(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self._region)
        return self._client

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        exceptions = _import_botocore().exceptions
        try:
            return getattr(self.client, operation)(**params)
        except exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = str(error.get("Code", "Unknown")), str(error.get("Message", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _IN_USE_CODES or any(w in message.lower() for w in _IN_USE_WORDS):
                raise HeldElsewhere(code, message) from None
            raise Ec2Error(code, message, transient=code in _TRANSIENT_CODES or status >= 500) from None
        except exceptions.BotoCoreError as exc:  # endpoint unreachable, timeouts, no credentials yet
            raise Ec2Error(type(exc).__name__, str(exc), transient=True) from None

    def held(self, eni: str) -> set[str]:
        """Every address the interface holds besides its primary IPv4 address (IPv6 ones included)."""
        reply = self._call("describe_network_interfaces", NetworkInterfaceIds=[eni])
        out: set[str] = set()
        for interface in reply.get("NetworkInterfaces", []):
            out.update(p["PrivateIpAddress"] for p in interface.get("PrivateIpAddresses", []) if not p.get("Primary"))
            out.update(a["Ipv6Address"] for a in interface.get("Ipv6Addresses", []))
        return {str(ipaddress.ip_address(a)) for a in out}

    def assign(self, eni: str, address: str) -> None:
        """Assign ``address`` to ``eni``, never taking it from another interface.

        Raises HeldElsewhere when another interface holds it, Ec2Error on any other refusal."""
        try:
            if _version(address) == 4:
                self._call("assign_private_ip_addresses", NetworkInterfaceId=eni, PrivateIpAddresses=[address])
            else:
                self._call("assign_ipv6_addresses", NetworkInterfaceId=eni, Ipv6Addresses=[address])
        except HeldElsewhere:
            if str(ipaddress.ip_address(address)) in self.held(eni):
                return  # ours already (a repeated ADD after a restart): nothing to do
            raise

    def unassign(self, eni: str, address: str) -> None:
        """Unassign ``address`` from ``eni``; an address the interface no longer holds is not an error."""
        try:
            if _version(address) == 4:
                self._call("unassign_private_ip_addresses", NetworkInterfaceId=eni, PrivateIpAddresses=[address])
            else:
                self._call("unassign_ipv6_addresses", NetworkInterfaceId=eni, Ipv6Addresses=[address])
        except Ec2Error as exc:
            if exc.transient or not any(w in exc.message.lower() for w in _NOT_HELD_WORDS):
                raise
