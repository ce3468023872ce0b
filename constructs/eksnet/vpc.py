"""Dual-stack and IPv6 VPCs for EKS (MISSION.md section 1; seed 003, "Using IPv6 in your EKS cluster").

``EksVpc`` builds on aws-cdk-lib's ``ec2.Vpc(ip_protocol=DUAL_STACK)``, which already makes the
Amazon-provided IPv6 /56, a /64 per subnet, the Internet gateway, the Egress-only Internet gateway
and the NAT gateways with their routes. It adds only what that construct lacks:

- "how pods reach IPv4" as one choice (``PodIpv4Egress``) instead of loose toggles: node SNAT keeps
  DNS64 off; NAT64 turns DNS64 on and routes ``64:ff9b::/96`` to the zone's NAT gateway;
- IPv6-only (``Ipv6Native``) private subnets;
- the EKS subnet tags that the AWS Load Balancer Controller and EKS read;
- Multus subnets per zone and per interface with their own route tables, a Multus security group
  and subnet CIDR reservations for pod addresses (``eksnet.cidr_reservation``: the CloudFormation type
  where the region has it, EC2's API through a custom resource elsewhere);
- flow logs by default, and a synth-time check that no DNS64 subnet lacks its NAT64 route.

All IPv4 arithmetic uses ``ipaddress``; IPv6 blocks are CloudFormation tokens (the /56 is only known
at deploy time), so they are carved with ``Fn::Cidr`` like aws-cdk-lib does.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs

from constructs import Construct, IConstruct, IValidation
from eksnet import nag, typecheck, validate
from eksnet.cidr_reservation import CidrReservationType, SubnetCidrReservation
from eksnet.stack_pass import StackPass


class PodIpv4Egress(enum.Enum):
    """How IPv6 pods reach IPv4 destinations: one choice, read by both the VPC and the cluster.

    NODE_SNAT: the VPC CNI gives each pod a host-local IPv4 and SNATs it to the node
    (``ENABLE_V4_EGRESS=true``, the EKS default); DNS64 stays off on node subnets.
    NAT64: pods are IPv6 only (``ENABLE_V4_EGRESS=false``); subnets turn DNS64 on and
    route ``64:ff9b::/96`` to their zone's NAT gateway.
    """

    NODE_SNAT = "node-snat"
    NAT64 = "nat64"


class NatGateways(enum.Enum):
    """How many NAT gateways the VPC gets (IPv4 egress of private subnets, and NAT64).

    PER_AZ: one per zone; each private subnet uses its own zone's (no cross-zone traffic, survives a zone's
    outage), at the cost of one Elastic IP per zone (the default quota is 5 per region).
    SHARED: one, in the first zone's public subnet (eksctl's default); one Elastic IP, every zone routes through it.
    NONE: none; private subnets reach the internet over IPv6 (EIGW) only. Not allowed with NAT64.
    """

    PER_AZ = "per-az"
    SHARED = "shared"
    NONE = "none"


NAT64_PREFIX = "64:ff9b::/96"  # RFC 6052 well-known prefix, the one Route 53 Resolver's DNS64 synthesizes
_MAX_AZS = 6  # the most zones of any region (us-east-1); bounds how many node subnets a VPC must hold
_MIN_AZS = 2
_IPV6_SUBNET_BLOCKS = 256  # /64s of the VPC's /56
_IPV6_POD_RANGE_BITS = "56"  # host bits of the IPv6 pod range: a /72 (256 /80 prefixes) per Multus subnet


@dataclass(frozen=True)
class MultusNetwork:
    """The Multus (secondary interface) subnets of an ``EksVpc``.

    ``ipv4_supernet`` is split into equal blocks, one per (zone, device index): zone-major, so zone
    ``k``'s subnet for device index ``d`` is block ``k * interfaces_per_node + (d - 1)``. The default
    192.168.192.0/19 is the free /19 left by the default node layout of 192.168.0.0/16 (six /19s,
    eksctl's), like the seed's 192.168.96.0/19 Multus range.

    In each Multus subnet the last block of size ``pod_range_prefix_length`` (default: the upper half)
    is reserved with a subnet CIDR reservation of ``reservation_type``, so ENI primary addresses (the
    lower part) never collide with pod addresses. With ``ipv6`` the subnets also get a /64 and IPv6 on
    creation, and the second /72 of each /64 is reserved for pod IPv6 addresses.
    """

    ipv4_supernet: str = "192.168.192.0/19"
    interfaces_per_node: int = 1
    pod_range_prefix_length: int | None = None
    reservation_type: CidrReservationType = CidrReservationType.PREFIX
    ipv6: bool = True
    #: Explicit subnets instead of the supernet's split: one tuple per device index (1..n), one CIDR per zone in
    #: zone order (``eksnet.multus.MultusNetworking`` fills it from its interfaces). ``interfaces_per_node`` follows.
    subnet_layout: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        validate.ipv4_network(self.ipv4_supernet, "MultusNetwork.ipv4_supernet")
        if self.subnet_layout:
            layout = tuple(tuple(str(c) for c in device) for device in self.subnet_layout)
            object.__setattr__(self, "subnet_layout", layout)
            object.__setattr__(self, "interfaces_per_node", len(layout))
            for d, device in enumerate(layout, start=1):
                for cidr in device:
                    validate.ipv4_network(cidr, f"Multus subnet (MultusNetwork.subnet_layout, device index {d})",
                                          max_prefix=28, why=" (EC2's smallest subnet)")
        if not 1 <= self.interfaces_per_node <= 14:
            raise ValueError(f"MultusNetwork.interfaces_per_node must be 1..14 (device indexes 1..n after the "
                             f"primary ENI), got {self.interfaces_per_node}")
        if self.pod_range_prefix_length is not None and not 1 <= self.pod_range_prefix_length <= 32:
            raise ValueError(f"MultusNetwork.pod_range_prefix_length must be 1..32, got {self.pod_range_prefix_length}")

    @property
    def supernet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.ipv4_supernet)

    def subnet_cidrs(self, az_count: int) -> list[ipaddress.IPv4Network]:
        """The Multus subnet of each (zone, device index), zone-major; raises if they get smaller than /28."""
        if self.subnet_layout:
            short = [d for d, device in enumerate(self.subnet_layout, start=1) if len(device) < az_count]
            if short:
                raise ValueError(f"MultusNetwork.subnet_layout gives device index(es) {short} fewer subnets than the "
                                 f"{az_count} zones of the VPC: give one CIDR per zone")
            cidrs = [ipaddress.IPv4Network(self.subnet_layout[d][z])
                     for z in range(az_count) for d in range(self.interfaces_per_node)]
            clash = validate.overlap(cidrs)
            if clash:
                raise ValueError(f"Multus subnets {clash[0]} and {clash[1]} overlap: give each (zone, interface) its own "
                                 "range")
            return cidrs
        blocks = az_count * self.interfaces_per_node
        prefix = self.supernet.prefixlen + math.ceil(math.log2(blocks)) if blocks > 1 else self.supernet.prefixlen
        if prefix > 28:
            raise ValueError(f"MultusNetwork.ipv4_supernet {self.ipv4_supernet} is too small for {az_count} zones x "
                             f"{self.interfaces_per_node} interfaces: subnets would be /{prefix}, smaller than "
                             f"EC2's /28 minimum; use a larger supernet")
        return list(self.supernet.subnets(new_prefix=prefix))[:blocks]

    def pod_range(self, subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        """The reserved pod range of one Multus subnet (its last block of ``pod_range_prefix_length``)."""
        length = self.pod_range_prefix_length or subnet.prefixlen + 1
        if length <= subnet.prefixlen:
            raise ValueError(f"MultusNetwork.pod_range_prefix_length /{length} would reserve all of Multus subnet "
                             f"{subnet}, leaving no primary addresses for ENIs; use a prefix longer than "
                             f"/{subnet.prefixlen}")
        if self.reservation_type is CidrReservationType.PREFIX and length > 28:
            raise ValueError(f"MultusNetwork.pod_range_prefix_length /{length} is smaller than one /28 delegated "
                             f"prefix; use /28 or shorter, or reservation_type=CidrReservationType.EXPLICIT")
        return list(subnet.subnets(new_prefix=length))[-1]


@dataclass(frozen=True)
class MultusPodRange:
    """The reserved pod address range of one Multus subnet (``EksVpc.multus_pod_ranges`` values)."""

    az: str
    device_index: int
    subnet: ec2.ISubnet
    ipv4: ipaddress.IPv4Network
    ipv6: str | None  # token (Fn::Select over Fn::Cidr of the subnet's /64): a /72, or None without IPv6
    reservation_type: CidrReservationType


@jsii.implements(IValidation)
class _Dns64RouteCheck:
    """Synth-time check over every subnet under the VPC construct, including escape-hatch edits.

    A subnet with DNS64 on gets ``64:ff9b::`` answers for IPv4-only names; without a ``64:ff9b::/96``
    route to a NAT gateway those packets are dropped. An IPv6-only subnet cannot reach IPv4 at all
    without both. Checking the final Cfn resources catches changes made after construction.
    """

    def __init__(self, scope: Construct) -> None:
        self._scope = scope

    def validate(self) -> list[str]:
        stack = cdk.Stack.of(self._scope)

        def key(value: object) -> str:
            return json.dumps(stack.resolve(value), sort_keys=True)

        def is_true(value: object) -> bool:  # resolve only tokens: a plain value costs no jsii round trip
            return value is True or (value is not None and not isinstance(value, bool) and stack.resolve(value) is True)

        constructs = self._scope.node.find_all()
        flagged = []  # (subnet, dns64, ipv6 native) of the subnets the rule is about; usually none
        for c in constructs:
            if isinstance(c, ec2.CfnSubnet):
                dns64, native = is_true(c.enable_dns64), is_true(c.ipv6_native)
                if dns64 or native:
                    flagged.append((c, dns64, native))
        if not flagged:
            return []
        assocs, routes = {}, {}
        for c in constructs:
            if isinstance(c, ec2.CfnSubnetRouteTableAssociation):
                assocs[key(c.subnet_id)] = key(c.route_table_id)
            elif isinstance(c, ec2.CfnRoute) and c.destination_ipv6_cidr_block == NAT64_PREFIX and c.nat_gateway_id:
                routes.setdefault(key(c.route_table_id), c)
        errors = []
        for s, dns64, native in flagged:
            has_route = assocs.get(key(s.ref)) in routes
            if dns64 and not has_route:
                errors.append(f"{s.node.path}: DNS64 is on but its route table has no {NAT64_PREFIX} route to a NAT "
                              f"gateway (NAT64); add one (PrivateSubnet.add_ipv6_nat64_route) or turn DNS64 off")
            if native and not (dns64 and has_route):
                errors.append(f"{s.node.path}: IPv6-only subnet needs DNS64 on and a {NAT64_PREFIX} route to a NAT "
                              f"gateway to reach IPv4 destinations")
        return errors


def _ipv6_egress_parity(vpc: ec2.Vpc):
    """A ``StackPass`` fix: every security group of ``vpc`` that allows all IPv4 egress gets the same for IPv6.

    In a dual-stack VPC, an IPv4-only egress rule silently breaks IPv6 pods and nodes (their default
    route is IPv6). aws-cdk-lib's ``SecurityGroup`` defaults to IPv4-only egress, so groups made by
    other constructs in the same stack (clusters, endpoints, Lambda functions) are fixed here.
    """

    def fix(constructs: Sequence[IConstruct]) -> None:
        groups = [c for c in constructs if isinstance(c, ec2.SecurityGroup)]
        if not groups:
            return
        stack = cdk.Stack.of(vpc)
        vpc_id = stack.resolve(vpc.vpc_id)
        for node in groups:
            if not node.allow_all_outbound or node.allow_all_ipv6_outbound:
                continue
            cfn = node.node.default_child
            if not isinstance(cfn, ec2.CfnSecurityGroup) or stack.resolve(cfn.vpc_id) != vpc_id:
                continue
            if node.node.try_find_child("Ipv6AllEgress") is None:
                # aws-cdk-lib refuses an all-traffic rule through add_egress_rule, so the rule is its own resource.
                ec2.CfnSecurityGroupEgress(node, "Ipv6AllEgress", group_id=node.security_group_id, ip_protocol="-1",
                                           cidr_ipv6="::/0", description="IPv6 egress like IPv4 (eksnet EksVpc)")

    return fix


class EksVpc(Construct):
    """A dual-stack VPC laid out for EKS: public and private subnets per zone, optional Multus subnets.

    Keyword arguments (defaults in brackets):

    - ``ipv4_cidr`` [192.168.0.0/16, eksctl's]: the VPC's IPv4 block (EKS requires one even for IPv6
      clusters). An Amazon-provided IPv6 /56 is always added; every subnet gets a /64.
    - ``az_count`` [the stack's zones, ``Stack.availability_zones``]: 2..6 zones, taken in order.
    - ``subnet_prefix_length`` [VPC prefix + 3, i.e. /19 in a /16]: size of each public and private
      subnet; they are allocated from the start of ``ipv4_cidr`` (public zone 1..n, then private), so
      the default leaves the top quarter of a /16 free for Multus with three zones.
    - ``nat_gateways`` [SHARED, eksctl's default]: see ``NatGateways``.
    - ``pod_ipv4_egress`` [NODE_SNAT]: see ``PodIpv4Egress``; the cluster construct reads
      ``EksVpc.pod_ipv4_egress`` to set the VPC CNI's ``ENABLE_V4_EGRESS``.
    - ``ipv6_only_private_subnets`` [False]: private subnets become IPv6-only (``Ipv6Native``, hostname
      type resource-name); requires NAT64. Public subnets stay dual-stack (NAT gateways need IPv4).
    - ``cluster_names`` [()]: EKS clusters that share the VPC; tags ``kubernetes.io/cluster/<name>`` on every
      subnet with IPv4 (IPv6-only subnets are not tagged: EKS cannot place a cluster's nodes there).
    - ``multus`` [None]: a ``MultusNetwork`` adds Multus subnets, security group and pod ranges.
    - ``flow_logs`` [True]: VPC flow logs (all traffic) to a CloudWatch Logs group.
    - ``flow_log_retention`` [``RetentionDays.ONE_MONTH``]: how long that group keeps them; None keeps the
      aws-cdk-lib default (two years).
    - ``ipv6_egress_parity`` [True]: every ``ec2.SecurityGroup`` of this VPC in the same stack that allows
      all IPv4 egress also gets all IPv6 egress (see ``_ipv6_egress_parity``).

    Attributes: ``vpc`` (the ``ec2.Vpc``), ``pod_ipv4_egress``, ``dns64``, ``public_subnets``,
    ``private_subnets``, ``nat_gateway_ids`` (zone -> NAT gateway id), ``egress_only_internet_gateway_id``,
    ``multus_subnets`` (zone -> subnets by device index 1..n), ``multus_security_group``,
    ``multus_pod_ranges`` (keyed by ``(zone, device_index)``), ``flow_log``.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        ipv4_cidr: str = "192.168.0.0/16",
        az_count: int | None = None,
        subnet_prefix_length: int | None = None,
        nat_gateways: NatGateways = NatGateways.SHARED,
        pod_ipv4_egress: PodIpv4Egress = PodIpv4Egress.NODE_SNAT,
        ipv6_only_private_subnets: bool = False,
        cluster_names: Sequence[str] = (),
        multus: MultusNetwork | None = None,
        flow_logs: bool = True,
        flow_log_retention: logs.RetentionDays | None = logs.RetentionDays.ONE_MONTH,
        ipv6_egress_parity: bool = True,
    ) -> None:
        typecheck.check_call("EksVpc", EksVpc.__init__, locals())
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        zones = list(stack.availability_zones)
        if cdk.Token.is_unresolved(zones) or any(cdk.Token.is_unresolved(z) for z in zones):
            raise ValueError("EksVpc needs a stack with an explicit environment and known zones "
                             "(eksnet.environment.EksnetStack) to lay out subnets at synth time")

        # --- validation first: nothing is created for bad input ------------------------------------
        az_count = len(zones) if az_count is None else az_count
        if not _MIN_AZS <= az_count <= min(_MAX_AZS, len(zones)):
            raise ValueError(f"az_count must be between {_MIN_AZS} (EKS needs subnets in two zones) and "
                             f"{min(_MAX_AZS, len(zones))} (the zones this stack knows: {zones}), got {az_count}")
        vpc_net = validate.ipv4_network(ipv4_cidr, "ipv4_cidr", min_prefix=16, max_prefix=24,
                                        why=" (VPC limits, with room for subnets; IPv6 comes from Amazon)")
        prefix = subnet_prefix_length if subnet_prefix_length is not None else vpc_net.prefixlen + 3
        if not vpc_net.prefixlen < prefix <= 28:
            raise ValueError(f"subnet_prefix_length must be longer than the VPC's /{vpc_net.prefixlen} and at most "
                             f"/28, got /{prefix}")
        node_cidrs = list(vpc_net.subnets(new_prefix=prefix))
        if len(node_cidrs) < 2 * az_count:
            raise ValueError(f"ipv4_cidr {vpc_net} holds {len(node_cidrs)} /{prefix} subnets but {az_count} zones need "
                             f"{2 * az_count} (public and private); use a larger ipv4_cidr or subnet_prefix_length")
        node_cidrs = node_cidrs[: 2 * az_count]
        if pod_ipv4_egress is PodIpv4Egress.NAT64 and nat_gateways is NatGateways.NONE:
            raise ValueError("pod_ipv4_egress=NAT64 routes 64:ff9b::/96 to a NAT gateway, but nat_gateways=NONE "
                             "creates none; use NatGateways.PER_AZ or SHARED, or PodIpv4Egress.NODE_SNAT")
        if ipv6_only_private_subnets and pod_ipv4_egress is not PodIpv4Egress.NAT64:
            raise ValueError("ipv6_only_private_subnets=True needs DNS64 and NAT64 to reach IPv4 (nodes there have no "
                             "IPv4 to SNAT to): set pod_ipv4_egress=PodIpv4Egress.NAT64")
        for name in cluster_names:
            validate.eks_cluster_name(name, "cluster_names: each")
        self._vpc_net, self._node_cidrs, self._az_count = vpc_net, node_cidrs, az_count
        multus_cidrs = self._check_multus(multus) if multus is not None else []

        # --- the aws-cdk-lib VPC -------------------------------------------------------------------
        self.pod_ipv4_egress = pod_ipv4_egress
        self.dns64 = pod_ipv4_egress is PodIpv4Egress.NAT64
        self.azs: list[str] = zones[:az_count]
        nat_count = {NatGateways.PER_AZ: az_count, NatGateways.SHARED: 1, NatGateways.NONE: 0}[nat_gateways]
        nat_provider = ec2.NatProvider.gateway()
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(str(vpc_net)),
            ip_protocol=ec2.IpProtocol.DUAL_STACK,
            availability_zones=self.azs,
            nat_gateways=nat_count,
            nat_gateway_provider=nat_provider,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=prefix),
                ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                        cidr_mask=prefix),
            ],
            restrict_default_security_group=True,
        )
        self.public_subnets: list[ec2.ISubnet] = list(self.vpc.public_subnets)
        self.private_subnets: list[ec2.ISubnet] = list(self.vpc.private_subnets)
        made = [s.ipv4_cidr_block for s in self.public_subnets + self.private_subnets]
        if made != [str(c) for c in node_cidrs]:  # our overlap checks assumed aws-cdk-lib's sequential layout
            raise AssertionError(f"aws-cdk-lib laid out subnets {made}, expected {[str(c) for c in node_cidrs]}")
        self.nat_gateway_ids: dict[str, str] = {}
        gateways = {g.az: g.gateway_id for g in nat_provider.configured_gateways}
        for az in self.azs:
            if gateways:
                self.nat_gateway_ids[az] = gateways.get(az) or next(iter(gateways.values()))
        self.egress_only_internet_gateway_id: str = next(
            c for c in self.vpc.node.children if isinstance(c, ec2.CfnEgressOnlyInternetGateway)
        ).ref
        self._ipv6_cidr_block = next(c for c in self.vpc.node.children if isinstance(c, ec2.CfnVPCCidrBlock))

        # --- pod IPv4 egress: DNS64 + NAT64, IPv6-only subnets ---------------------------------------
        for subnet in self.private_subnets:
            cfn = _cfn_subnet(subnet)
            if ipv6_only_private_subnets:
                # An IPv6-native subnet has no IPv4 block; its instances must be named by resource id.
                cfn.add_property_deletion_override("CidrBlock")
                cfn.add_property_deletion_override("MapPublicIpOnLaunch")
                cfn.ipv6_native = True
                # typed as Any by aws-cdk-lib, so written with CloudFormation's own keys
                cfn.private_dns_name_options_on_launch = {
                    "HostnameType": "resource-name", "EnableResourceNameDnsAAAARecord": True,
                    "EnableResourceNameDnsARecord": False}
            if self.dns64:
                cfn.enable_dns64 = True
                subnet.add_ipv6_nat64_route(self.nat_gateway_ids[subnet.availability_zone])

        # --- EKS tags ------------------------------------------------------------------------------
        for subnet in self.public_subnets:
            cdk.Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        for subnet in self.private_subnets:
            cdk.Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")
        # EKS places clusters, nodes and Fargate pods only in subnets with IPv4: IPv6-only subnets stay for
        # workloads that support them and are not offered to a cluster.
        cluster_subnets = self.public_subnets + ([] if ipv6_only_private_subnets else self.private_subnets)
        for name in cluster_names:
            for subnet in cluster_subnets:
                cdk.Tags.of(subnet).add(f"kubernetes.io/cluster/{name}", "shared")

        # --- Multus ------------------------------------------------------------------------------
        self.multus: MultusNetwork | None = None
        self.multus_subnets: dict[str, list[ec2.ISubnet]] = {}
        self.multus_security_group: ec2.ISecurityGroup | None = None
        self.multus_pod_ranges: dict[tuple[str, int], MultusPodRange] = {}
        if multus is not None:
            self.multus = multus
            self._add_multus(multus, multus_cidrs)

        # --- flow logs -----------------------------------------------------------------------------
        self.flow_log: ec2.FlowLog | None = None
        if flow_logs:
            destination = None
            if flow_log_retention is not None:
                destination = ec2.FlowLogDestination.to_cloud_watch_logs(
                    logs.LogGroup(self, "FlowLogGroup", retention=flow_log_retention))
            self.flow_log = self.vpc.add_flow_log("FlowLog", destination=destination)

        # aws-cdk-lib's built-in template check warns on every named zone (W3010); naming them is the point here
        # (EksnetStack answers its zones from a table or context so synth looks nothing up), and nothing a user
        # could change would silence it. cfn-lint, the gate, exempts CDK templates from W3010 for the same reason.
        nag.acknowledge_as(self, "EksVpc", "named-zones")
        if ipv6_egress_parity:
            StackPass.of(stack).add(_ipv6_egress_parity(self.vpc))
        self.node.add_validation(_Dns64RouteCheck(self))

    @property
    def vpc_id(self) -> str:
        return self.vpc.vpc_id

    def add_multus(self, multus: MultusNetwork) -> None:
        """Add the Multus subnets, security group and pod ranges after construction (what ``multus=`` does);
        ``eksnet.multus.MultusNetworking`` calls it with the layout of its interfaces. Once per VPC."""
        if self.multus is not None:
            raise ValueError(f"{self.node.path} already has Multus subnets (EksVpc(multus=...) or an earlier "
                             "add_multus): one MultusNetwork per VPC")
        cidrs = self._check_multus(multus)
        self.multus = multus
        self._add_multus(multus, cidrs)

    def _check_multus(self, multus: MultusNetwork) -> list[ipaddress.IPv4Network]:
        vpc_net, node_cidrs = self._vpc_net, self._node_cidrs
        multus_cidrs = multus.subnet_cidrs(self._az_count)
        ranges = multus_cidrs if multus.subnet_layout else [multus.supernet]
        what = "Multus subnet" if multus.subnet_layout else "MultusNetwork.ipv4_supernet"
        for net in ranges:
            if not validate.inside(net, vpc_net):
                raise ValueError(f"{what} {net} is not inside the VPC's ipv4_cidr {vpc_net}; Multus subnets are "
                                 "VPC subnets")
            clash = [str(c) for c in node_cidrs if c.overlaps(net)]
            if clash:
                raise ValueError(f"{what} {net} overlaps the public/private subnets {clash}; pick a free range of "
                                 f"{vpc_net} (node subnets use {node_cidrs[0].network_address}-"
                                 f"{node_cidrs[-1].broadcast_address})")
        for c in multus_cidrs:
            multus.pod_range(c)  # validates the pod range size against each subnet
        return multus_cidrs

    def _add_multus(self, multus: MultusNetwork, cidrs: list[ipaddress.IPv4Network]) -> None:
        """Multus subnets (own route tables: IPv4 via the zone's NAT, IPv6 via the EIGW), SG, reservations."""
        scope = Construct(self, "Multus")
        vpc_ipv6 = cdk.Fn.select(0, self.vpc.vpc_ipv6_cidr_blocks)
        first_free_ipv6 = 2 * len(self.azs)  # aws-cdk-lib numbers the node subnets' /64s 0..2n-1
        for z, az in enumerate(self.azs):
            self.multus_subnets[az] = []
            for d in range(1, multus.interfaces_per_node + 1):
                block = z * multus.interfaces_per_node + (d - 1)
                cidr = cidrs[block]
                subnet = ec2.PrivateSubnet(
                    scope, f"Az{z + 1}Device{d}",
                    availability_zone=az, vpc_id=self.vpc.vpc_id, cidr_block=str(cidr),
                    map_public_ip_on_launch=False,
                    assign_ipv6_address_on_creation=multus.ipv6 or None,
                    ipv6_cidr_block=cdk.Fn.select(first_free_ipv6 + block,
                                                  cdk.Fn.cidr(vpc_ipv6, _IPV6_SUBNET_BLOCKS, "64"))
                    if multus.ipv6 else None,
                )
                subnet.node.add_dependency(self._ipv6_cidr_block)
                if self.nat_gateway_ids:
                    subnet.add_default_nat_route(self.nat_gateway_ids[az])
                if multus.ipv6:
                    subnet.add_ipv6_default_egress_only_internet_route(self.egress_only_internet_gateway_id)
                cdk.Tags.of(subnet).add("multus", "true")
                cdk.Tags.of(subnet).add("Zone", az)
                self.multus_subnets[az].append(subnet)

                pod_v4 = multus.pod_range(cidr)
                SubnetCidrReservation(
                    subnet, "PodRange", subnet=subnet, cidr=str(pod_v4), reservation_type=multus.reservation_type,
                    description=f"Multus pod IPv4 addresses, device index {d}",
                )
                pod_v6 = None
                if multus.ipv6:
                    subnet_v6 = cdk.Fn.select(0, _cfn_subnet(subnet).attr_ipv6_cidr_blocks)
                    pod_v6 = cdk.Fn.select(1, cdk.Fn.cidr(subnet_v6, 2, _IPV6_POD_RANGE_BITS))
                    SubnetCidrReservation(
                        subnet, "PodRange6", subnet=subnet, cidr=pod_v6, reservation_type=multus.reservation_type,
                        description=f"Multus pod IPv6 addresses, device index {d}",
                    )
                self.multus_pod_ranges[(az, d)] = MultusPodRange(
                    az=az, device_index=d, subnet=subnet, ipv4=pod_v4, ipv6=pod_v6,
                    reservation_type=multus.reservation_type)

        sg = ec2.SecurityGroup(
            scope, "SecurityGroup", vpc=self.vpc,
            description="Multus ENIs: traffic between Multus interfaces, all egress (IPv4 and IPv6)",
            allow_all_outbound=True, allow_all_ipv6_outbound=True,
        )
        sg.add_ingress_rule(sg, ec2.Port.all_traffic(), "Multus interfaces talk to each other")
        cdk.Tags.of(sg).add("multus", "true")
        self.multus_security_group = sg




def _cfn_subnet(subnet: ec2.ISubnet) -> ec2.CfnSubnet:
    child = subnet.node.default_child
    if not isinstance(child, ec2.CfnSubnet):
        raise TypeError(f"{subnet.node.path} has no CfnSubnet default child")
    return child
