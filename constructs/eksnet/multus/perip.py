"""Per-IP mode for a Multus interface: the seed's NAD range, one address at a time.

For users who need chosen addresses (the seed's ``range_start``/``range_end``) rather than
whatever /28 prefix EC2 delegates. Every node of a zone shares that zone's range; the node's
``eksnet-ipamd`` picks an address, assigns it to the node's own Multus ENI
(``AssignPrivateIpAddresses``, never ``AllowReassignment``: EC2 arbitrates between nodes) before the
pod's ADD answers, unassigns it after DEL, and reconciles assignments with no lease
(``node_runtime/perip.py``). What this module makes:

- an **explicit subnet CIDR reservation** of each zone's range, so EC2 never hands an address of
  it to another ENI (explicit reservations are assigned only by hand);
- the **IAM** on the node role: the four assign/unassign actions on network interfaces only when
  the interface's ``eksnet.io/instance-arn`` tag (written by the Multus ENI Lambda) equals
  ``${ec2:SourceInstanceARN}``, the instance the credentials belong to: a node changes only its
  own Multus ENIs;
- the **IMDS hop limit 1** on the cluster's nodes (``EksCluster.close_imds_to_pods``): pods, one
  network hop further than the node, can no longer obtain the node role's credentials, so no pod
  may borrow that right (pods with ``hostNetwork: true`` share the node's network and still can:
  granting those is granting the node);
- the pool name a NAD's ``EksnetIpam(pool=...)`` names (``ipam()``). ``MultusNetworking`` lists each
  zone's range in the node config (``/etc/eksnet/multus.json``); the node setup keeps the one of its
  ENI's subnet (``node_runtime.perip.ranges_in_subnet``) for the per-IP pool of ``ipamd.json``.

``MultusNetworking`` makes one ``PerIpMultus`` per ``MultusInterface(mode=AddressMode.PER_IP)``.

Bad input fails at synth with a message that says what to change: a range outside its zone's
Multus subnet or over the addresses AWS reserves in it, a range overlapping the subnet's prefix
(delegation) reservation, ranges overlapping each other, a zone without a range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam

from constructs import Construct
from eksnet import nag, typecheck, validate
from eksnet.cidr_reservation import CidrReservationType, SubnetCidrReservation
from eksnet.multus.nad import EksnetIpam, MultusTypeError, Route, _check_fields

INSTANCE_ARN_TAG = "eksnet.io/instance-arn"  # written on each Multus ENI by the ENI Lambda (SEAMS 3)
ASSIGN_ACTIONS = ("ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
                  "ec2:AssignIpv6Addresses", "ec2:UnassignIpv6Addresses")
# botocore for the daemon's EC2 calls: AL2023's distro package (pure Python, for the system python3; the
# daemon's python3.11 finds it there, see node_runtime/ec2assign.py). One user data line, a dnf step.
PER_IP_NODE_PACKAGES = "rpm -q python3-botocore >/dev/null 2>&1 || dnf install -y -q python3-botocore"
_AWS_RESERVED_HEAD = 4  # EC2 reserves a subnet's first four addresses and its last one


@dataclass(frozen=True)
class PerIpRanges:
    """Where the per-IP addresses of one Multus interface come from, per zone.

    * ``ipv4`` [{}]: zone -> IPv4 CIDR inside that zone's Multus subnet of the interface, e.g.
      ``{"eu-central-1a": "192.168.96.32/27"}`` (the seed's 192.168.96.20-40, as a CIDR: a subnet
      CIDR reservation is a CIDR).
    * ``prefix_length`` [None]: instead of ``ipv4``, take in every zone's subnet the highest block
      of this length that overlaps neither the addresses AWS reserves nor the subnet's prefix
      reservation.

    Exactly one of the two. Every zone that has a Multus subnet needs a range: nodes of a zone
    without one could not start per-IP pods.
    """

    ipv4: Mapping[str, str] = field(default_factory=dict)
    prefix_length: int | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        if bool(self.ipv4) == (self.prefix_length is not None):
            raise ValueError("PerIpRanges needs exactly one of ipv4 (zone -> CIDR) or prefix_length (a block "
                             "in every zone's Multus subnet)")
        if self.prefix_length is not None and not 16 <= self.prefix_length <= 30:
            raise ValueError(f"PerIpRanges.prefix_length must be 16..30 (a /30 holds 4 addresses), "
                             f"got {self.prefix_length}")


def _aws_reserved(subnet: ipaddress.IPv4Network) -> list[ipaddress.IPv4Address]:
    return [subnet[i] for i in range(_AWS_RESERVED_HEAD)] + [subnet[-1]]


def plan_ranges(ranges: PerIpRanges, subnets: Mapping[str, ipaddress.IPv4Network],
                reserved: Mapping[str, Sequence[ipaddress.IPv4Network]] | None = None,
                taken: Sequence[ipaddress.IPv4Network] = ()) -> dict[str, ipaddress.IPv4Network]:
    """Each zone's per-IP range, checked. ``subnets``: zone -> the interface's Multus subnet;
    ``reserved``: zone -> prefix reservations in that subnet; ``taken``: per-IP ranges of other
    interfaces. Raises ValueError naming the zone, the range and what to change."""
    reserved = reserved or {}
    unknown = sorted(set(ranges.ipv4) - set(subnets))
    if unknown:
        raise ValueError(f"per-IP ranges name zones without a Multus subnet: {unknown}; zones are {sorted(subnets)}")
    planned: dict[str, ipaddress.IPv4Network] = {}
    for zone, subnet in subnets.items():
        blocked = list(reserved.get(zone, ()))
        if ranges.prefix_length is not None:
            planned[zone] = _highest_free_block(zone, subnet, ranges.prefix_length, blocked)
            continue
        if zone not in ranges.ipv4:
            raise ValueError(f"per-IP ranges have no range for zone {zone}: nodes there could not start per-IP "
                             f"pods; add a CIDR inside its Multus subnet {subnet}")
        cidr = validate.ipv4_network(ranges.ipv4[zone], f"per-IP range of zone {zone}")
        if not validate.inside(cidr, subnet):
            raise ValueError(f"per-IP range {cidr} of zone {zone} is outside its Multus subnet {subnet}: "
                             f"choose a block inside it")
        aws = [a for a in _aws_reserved(subnet) if a in cidr]
        if aws:
            raise ValueError(f"per-IP range {cidr} of zone {zone} holds {', '.join(map(str, aws))}, which AWS "
                             f"reserves in subnet {subnet} (its first four and last addresses): choose a block "
                             f"clear of them")
        for prefix in blocked:
            if cidr.overlaps(prefix):
                raise ValueError(f"per-IP range {cidr} of zone {zone} overlaps the prefix reservation {prefix} of "
                                 f"subnet {subnet}: EC2 would delegate those addresses to ENIs as /28 prefixes; "
                                 f"choose a block outside it or shorten the prefix reservation")
        planned[zone] = cidr
    everything = [(f"zone {z}", c) for z, c in planned.items()] + [("another interface", c) for c in taken]
    clash = validate.overlap(c for _, c in everything)
    if clash:
        (what_a, a), (what_b, b) = (next((w, c) for w, c in everything if c is net) for net in clash)
        raise ValueError(f"per-IP range {a} of {what_a} overlaps range {b} of {what_b}: every range needs "
                         f"addresses of its own")
    return planned


def _highest_free_block(zone: str, subnet: ipaddress.IPv4Network, length: int,
                        blocked: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    if length <= subnet.prefixlen:
        raise ValueError(f"PerIpRanges.prefix_length /{length} is not smaller than the Multus subnet {subnet} of "
                         f"zone {zone}: use a prefix longer than /{subnet.prefixlen}")
    aws = _aws_reserved(subnet)
    for block in reversed(list(subnet.subnets(new_prefix=length))):
        if not any(a in block for a in aws) and not any(block.overlaps(p) for p in blocked):
            return block
    raise ValueError(f"no /{length} in Multus subnet {subnet} of zone {zone} is clear of AWS's reserved addresses "
                     f"and the prefix reservations {[str(p) for p in blocked]}: use a longer prefix_length or "
                     f"shorten the prefix reservation")


def reserve_explicit(subnet: ec2.ISubnet, id: str, cidr: str, description: str) -> SubnetCidrReservation:
    """The one place per-IP mode reserves a range: an explicit subnet CIDR reservation, made the way
    the stack's region can deploy (``eksnet.cidr_reservation``)."""
    return SubnetCidrReservation(subnet, id, subnet=subnet, cidr=cidr, reservation_type=CidrReservationType.EXPLICIT,
                                 description=description)


def grant_own_eni_assignment(role: iam.IRole, scope: Construct) -> iam.Policy:
    """The node role may assign/unassign addresses only on network interfaces tagged with the
    calling instance's own ARN, and describe interfaces (EC2 has no resource-level Describe)."""
    stack = cdk.Stack.of(scope)
    eni_arn = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    policy = iam.Policy(scope, "NodeOwnEniAssignment", statements=[
        iam.PolicyStatement(
            sid="AssignOnOwnMultusEnis",
            actions=list(ASSIGN_ACTIONS),
            resources=[eni_arn],
            conditions={"StringEquals": {f"aws:ResourceTag/{INSTANCE_ARN_TAG}": "${ec2:SourceInstanceARN}"}},
        ),
        iam.PolicyStatement(sid="DescribeEnis", actions=["ec2:DescribeNetworkInterfaces"], resources=["*"]),
    ])
    policy.attach_to_role(role)
    nag.acknowledge_as(policy, "PerIpMultus", "own-enis", findings=nag.resource_findings(policy, [eni_arn]))
    nag.acknowledge_as(policy, "PerIpMultus", "describe-enis", findings=["Resource::*"])
    return policy


class PerIpMultus(Construct):
    """Per-IP addressing of one Multus interface (device index ``device_index``) of a cluster.

    Props (keyword-only; defaults in brackets):

    * ``subnets``: zone -> the interface's Multus subnet (``EksVpc.multus_subnets[zone][d - 1]``).
    * ``ranges``: ``PerIpRanges``.
    * ``device_index``: the interface's device index (1..n), which names its pool ``multus<d>``.
    * ``cluster``: the ``EksCluster`` whose nodes carry the interface: its node role gets the
      bounded IAM and its nodes the IMDS hop limit 1.
    * ``prefix_reservations`` [{}]: zone -> CIDRs reserved for prefix delegation in those subnets
      (``EksVpc.multus_pod_ranges``), which the ranges must not overlap.
    * ``other_ranges`` [()]: per-IP ranges of other interfaces, which these must not overlap.

    Attributes: ``pool`` (the node runtime pool name; ``ipam()`` is the NAD's ``EksnetIpam``), ``ranges``
    (zone -> ``IPv4Network``), ``reservations`` (zone -> ``SubnetCidrReservation``), ``policy``.
    """

    def __init__(self, scope: Construct, id: str, *, subnets: Mapping[str, ec2.ISubnet], ranges: PerIpRanges,
                 device_index: int, cluster: Any,
                 prefix_reservations: Mapping[str, Sequence[str]] | None = None,
                 other_ranges: Sequence[ipaddress.IPv4Network] = ()) -> None:
        typecheck.check_call("PerIpMultus", PerIpMultus.__init__, locals(), error=MultusTypeError)
        super().__init__(scope, id)
        if not 1 <= device_index <= 14:
            raise ValueError(f"PerIpMultus.device_index must be 1..14, got {device_index}")
        cidrs = {}
        for zone, subnet in subnets.items():
            block = subnet.ipv4_cidr_block
            if cdk.Token.is_unresolved(block):
                raise ValueError(f"PerIpMultus needs the IPv4 CIDR of the Multus subnet of zone {zone} at synth "
                                 f"(a subnet built in this app, e.g. by EksVpc), not a token")
            cidrs[zone] = ipaddress.IPv4Network(block)
        reserved = {z: [ipaddress.IPv4Network(c) for c in cs] for z, cs in (prefix_reservations or {}).items()}
        self.ranges = plan_ranges(ranges, cidrs, reserved, other_ranges)
        self.device_index = device_index
        self.pool = f"multus{device_index}"
        self.subnet_cidrs = cidrs
        self.reservations = {
            zone: reserve_explicit(subnets[zone], f"PerIpRange{device_index}", str(cidr),
                                   f"Multus per-IP pod addresses, device index {device_index}")
            for zone, cidr in self.ranges.items()
        }
        self.policy = grant_own_eni_assignment(cluster.node_role, self)
        cluster.close_imds_to_pods()

    def ipam(self, routes: Sequence[Route] = ()) -> EksnetIpam:
        """The IPAM of a NAD on this interface: the node runtime's pool of the per-IP range."""
        typecheck.check_call("PerIpMultus.ipam", PerIpMultus.ipam, locals(), error=MultusTypeError)
        return EksnetIpam(pool=self.pool, routes=tuple(routes))
