"""The rules that names, CIDRs and enum choices follow, stated once for every construct and builder.

Each check takes the value, ``what`` (the prop or field, as the message should name it) and ``error``, the
exception class to raise (``ValueError`` by default; the Multus builders pass their ``MultusConfigError``). The
message names the field, the value given and the rule, so a user knows what to change. A check returns the
value (parsed, for CIDRs and addresses) so callers can keep it.

Nothing here imports CDK: ``eksnet.policy`` renders manifests without it. Deploy-time tokens (a subnet's zone,
a cluster name from another stack) cannot be checked at synth; callers skip them with ``Token.is_unresolved``.

Kubernetes rules are those of ``k8s.io/apimachinery/pkg/util/validation`` (``IsDNS1123Label``,
``IsDNS1123Subdomain``, ``IsQualifiedName``, ``IsValidLabelValue``, ``IsValidPortName``); AWS rules are those of
the EKS and EC2 APIs (``CreateCluster``'s ``name``, zone, region and account formats).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from typing import TypeVar

Error = type[Exception]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
N = TypeVar("N", ipaddress.IPv4Network, ipaddress.IPv6Network)
E = TypeVar("E", bound=enum.Enum)

# --- Kubernetes ------------------------------------------------------------------------------------------------

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_NAME_MAX = 63  # the name part of a label key, and a label value
PORT_NAME_MAX = 15

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL.pattern}(\.{_DNS1123_LABEL.pattern})*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PORT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")


def _matches(value: object, pattern: re.Pattern[str], max_len: int | None = None) -> bool:
    """Whether ``value`` is a string of at most ``max_len`` characters that ``pattern`` matches whole."""
    return isinstance(value, str) and (max_len is None or len(value) <= max_len) and bool(pattern.fullmatch(value))


def dns1123_label(value: object, what: str, error: Error = ValueError) -> str:
    """A DNS-1123 label (Kubernetes ``IsDNS1123Label``; RFC 1123): 1-63 lower-case letters, digits and '-',
    starting and ending with a letter or digit. Namespace names are labels."""
    if not _matches(value, _DNS1123_LABEL, DNS1123_LABEL_MAX):
        raise error(f"{what} must be a DNS-1123 label (1-63 lower-case letters, digits and '-', starting and "
                    f"ending with a letter or digit), got {value!r}")
    return value


def dns1123_subdomain(value: object, what: str, error: Error = ValueError) -> str:
    """A DNS-1123 subdomain (Kubernetes ``IsDNS1123Subdomain``): DNS-1123 labels joined by '.', at most 253
    characters. The names of most Kubernetes objects (NetworkPolicy, NetworkAttachmentDefinition, custom
    resources) are subdomains."""
    if not _matches(value, _DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MAX):
        raise error(f"{what} must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', each "
                    f"dot-separated part starting and ending with a letter or digit, at most 253 characters), "
                    f"got {value!r}")
    return value


def label_key(key: object, what: str = "label key", error: Error = ValueError) -> str:
    """A label (or annotation) key (Kubernetes ``IsQualifiedName``): an optional prefix, a DNS-1123 subdomain
    followed by '/', then a name of 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter
    or digit. An empty prefix ('/name') and more than one '/' are refused."""
    if not isinstance(key, str):
        raise error(f"{what} must be a string, got {key!r}")
    parts = key.split("/")
    if len(parts) > 2:
        raise error(f"{what} {key!r} has more than one '/': a key is [prefix/]name")
    if len(parts) == 2:
        dns1123_subdomain(parts[0], f"the prefix of {what} {key!r}", error)
    name = parts[-1]
    if not _matches(name, _QUALIFIED_NAME, LABEL_NAME_MAX):
        raise error(f"{what} {key!r}: the name part must be 1-63 characters of letters, digits, '-', '_' or '.', "
                    "starting and ending with a letter or digit")
    return key


def label_value(value: object, what: str, error: Error = ValueError) -> str:
    """A label value (Kubernetes ``IsValidLabelValue``): empty, or 1-63 letters, digits, '-', '_' and '.',
    starting and ending with a letter or digit."""
    if not (value == "" or _matches(value, _QUALIFIED_NAME, LABEL_NAME_MAX)):
        raise error(f"{what}: a label value must be at most 63 characters of letters, digits, '-', '_' or '.', "
                    f"starting and ending with a letter or digit (or empty), got {value!r}")
    return value


def labels(mapping: object, what: str = "label", error: Error = ValueError) -> dict[str, str]:
    """Every key (``label_key``) and value (``label_value``) of a label mapping; returns it as a dict."""
    out = dict(mapping)  # type: ignore[call-overload]
    for key, value in out.items():
        label_key(key, f"{what} key", error)
        label_value(value, f"{what} {key}", error)
    return out


def port_name(value: object, what: str = "named port", error: Error = ValueError) -> str:
    """A container port name (Kubernetes ``IsValidPortName``, an IANA service name per RFC 6335 5.1): 1-15
    lower-case letters, digits and '-', at least one letter, no '--', not starting or ending with '-'."""
    if (not _matches(value, _PORT_NAME, PORT_NAME_MAX)
            or "--" in value or not any("a" <= c <= "z" for c in value)):
        raise error(f"{what} {value!r} must be an IANA service name: at most 15 lower-case letters, digits and "
                    "single '-' (not first or last), with at least one letter")
    return value


# --- AWS ----------------------------------------------------------------------------------------------------------

_EKS_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]*")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_ZONE = re.compile(rf"{_REGION.pattern}[a-z]")
_ACCOUNT = re.compile(r"\d{12}")


def eks_cluster_name(value: object, what: str = "cluster_name", error: Error = ValueError) -> str:
    """An EKS cluster name (EKS ``CreateCluster``): 1-100 letters, digits, '-' and '_', starting with a letter
    or digit (case-sensitive)."""
    if not _matches(value, _EKS_NAME, 100):
        raise error(f"{what} must be an EKS cluster name (1-100 letters, digits, '-' and '_', starting with a "
                    f"letter or digit), got {value!r}")
    return value


def eks_nodegroup_name(value: object, what: str = "nodegroup name", error: Error = ValueError) -> str:
    """An EKS managed node group name (EKS ``CreateNodegroup``): 1-63 letters, digits, '-' and '_', starting
    with a letter or digit."""
    if not _matches(value, _EKS_NAME, 63):
        raise error(f"{what} must be an EKS node group name (1-63 letters, digits, '-' and '_', starting with a "
                    f"letter or digit), got {value!r}")
    return value


def region(value: object, what: str = "region", error: Error = ValueError) -> str:
    """An AWS region name such as ``eu-central-1`` or ``us-gov-west-1``."""
    if not _matches(value, _REGION):
        raise error(f"{what} must be a region name such as eu-central-1, got {value!r}")
    return value


def availability_zone(value: object, what: str = "availability zone", error: Error = ValueError) -> str:
    """An availability zone name: a region name and a letter, such as ``eu-central-1a``."""
    if not _matches(value, _ZONE):
        raise error(f"{what} must be an availability zone name such as eu-central-1a, got {value!r}")
    return value


def account_id(value: object, what: str = "account", error: Error = ValueError) -> str:
    """An AWS account id: 12 digits."""
    if not _matches(value, _ACCOUNT):
        raise error(f"{what} must be a 12-digit AWS account id, got {value!r}")
    return value


# --- Hardware addresses -----------------------------------------------------------------------------------------

_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_PCI_ADDRESS = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")


def mac_address(value: object, what: str = "MAC address", error: Error = ValueError) -> str:
    """An Ethernet MAC address, six ':'-separated hex pairs such as ``0a:1b:2c:3d:4e:5f``."""
    if not _matches(value, _MAC):
        raise error(f"{what} {value!r} is not a MAC address like 0a:1b:2c:3d:4e:5f")
    return value


def pci_address(value: object, what: str = "PCI address", error: Error = ValueError) -> str:
    """A PCI address ``domain:bus:device.function`` such as ``0000:00:06.0``."""
    if not _matches(value, _PCI_ADDRESS):
        raise error(f"{what} {value!r} is not a PCI address like 0000:00:06.0")
    return value


# --- Names and paths that node-side software reads (whole strings: no trailing newline slips through) ------------

_ENV_VAR = re.compile(r"[A-Z][A-Z0-9_]*")
_IPAM_POOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CNI_CONF_FILE = re.compile(r"[0-9]{2}-[A-Za-z0-9._-]+\.conf(list)?")
_INTERFACE_PREFIX = re.compile(r"[a-z][a-z0-9]*")
_SHELL_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./-]*")
_PACKAGE = re.compile(r"[A-Za-z0-9_.+-]+")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
IPAM_POOL_MAX = 63
INTERFACE_PREFIX_MAX = 13  # IFNAMSIZ: 15 characters with the device index (up to two digits) after it


def is_env_var_name(value: object) -> bool:
    """An upper-case environment variable name (``ENABLE_PREFIX_DELEGATION``), as the VPC CNI's settings are."""
    return _matches(value, _ENV_VAR)


def is_ipam_pool_name(value: object) -> bool:
    """An ``eksnet-ipamd`` pool name: up to 63 letters, digits, '_', '.', '-', starting with a letter or digit."""
    return _matches(value, _IPAM_POOL, IPAM_POOL_MAX)


def is_cni_conf_file_name(value: object) -> bool:
    """A CNI configuration file name as kubelet and Multus order them: ``10-aws.conflist``, ``00-multus.conf``."""
    return _matches(value, _CNI_CONF_FILE)


def is_interface_name_prefix(value: object) -> bool:
    """A network interface name prefix: lower-case letters and digits, starting with a letter, at most 13."""
    return _matches(value, _INTERFACE_PREFIX, INTERFACE_PREFIX_MAX)


def is_shell_safe_absolute_path(value: object) -> bool:
    """An absolute path of letters, digits and ``_ . / -`` only: written into node user data as it is."""
    return _matches(value, _SHELL_SAFE_PATH)


def is_package_name(value: object) -> bool:
    """An OS package name (``python3.11``) for ``dnf install``."""
    return _matches(value, _PACKAGE)


def version_numbers(value: str) -> tuple[int, int, int] | None:
    """The leading ``major.minor.patch`` of a version such as ``v1.20.0-eksbuild.1``; None when it has none."""
    found = _VERSION.match(value)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


# --- CIDRs and addresses (ipaddress) -----------------------------------------------------------------------------

_EXAMPLES = {None: "192.168.0.0/16 or 2001:db8::/56", 4: "192.168.0.0/16", 6: "2001:db8::/56"}


def network(value: object, what: str, *, version: int | None = None, min_prefix: int | None = None,
            max_prefix: int | None = None, why: str = "", canonical: bool = False,
            error: Error = ValueError) -> Network:
    """A network in CIDR form, parsed with ``ipaddress``: an explicit prefix length (``10.0.0.0`` alone is
    refused, not taken as a /32), no host bits set, of IP ``version`` (4 or 6) when given, with a prefix length
    between ``min_prefix`` and ``max_prefix`` when given (``why`` says why, in the message). ``canonical``
    also refuses spellings other than ``ipaddress``'s own (what the Kubernetes API server stores)."""
    example = _EXAMPLES[version]
    text = value if isinstance(value, str) else None
    try:
        net = ipaddress.ip_network(text, strict=False) if text is not None else None
    except ValueError as e:
        net, reason = None, str(e)
    else:
        reason = "not a string"
    if net is None:
        raise error(f"{what} {value!r} is not a CIDR such as {example} ({reason})")
    if "/" not in text:
        raise error(f"{what} {value!r} needs a prefix length, e.g. {value}/{net.max_prefixlen}")
    if ipaddress.ip_interface(text).ip != net.network_address:
        raise error(f"{what} {value!r} has host bits set; write {net}")
    if version is not None and net.version != version:
        raise error(f"{what} must be an IPv{version} CIDR such as {example}{why}, got {value!r}")
    if canonical and str(net) != text:
        raise error(f"{what} {value!r} is not in canonical form; write {net}")
    low = min_prefix if min_prefix is not None else 0
    high = max_prefix if max_prefix is not None else net.max_prefixlen
    if not low <= net.prefixlen <= high:
        bounds = (f"between /{low} and /{high}" if min_prefix is not None and max_prefix is not None
                  else f"at most /{high}" if max_prefix is not None else f"at least /{low}")
        raise error(f"{what} {value} must be {bounds}{why}, got /{net.prefixlen}")
    return net


def ipv4_network(value: object, what: str, *, min_prefix: int | None = None, max_prefix: int | None = None,
                 why: str = "", error: Error = ValueError) -> ipaddress.IPv4Network:
    """``network`` of IP version 4."""
    return network(value, what, version=4, min_prefix=min_prefix, max_prefix=max_prefix, why=why,
                   error=error)  # type: ignore[return-value]


def address(value: object, what: str, error: Error = ValueError) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 or IPv6 address (no prefix length)."""
    try:
        return ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError as e:
        raise error(f"{what} {value!r} is not an IP address ({e})") from None


def interface(value: object, what: str, error: Error = ValueError) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """An address with its prefix length, such as ``192.168.96.20/19`` (host bits are the point here)."""
    if not isinstance(value, str) or "/" not in value:
        raise error(f"{what} {value!r} needs a prefix length, e.g. 192.168.96.20/19")
    try:
        return ipaddress.ip_interface(value)
    except ValueError as e:
        raise error(f"{what} {value!r} is not an address with a prefix length ({e})") from None


def inside(net: Network, outer: Network, *, strictly: bool = False) -> bool:
    """Whether ``net`` lies within ``outer`` (and is smaller, with ``strictly``); False across IP versions."""
    if net.version != outer.version:
        return False
    return net.subnet_of(outer) and not (strictly and net == outer)  # type: ignore[arg-type]


def overlap(nets: Iterable[N]) -> tuple[N, N] | None:
    """The first two of ``nets`` that share an address, in the order given; None when they are disjoint.
    Networks of different IP versions never overlap."""
    seen: list[N] = []
    for net in nets:
        for earlier in seen:
            if earlier.version == net.version and earlier.overlaps(net):
                return earlier, net
        seen.append(net)
    return None


# --- Enums --------------------------------------------------------------------------------------------------------

def enum_member(cls: type[E], value: object, what: str, error: Error = ValueError) -> E:
    """``value`` as a member of ``cls``: a member, or a member's value (context values and JSON arrive as
    strings). The message lists the choices both ways."""
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        choices = ", ".join(f"{cls.__name__}.{m.name} ({m.value!r})" for m in cls)
        raise error(f"{what} {value!r} is not one of {choices}") from None
