"""``MultusNetworking``: Multus on an EKS cluster from ONE list of interfaces.

Before this construct, what ties the Multus parts together was held by the app: the ENI device indexes,
the prefix counts, the pool names and the NAD masters were separate inputs to ``EksVpc(multus=)``,
``MultusEniAttacher``, ``MultusNodeBootstrap`` and ``NetworkAttachmentDefinition``, free to disagree.
Here each ``MultusInterface`` (its subnets, address mode, prefix counts, IPv6 or not) is said once, and
everything is derived from the list:

* the Multus subnets, route tables, pod ranges and security group (``EksVpc.add_multus``);
* the device indexes (interface ``k`` of the list is EC2 device index ``k``, ``multus<k>`` on the node);
* the lifecycle hooks, the ENI Lambda and its environment (``MultusEniAttacher``);
* the node config ``/etc/eksnet/multus.json``, the node user data and the node units (``MultusNodeBootstrap``);
* the kubelet ``maxPods`` of every node group carrying the ENIs (``EksCluster.set_multus_enis``), and the
  refusal of an instance type that cannot hold 1 + the Multus ENIs;
* the ``eksnet-ipamd`` pool names, and NAD builders whose ``master``, pool and routes are right by
  construction: ``networking.nad("ipvlan-private-a", interface=1)``;
* the first nodes: a managed node group starts at size 0 and is scaled to its size only after the hooks
  exist (``first_nodes_after_hooks``), so no node ever launches without a hook to hold it.

The lower-level constructs stay public for users who want to wire them differently.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr

from constructs import Construct
from eksnet import nag, typecheck, validate
from eksnet.cluster import EksCluster
from eksnet.multus.eni import MultusEniAttacher
from eksnet.multus.install import MultusInstall
from eksnet.multus.nad import (
    EKSNET_IPVLAN_TYPE,
    CniVersion,
    EksnetIpam,
    Ipvlan,
    IpvlanMode,
    MultusConfigError,
    MultusTypeError,
    NetworkAttachmentDefinition,
    Route,
    _check_fields,
)
from eksnet.multus.node import AddressMode, MultusInterfaces, MultusNodeBootstrap, NodeRuntimeInstall, RpFilter
from eksnet.multus.perip import PER_IP_NODE_PACKAGES, PerIpMultus, PerIpRanges, plan_ranges
from eksnet.vpc import EksVpc, MultusNetwork

_MAX_PREFIXES = 16


@dataclass(frozen=True)
class PerIpSettings:
    """Per-IP mode of one interface (issue 11, item 5): pods get chosen addresses from a range reserved in the
    subnet (an explicit CIDR reservation), each assigned to the node's Multus ENI through EC2 when the pod
    starts (``eksnet.multus.perip``: ranges, IAM bound to the node's own ENIs, IMDS hop closed to pods).

    ``ranges`` [{}]: zone -> IPv4 CIDR inside that zone's subnet of the interface (the seed's NAD range, as
    a CIDR); else ``range_prefix_length`` [27]: the highest block of that size in each zone's subnet clear
    of AWS's reserved addresses and of the subnet's prefix reservation.
    """

    ranges: Mapping[str, str] = field(default_factory=dict)
    range_prefix_length: int | None = None

    def __post_init__(self) -> None:
        _check_fields(self)

    def per_ip_ranges(self) -> PerIpRanges:
        if self.ranges:
            if self.range_prefix_length is not None:
                raise MultusConfigError("PerIpSettings: give ranges or range_prefix_length, not both")
            return PerIpRanges(ipv4=dict(self.ranges))
        return PerIpRanges(prefix_length=self.range_prefix_length or 27)


@dataclass(frozen=True)
class MultusInterface:
    """One Multus ENI on every node of the node groups: its subnets and how its pods get addresses.

    Subnets: ``ipv4_subnets`` (one CIDR per zone, in the VPC's zone order) or ``ipv4_supernet`` (split into
    one subnet per zone), or neither: then every interface's subnets come from ``MultusNetworking``'s
    ``ipv4_supernet``, split zone-major as ``EksVpc(multus=MultusNetwork(...))`` does. Give subnets on every
    interface or on none.

    Addresses: ``mode`` [PREFIX] with ``ipv4_prefixes`` [1] IPv4 /28 and ``ipv6_prefixes`` [1] IPv6 /80
    delegated to the ENI (16 addresses a /28, 2^48 a /80: no EC2 call when a pod starts), ``ipv6`` [True]: the
    subnet gets a /64 and the pool IPv6 prefixes; ``per_ip`` for PER_IP mode.
    """

    ipv4_subnets: tuple[str, ...] = ()
    ipv4_supernet: str | None = None
    mode: AddressMode = AddressMode.PREFIX
    ipv4_prefixes: int = 1
    ipv6_prefixes: int = 1
    ipv6: bool = True
    per_ip: PerIpSettings | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        object.__setattr__(self, "ipv4_subnets", tuple(self.ipv4_subnets))
        if self.ipv4_subnets and self.ipv4_supernet:
            raise MultusConfigError("MultusInterface: give ipv4_subnets (one per zone) or ipv4_supernet, not both")
        for what in ("ipv4_prefixes", "ipv6_prefixes"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_PREFIXES:
                raise MultusConfigError(f"MultusInterface.{what} must be 0..{_MAX_PREFIXES}, got {value!r}")
        if not self.ipv6 and self.ipv6_prefixes:
            object.__setattr__(self, "ipv6_prefixes", 0)
        if self.mode is AddressMode.PREFIX and self.ipv4_prefixes == 0 and self.ipv6_prefixes == 0:
            raise MultusConfigError("a PREFIX-mode MultusInterface needs ipv4_prefixes or ipv6_prefixes above 0: its "
                                    "pods' addresses are the delegated prefixes")
        if self.per_ip is not None and self.mode is not AddressMode.PER_IP:
            raise MultusConfigError("MultusInterface.per_ip is for mode=AddressMode.PER_IP")

    @property
    def has_own_subnets(self) -> bool:
        return bool(self.ipv4_subnets or self.ipv4_supernet)

    def zone_cidrs(self, zones: int) -> tuple[str, ...]:
        """This interface's subnet of each zone (only when it names its own)."""
        if self.ipv4_subnets:
            return self.ipv4_subnets
        net = validate.ipv4_network(self.ipv4_supernet, "MultusInterface.ipv4_supernet", error=MultusConfigError)
        bits = (zones - 1).bit_length()
        if net.prefixlen + bits > 28:
            raise MultusConfigError(f"MultusInterface.ipv4_supernet {net} is too small for {zones} zones: subnets "
                                    f"would be smaller than EC2's /28")
        return tuple(str(s) for s in list(net.subnets(prefixlen_diff=bits))[:zones])


class MultusNetworking(Construct):
    """Multus on ``cluster``'s ``node_groups`` in ``vpc``, from one list of ``interfaces``.

    :param vpc: the ``eksnet.vpc.EksVpc`` (without ``multus=``: the subnets come from ``interfaces``).
    :param cluster: the ``eksnet.cluster.EksCluster``.
    :param node_groups: names of the cluster's node groups whose nodes carry the Multus ENIs. Default: all.
    :param interfaces: the Multus ENIs of every node, in device order (the first is device index 1).
    :param ipv4_supernet: where interfaces without their own subnets get them. Default: 192.168.192.0/19.
    :param pod_range_prefix_length: size of the reserved pod range of each Multus subnet (default: its upper half).
    :param rp_filter: reverse-path filter on the Multus interfaces [LOOSE].
    :param wait_seconds: how long a booting node's setup waits for its ENIs [300].
    :param runtime: how the node runtime is installed [``NodeRuntimeInstall()``].
    :param install_multus: install Multus itself (``MultusInstall``) [True].
    :param first_nodes_after_hooks: managed node groups start at size 0 and a custom resource gives them their
        size once the hooks exist [True].
    :param heartbeat_timeout: lifecycle hook heartbeat [5 minutes].

    Attributes: ``vpc``, ``cluster``, ``interfaces``, ``device_indexes``, ``names`` (index -> ``multus<k>``),
    ``pools`` (index -> pool name), ``multus_network`` (the ``MultusNetwork`` given to the VPC), ``subnets``
    (index -> zone -> ``ISubnet``), ``security_group``, ``node_interfaces`` (``MultusInterfaces``),
    ``node_config`` (the JSON of ``/etc/eksnet/multus.json``), ``attacher`` (``MultusEniAttacher``),
    ``bootstrap`` (``MultusNodeBootstrap``), ``per_ip`` (index -> ``PerIpMultus`` of each PER_IP interface),
    ``per_ip_ranges`` (index -> zone -> range), ``install`` (``MultusInstall`` or None), ``max_pods`` (node group
    -> maxPods), ``nodegroups`` (name -> ``Nodegroup``), ``scalers`` (name -> the custom resource that sizes it).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: EksVpc,
        cluster: EksCluster,
        interfaces: Sequence[MultusInterface],
        node_groups: Sequence[str] | None = None,
        ipv4_supernet: str = "192.168.192.0/19",
        pod_range_prefix_length: int | None = None,
        rp_filter: RpFilter = RpFilter.LOOSE,
        wait_seconds: int = 300,
        runtime: NodeRuntimeInstall | None = None,
        install_multus: bool = True,
        first_nodes_after_hooks: bool = True,
        heartbeat_timeout: cdk.Duration | None = None,
    ) -> None:
        typecheck.check_call("MultusNetworking", MultusNetworking.__init__, locals(), error=MultusTypeError)
        super().__init__(scope, id)

        # --- validation first: nothing is created for bad input -------------------------------------------------
        self.interfaces = tuple(interfaces)
        if not self.interfaces:
            raise MultusConfigError("MultusNetworking needs at least one MultusInterface")
        if not all(isinstance(i, MultusInterface) for i in self.interfaces):
            raise MultusConfigError("interfaces must be MultusInterface(...) objects")
        counts = {(i.ipv4_prefixes, i.ipv6_prefixes) for i in self.interfaces}
        if len(counts) > 1:
            raise MultusConfigError(f"the Multus ENI Lambda delegates the same prefix counts to every ENI "
                                    f"(MULTUS_IPV4_PREFIX_COUNT/MULTUS_IPV6_PREFIX_COUNT); the interfaces ask for "
                                    f"{sorted(counts)} (IPv4, IPv6): give them the same counts")
        own = {i.has_own_subnets for i in self.interfaces}
        if len(own) > 1:
            raise MultusConfigError("give ipv4_subnets/ipv4_supernet on every MultusInterface or on none")
        if vpc.multus is not None:
            raise MultusConfigError(f"{vpc.node.path} already has Multus subnets (EksVpc(multus=...)): let "
                                    "MultusNetworking make them from its interfaces (drop multus= from the EksVpc)")
        all_groups = list(cluster.nodegroups)
        names = list(node_groups) if node_groups is not None else all_groups
        unknown = [n for n in names if n not in cluster.nodegroups]
        if unknown or not names:
            raise MultusConfigError(f"node_groups {unknown or names} are not node groups of the cluster "
                                    f"({all_groups})")
        zones = len(vpc.azs)
        n = len(self.interfaces)
        if own == {True}:
            layout = tuple(i.zone_cidrs(zones) for i in self.interfaces)
            bad = [k for k, cidrs in enumerate(layout, start=1) if len(cidrs) != zones]
            if bad:
                raise MultusConfigError(f"interface(s) {bad}: give one subnet per zone ({zones}: {vpc.azs})")
            self.multus_network = MultusNetwork(subnet_layout=layout, pod_range_prefix_length=pod_range_prefix_length,
                                                ipv6=any(i.ipv6 for i in self.interfaces))
        else:
            self.multus_network = MultusNetwork(ipv4_supernet=ipv4_supernet, interfaces_per_node=n,
                                                pod_range_prefix_length=pod_range_prefix_length,
                                                ipv6=any(i.ipv6 for i in self.interfaces))
        first = self.interfaces[0]
        self.per_ip_ranges = self._plan_per_ip(vpc.azs)
        self.node_interfaces = MultusInterfaces(
            device_indexes=tuple(range(1, n + 1)), rp_filter=rp_filter, wait_seconds=wait_seconds,
            ipv4_prefix_count=first.ipv4_prefixes, ipv6_prefix_count=first.ipv6_prefixes,
            modes={k: i.mode for k, i in enumerate(self.interfaces, start=1)},
            per_ip_ranges={k: [[{"subnet": str(self._per_ip_subnets[k][az]), "rangeStart": str(r[0]),
                                 "rangeEnd": str(r[-1])}] for az, r in zones.items()]
                           for k, zones in self.per_ip_ranges.items()},
        )
        self.device_indexes = self.node_interfaces.device_indexes
        self.names = self.node_interfaces.names
        self.pools = self.node_interfaces.pools
        self.vpc = vpc
        self.cluster = cluster
        # maxPods and the ENI fit are checked before anything is made, for every group before any is changed.
        from eksnet import max_pods as _max_pods

        for name in names:
            for instance_type in cluster.nodegroups[name].node.default_child.instance_types or ():
                try:
                    _max_pods.check_multus_fit(instance_type, n)
                except _max_pods.UnknownInstanceType:
                    continue
                except ValueError as exc:
                    raise MultusConfigError(f"node group {name}: {exc}") from None
        self.max_pods = {name: cluster.set_multus_enis(name, n) for name in names}

        # --- subnets, security group ---------------------------------------------------------------------------
        vpc.add_multus(self.multus_network)
        self.subnets: dict[int, dict[str, ec2.ISubnet]] = {
            k: {az: vpc.multus_subnets[az][k - 1] for az in vpc.azs} for k in self.device_indexes}
        self.security_group = vpc.multus_security_group
        # Per-IP interfaces: explicit reservations, the node role's EC2 right bound to its own ENIs, IMDS hop 1.
        self.per_ip: dict[int, PerIpMultus] = {
            k: PerIpMultus(self, f"PerIp{k}", subnets=self.subnets[k], cluster=cluster, device_index=k,
                           ranges=PerIpRanges(ipv4={az: str(r) for az, r in zones.items()}),
                           prefix_reservations={az: [str(vpc.multus_pod_ranges[(az, k)].ipv4)] for az in zones})
            for k, zones in self.per_ip_ranges.items()}

        # --- hooks, Lambda ---------------------------------------------------------------------------------------
        self.nodegroups: dict[str, eks.Nodegroup] = {name: cluster.nodegroups[name] for name in names}
        self.attacher = MultusEniAttacher(
            self, "EniAttacher", cluster_name=cluster.cluster_name, subnets=vpc.multus_subnets,
            security_group=self.security_group, nodegroups=list(self.nodegroups.values()),
            ipv4_prefix_count=first.ipv4_prefixes, ipv6_prefix_count=first.ipv6_prefixes,
            **({"heartbeat_timeout": heartbeat_timeout} if heartbeat_timeout is not None else {}),
        )

        # --- node side ---------------------------------------------------------------------------------------------
        self.bootstrap = MultusNodeBootstrap(self, "NodeBootstrap", interfaces=self.node_interfaces,
                                             runtime=runtime or NodeRuntimeInstall())
        for name in names:
            if self.per_ip:  # eksnet-ipamd's EC2 calls (node_runtime/ec2assign.py): a line of its own (a dnf step)
                cluster.node_user_data[name].add_commands(PER_IP_NODE_PACKAGES)
            self.bootstrap.add_to(cluster.node_user_data[name], cluster.node_role)
        self.node_config = self.bootstrap.node_config

        # --- Multus ----------------------------------------------------------------------------------------------
        self.install = MultusInstall(self, "Install", cluster=cluster.cluster) if install_multus else None

        # --- first nodes after the hooks ---------------------------------------------------------------------------
        self.scalers: dict[str, cr.AwsCustomResource] = {}
        if first_nodes_after_hooks:
            for name, ng in self.nodegroups.items():
                self.scalers[name] = self._size_after_hooks(name, ng)

    def _plan_per_ip(self, azs: Sequence[str]) -> dict[int, dict[str, ipaddress.IPv4Network]]:
        """Each PER_IP interface's range per zone, checked before anything is made."""
        n = len(self.interfaces)
        cidrs = self.multus_network.subnet_cidrs(len(azs))  # zone-major: (zone z, device k) is z * n + k - 1
        self._per_ip_subnets: dict[int, dict[str, ipaddress.IPv4Network]] = {}
        planned: dict[int, dict[str, ipaddress.IPv4Network]] = {}
        taken: list[ipaddress.IPv4Network] = []
        for k, iface in enumerate(self.interfaces, start=1):
            if iface.mode is not AddressMode.PER_IP:
                continue
            subnets = {az: cidrs[z * n + k - 1] for z, az in enumerate(azs)}
            reserved = {az: [self.multus_network.pod_range(c)] for az, c in subnets.items()}
            try:
                planned[k] = plan_ranges((iface.per_ip or PerIpSettings()).per_ip_ranges(), subnets, reserved, taken)
            except ValueError as e:
                raise MultusConfigError(f"interface {k} (AddressMode.PER_IP): {e}") from e
            self._per_ip_subnets[k] = subnets
            taken += planned[k].values()
        return planned

    # --- NADs -----------------------------------------------------------------------------------------------------

    def routes(self, interface: int) -> tuple[Route, ...]:
        """Routes a pod on ``interface`` needs to reach every node's pods on it: its IPv4 subnets (collapsed) and,
        with IPv6, each of its subnets' IPv6 /64 (known at deploy time)."""
        self._check_index(interface)
        subnets = self.subnets[interface]
        v4 = ipaddress.collapse_addresses(ipaddress.IPv4Network(s.ipv4_cidr_block) for s in subnets.values())
        routes = [Route(str(net)) for net in v4]
        if self.interfaces[interface - 1].ipv6:
            for subnet in subnets.values():
                cfn = subnet.node.default_child
                routes.append(Route(cdk.Fn.select(0, cfn.attr_ipv6_cidr_blocks), family=6))
        return tuple(routes)

    def nad(
        self, name: str, *, interface: int, namespace: str | None = None, mode: IpvlanMode = IpvlanMode.L3,
        cni_version: CniVersion = CniVersion.V1_1_0, mtu: int | None = None, routes: Sequence[Route] = (),
    ) -> NetworkAttachmentDefinition:
        """An ipvlan NAD on Multus interface ``interface`` (1-based, the device index): ``master`` is that
        interface's name on the node, the IPAM is ``eksnet-ipam`` with that interface's pool, and the routes cover
        the interface's subnets in every zone (IPv4 and, with IPv6, IPv6), plus ``routes``."""
        typecheck.check_call("MultusNetworking.nad", MultusNetworking.nad, locals(), error=MultusTypeError)
        self._check_index(interface)
        return NetworkAttachmentDefinition(
            name=name, namespace=namespace, cni_version=cni_version,
            interface=Ipvlan(master=self.names[interface], mode=mode, mtu=mtu, plugin=EKSNET_IPVLAN_TYPE),
            ipam=EksnetIpam(pool=self.pools[interface], routes=(*self.routes(interface), *routes)),
        )

    def add_nad(self, name: str, *, interface: int, **kwargs) -> tuple[NetworkAttachmentDefinition, eks.KubernetesManifest]:
        """``nad(...)`` applied to the cluster after Multus's CRD."""
        if self.install is None:
            raise MultusConfigError("add_nad needs install_multus=True (the NAD CRD comes with the Multus install)")
        nad = self.nad(name, interface=interface, **kwargs)
        return nad, self.install.add_network(nad)

    def _check_index(self, interface: int) -> None:
        if interface not in self.subnets:
            raise MultusConfigError(f"interface {interface!r}: this MultusNetworking has interfaces "
                                    f"{list(self.device_indexes)} (1-based device indexes)")

    # --- first nodes ------------------------------------------------------------------------------------------------

    def _size_after_hooks(self, name: str, ng: eks.Nodegroup) -> cr.AwsCustomResource:
        """Start ``ng`` at size 0 and give it its real size once the hooks, rule and Lambda exist.

        A managed node group's Auto Scaling group is made by EKS, so the hooks can only be added after it exists;
        instances launched before would never be held. The call runs when the resource is created and again only
        when its properties change (the group's sizes in the app). Other deploys leave the size to the cluster
        autoscaler or the operator (the template's 0 never changes, so CloudFormation never resets it).
        """
        cfn = ng.node.default_child
        stack = cdk.Stack.of(self)
        scaling = stack.resolve(cfn.scaling_config)
        sizes = {"minSize": scaling.get("minSize", 0), "maxSize": scaling["maxSize"],
                 "desiredSize": scaling.get("desiredSize", scaling.get("minSize", 0))}
        cfn.add_property_override("ScalingConfig.MinSize", 0)
        cfn.add_property_override("ScalingConfig.DesiredSize", 0)
        call = cr.AwsSdkCall(
            service="EKS", action="updateNodegroupConfig",
            parameters={"clusterName": self.cluster.cluster_name, "nodegroupName": cfn.attr_nodegroup_name,
                        "scalingConfig": sizes},
            physical_resource_id=cr.PhysicalResourceId.of(f"{self.cluster.cluster_name}/{name}/size"),
        )
        scaler = cr.AwsCustomResource(
            self, f"Size{name}", on_create=call, on_update=call, install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["eks:UpdateNodegroupConfig"], resources=[ng.nodegroup_arn]),
            ]),
        )
        # After the hooks hold new instances and the Lambda can act on them (and, where there is one, after the
        # deploy-time reconcile of instances already in service).
        after = [*self.attacher.lifecycle_hooks, self.attacher.rule, self.attacher.function]
        reconciliation = getattr(self.attacher, "reconciliation", None)  # instances already in service (eni.py)
        if reconciliation is not None:
            after.append(reconciliation)
        scaler.node.add_dependency(*after)
        nag.acknowledge_custom_resource_provider(stack)
        return scaler
