"""EKS clusters (IPv6 or IPv4) on aws-cdk-lib's ``aws_eks_v2``, with the VPC CNI wired end to end.

``EksCluster`` is what the seeds' ``eksctl create cluster -f myipv6cluster.yaml`` makes, as a
construct: a native ``AWS::EKS::Cluster`` in the chosen IP family, an OIDC provider, the
``vpc-cni``, ``coredns`` and ``kube-proxy`` add-ons (managed, created before any node), the VPC
CNI's IAM, and managed node groups whose launch templates enforce IMDSv2 and set kubelet's
``maxPods`` to what the CNI mode can address on the instance type.

Example::

    cluster = EksCluster(stack, "Cluster", vpc=vpc, cluster_name="myipv6cluster",
                         ip_family=eks.IpFamily.IP_V6,
                         nodegroups=[NodeGroupSpec("ipv6mng", instance_types=("t3.medium",))])
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

from constructs import Construct
from eksnet import max_pods as _max_pods
from eksnet import nag, typecheck, validate
from eksnet.eks_checks import PlacementCheck
from eksnet.vpc import EksVpc, PodIpv4Egress
from eksnet.vpc_cni import (
    CNI_NAMESPACE,
    CNI_SERVICE_ACCOUNT,
    MULTI_NIC_MIN_ADDON_VERSION,
    VpcCniConfig,
    annotate_pod_ip_rbac,
    security_group_policy,
)

ALL_LOG_TYPES: tuple[eks.ClusterLoggingTypes, ...] = (
    eks.ClusterLoggingTypes.API,
    eks.ClusterLoggingTypes.AUDIT,
    eks.ClusterLoggingTypes.AUTHENTICATOR,
    eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
    eks.ClusterLoggingTypes.SCHEDULER,
)

# The VPC CNI's IAM in IPv6 mode: AWS has no managed policy for it. Today's upstream action list
# (amazon-vpc-cni-k8s docs/iam-policy.md); the older five-action policy leaves nodes NotReady with
# VPC CNI 1.22.1 and later.
IPV6_CNI_ACTIONS: tuple[str, ...] = (
    "ec2:AssignIpv6Addresses",
    "ec2:DescribeInstances",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeInstanceTypes",
    "ec2:ModifyNetworkInterfaceAttribute",
)

_AL2023_PREFIX = "AL2023_"
_AL2023_STANDARD = {
    "x86_64": eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
    "arm64": eks.NodegroupAmiType.AL2023_ARM_64_STANDARD,
}


class CniIdentity(enum.Enum):
    """How the VPC CNI's ``aws-node`` service account gets its IAM role.

    IRSA: the cluster's OIDC provider and the add-on's ``ServiceAccountRoleArn`` (no extra agent,
    works from the first node). POD_IDENTITY: an EKS Pod Identity association on the add-on, which
    also installs the ``eks-pod-identity-agent`` add-on.
    """

    IRSA = "irsa"
    POD_IDENTITY = "pod-identity"


@dataclass(frozen=True)
class NodeGroupSpec:
    """One managed node group.

    ``max_pods`` None means computed from the instance types and the VPC CNI mode (the smallest
    over ``instance_types``); a number overrides it. ``ami_type`` None means the AL2023 standard AMI
    of the instance types' architecture (``AL2023_ARM_64_STANDARD`` for Graviton types such as m7g,
    ``AL2023_X86_64_STANDARD`` otherwise; the architecture comes from the offline instance table);
    instance types of both architectures in one group are refused. An explicit ``ami_type`` must be an
    AL2023 type of the instance types' architecture: the launch template's user data is a nodeadm
    ``NodeConfig`` (kubelet ``maxPods``) followed by a shell part that other constructs extend through
    ``EksCluster.node_user_data[name]``.
    """

    name: str
    instance_types: tuple[str, ...] = ("t3.medium",)
    min_size: int = 1
    desired_size: int = 2
    max_size: int = 3
    ami_type: eks.NodegroupAmiType | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    max_pods: int | None = None

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        object.__setattr__(self, "instance_types", tuple(self.instance_types))
        object.__setattr__(self, "labels", dict(self.labels))
        validate.eks_nodegroup_name(self.name, "NodeGroupSpec.name")
        if not self.instance_types:
            raise ValueError(f"node group {self.name}: give at least one instance type")
        if not 0 <= self.min_size <= self.desired_size <= self.max_size or self.max_size < 1:
            raise ValueError(
                f"node group {self.name}: sizes must satisfy 0 <= min_size <= desired_size <= max_size, max_size >= 1, "
                f"got min={self.min_size} desired={self.desired_size} max={self.max_size}"
            )
        if self.ami_type is not None and not self.ami_type.value.startswith(_AL2023_PREFIX):
            raise ValueError(
                f"node group {self.name}: ami_type {self.ami_type.name} is not an AL2023 type; eksnet writes kubelet "
                "settings as a nodeadm NodeConfig, so choose e.g. NodegroupAmiType.AL2023_X86_64_STANDARD"
            )
        if self.max_pods is not None and not 1 <= self.max_pods <= 737:
            raise ValueError(f"node group {self.name}: max_pods must be between 1 and 737, got {self.max_pods}")

    def architecture(self) -> str | None:
        """``arm64`` or ``x86_64`` from the instance table; None if no type is in it. Refuses mixed groups."""
        found: dict[str, list[str]] = {}
        for t in self.instance_types:
            try:
                found.setdefault(_max_pods.limits(t).architecture, []).append(t)
            except _max_pods.UnknownInstanceType:
                continue
        if len(found) > 1:
            raise ValueError(
                f"node group {self.name}: instance types of two architectures {found}; one node group runs one AMI, "
                "so split them into an arm64 and an x86_64 node group"
            )
        return next(iter(found), None)

    def resolved_ami_type(self) -> eks.NodegroupAmiType:
        """The AMI type the group gets: ``ami_type``, checked against the architecture, or the one it implies."""
        arch = self.architecture()
        if self.ami_type is None:
            if arch is None:
                raise ValueError(
                    f"node group {self.name}: none of {list(self.instance_types)} is in the instance table, so "
                    "the architecture is unknown: give ami_type (e.g. NodegroupAmiType.AL2023_X86_64_STANDARD)"
                )
            return _AL2023_STANDARD[arch]
        ami_arch = "arm64" if "ARM_64" in self.ami_type.value else "x86_64"
        if arch is not None and arch != ami_arch:
            raise ValueError(
                f"node group {self.name}: ami_type {self.ami_type.name} is built for {ami_arch} but "
                f"{list(self.instance_types)} are {arch}: use {_AL2023_STANDARD[arch].name}, or leave ami_type "
                "unset to have it chosen"
            )
        return self.ami_type


def _is_dual_stack(vpc: ec2.IVpc, declared: bool | None) -> bool:
    """Whether ``vpc`` has an IPv6 block: read from a VPC built in this app, else as ``declared``.

    ``vpc_ipv6_cidr_blocks`` cannot tell (it is a token list even on an IPv4-only VPC), so look for
    the ``AWS::EC2::VPCCidrBlock`` that adds IPv6; an imported VPC has to say so itself.
    """
    if declared is not None:
        return declared
    if isinstance(vpc, ec2.Vpc):
        return any(
            isinstance(c, ec2.CfnVPCCidrBlock)
            and (c.amazon_provided_ipv6_cidr_block or c.ipv6_ipam_pool_id or c.ipv6_cidr_block)
            for c in vpc.node.find_all()
        )
    return False


def _has_ipv6_only_subnets(subnets: Sequence[ec2.ISubnet]) -> bool:
    """Whether any of ``subnets`` is IPv6-only (``Ipv6Native``); an imported subnet has no ``CfnSubnet`` to say."""
    return any(isinstance(s.node.default_child, ec2.CfnSubnet) and s.node.default_child.ipv6_native for s in subnets)


def _check_multi_nic(specs: Sequence[NodeGroupSpec], versions: Mapping[str, str]) -> None:
    """Multi-NIC mode needs instance types with several network cards, and VPC CNI 1.20 or later."""
    for spec in specs:
        for t in spec.instance_types:
            try:
                cards = len(_max_pods.limits(t).network_card_enis)
            except _max_pods.UnknownInstanceType:
                raise ValueError(f"node group {spec.name}: {t} is not in the instance table, so its network cards are "
                                 "unknown; multi-NIC mode needs types with several (e.g. c6in.32xlarge)") from None
            if cards < 2:
                raise ValueError(f"node group {spec.name}: {t} has one network card; VpcCniConfig(multi_nic=True) "
                                 "needs instance types with several (e.g. c6in.32xlarge, p5.48xlarge)")
    given = versions.get("vpc-cni")
    if given is not None:
        parsed = validate.version_numbers(given)
        if parsed is None or parsed < (1, 20, 0):
            raise ValueError(f"addon_versions['vpc-cni']={given!r}: multi-NIC mode needs the VPC CNI add-on "
                             f"{MULTI_NIC_MIN_ADDON_VERSION} or later")


def _check_zones(subnets: Sequence[ec2.ISubnet]) -> None:
    """EKS needs the cluster's subnets in at least two zones; refuse a VPC whose private subnets are in one."""
    zones = {s.availability_zone for s in subnets}
    if not any(cdk.Token.is_unresolved(z) for z in zones) and len(zones) < 2:
        raise ValueError(
            f"the VPC's private subnets are all in {sorted(zones)}; EKS needs the cluster's subnets in at least "
            "two availability zones: use a VPC with subnets in two or more zones (EksVpc(az_count=2) or more)"
        )


def _all_nitro(instance_types: Sequence[str]) -> bool:
    try:
        return all(_max_pods.limits(t).supports_prefix_delegation for t in instance_types)
    except _max_pods.UnknownInstanceType:
        return False


@jsii.implements(cdk.IStableStringProducer)
class _MaxPodsProducer:
    """A node group's maxPods, read when the template is synthesized (after every construct had its say)."""

    def __init__(self, table: dict[str, int], name: str) -> None:
        self._table, self._name = table, name

    def produce(self) -> str:
        return str(self._table[self._name])


class EksCluster(Construct):
    """An EKS cluster with managed add-ons, the VPC CNI's IAM and typed VPC CNI modes.

    Props (keyword-only; defaults in brackets):

    * ``vpc``: an ``EksVpc`` or any ``ec2.IVpc`` (an ``ec2.Vpc``, or one imported with
      ``ec2.Vpc.from_vpc_attributes``). What the cluster reads from it:

      - ``private_subnets`` (of an ``EksVpc``, those of its ``vpc``): the node groups run there
        (``SubnetType.PRIVATE_WITH_EGRESS``). There must be some (an imported VPC lists them with
        ``private_subnet_ids``), in two zones or more where the zones are known at synth, none of
        them IPv6-only, and with custom networking each of their zones needs an ``EniSubnet``;
      - the VPC itself for ``aws_eks_v2.Cluster`` (the control plane's subnets: private and public, its
        default selection) and for the cluster's security groups (``vpc_id``);
      - whether it has IPv6, unless ``dual_stack`` says so: an ``EksVpc`` always has; an ``ec2.Vpc``
        built in the app has when it holds an IPv6 ``AWS::EC2::VPCCidrBlock``; an imported VPC
        cannot tell (``vpc_ipv6_cidr_blocks`` is a token) and counts as IPv4-only;
      - of an ``EksVpc``, ``pod_ipv4_egress``: the default of the prop below (a different prop is refused).
    * ``cluster_name``: the EKS name. ``version`` [``KubernetesVersion.V1_35``].
    * ``ip_family`` [``IpFamily.IP_V4``]; IPv6 needs a dual-stack VPC.
    * ``pod_ipv4_egress`` [``PodIpv4Egress.NODE_SNAT``]: rendered as ``ENABLE_V4_EGRESS`` on IPv6.
    * ``vpc_cni`` [``VpcCniConfig()``]: the CNI mode (see ``eksnet.vpc_cni``).
    * ``nodegroups`` [one ``NodeGroupSpec("ng")``]: managed node groups in the private subnets.
    * ``cni_identity`` [``CniIdentity.IRSA``].
    * ``endpoint_access`` [``EndpointAccess.PRIVATE``]: a public endpoint is a gate finding
      (``eksnet.eks_checks``) to acknowledge with a reason.
    * ``cluster_logging`` [all five control-plane log types].
    * ``addon_versions`` [{}]: add-on name -> version; absent means EKS's default for the version.
    * ``admin_principal_arns`` [()]: IAM principals given an access entry with cluster admin.
    * ``dual_stack`` [read from an ``ec2.Vpc`` built in the app; False for an imported VPC]: whether
      the VPC has IPv6, which turns on IPv6 egress on the node and control-plane groups and IPv6
      instance metadata.
    * ``secrets_key`` [True]: envelope encryption of Kubernetes secrets with a customer-managed KMS key
      (True: one is made, with rotation; a ``kms.IKey``: that one; False: EKS's default AWS-owned key).
    * ``control_plane_log_retention`` [``RetentionDays.ONE_MONTH``]: the stack owns the control plane's log
      group ``/aws/eks/<name>/cluster`` with this retention (EKS otherwise creates it, kept forever);
      None leaves it to EKS.
    * ``coredns_after_nodes`` [True]: the coredns add-on is created after the first node group (without
      nodes it stays degraded and its creation can time out); False creates it with the other add-ons.

    Attributes: ``cluster`` (the ``aws_eks_v2.Cluster``, with a kubectl provider so
    ``KubernetesManifest``/``HelmChart`` work), ``vpc_cni`` (the ``VpcCniConfig``), ``ip_family``,
    ``pod_ipv4_egress``, ``oidc_provider`` (native, always made), ``addons`` (name -> ``Addon``),
    ``cni_role``, ``node_role``, ``cluster_role``, ``control_plane_security_group``,
    ``node_security_group`` (IPv6 egress when the VPC is dual-stack), ``secrets_key`` (the KMS key or
    None), ``control_plane_log_group`` (or None), ``nodegroups`` (name ->
    ``Nodegroup``), ``launch_templates`` (name -> ``ec2.LaunchTemplate``), ``max_pods`` (name -> int),
    ``ami_types`` (name -> ``NodegroupAmiType``, chosen from the instance types' architecture).

    Node user data: ``node_user_data[name]`` is an ``ec2.UserData`` (shell) that runs on every node
    of the group after nodeadm's configuration; add commands to it before synth (Multus uses it to
    install its CNI binaries). Nodes are created after the three add-ons.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc | EksVpc,
        cluster_name: str,
        version: eks.KubernetesVersion = eks.KubernetesVersion.V1_35,
        ip_family: eks.IpFamily = eks.IpFamily.IP_V4,
        pod_ipv4_egress: PodIpv4Egress | None = None,
        vpc_cni: VpcCniConfig | None = None,
        nodegroups: Sequence[NodeGroupSpec] | None = None,
        cni_identity: CniIdentity = CniIdentity.IRSA,
        endpoint_access: eks.EndpointAccess = eks.EndpointAccess.PRIVATE,
        cluster_logging: Sequence[eks.ClusterLoggingTypes] = ALL_LOG_TYPES,
        addon_versions: Mapping[str, str] | None = None,
        admin_principal_arns: Sequence[str] = (),
        dual_stack: bool | None = None,
        secrets_key: kms.IKey | bool = True,
        control_plane_log_retention: logs.RetentionDays | None = logs.RetentionDays.ONE_MONTH,
        coredns_after_nodes: bool = True,
    ) -> None:
        typecheck.check_call("EksCluster", EksCluster.__init__, locals())
        super().__init__(scope, id)
        # --- inputs, validated before anything is made ---------------------------------------
        vpc_egress: PodIpv4Egress | None = None
        if isinstance(vpc, EksVpc):
            vpc_egress, vpc = vpc.pod_ipv4_egress, vpc.vpc
        private_subnets = list(vpc.private_subnets)
        if not private_subnets:
            raise ValueError(
                f"the VPC {vpc.node.path} has no private subnets; EksCluster runs its node groups in the private "
                "subnets: import the VPC with private_subnet_ids (ec2.Vpc.from_vpc_attributes), or use an EksVpc"
            )
        if vpc_egress is not None and pod_ipv4_egress is not None and vpc_egress is not pod_ipv4_egress:
            raise ValueError(
                f"pod_ipv4_egress={pod_ipv4_egress.name} contradicts the VPC's {vpc_egress.name}: "
                "the VPC's routes and the CNI's ENABLE_V4_EGRESS must agree; drop the prop or change the VPC"
            )
        self.pod_ipv4_egress: PodIpv4Egress = pod_ipv4_egress or vpc_egress or PodIpv4Egress.NODE_SNAT
        self.ip_family = ip_family
        self.ipv6 = ip_family == eks.IpFamily.IP_V6
        self.vpc_cni = vpc_cni or VpcCniConfig()
        self.vpc_cni.validate(ipv6=self.ipv6)
        self.dual_stack = _is_dual_stack(vpc, dual_stack)
        if self.ipv6 and not self.dual_stack:
            raise ValueError(
                "an IPv6 cluster needs a dual-stack VPC (an IPv6 CIDR on the VPC and its subnets): "
                "use eksnet.vpc.EksVpc or ec2.Vpc(ip_protocol=IpProtocol.DUAL_STACK)"
            )
        if _has_ipv6_only_subnets(private_subnets):
            # EKS: an IPv6 cluster, its nodes and its Fargate pods need dual-stack subnets (the control plane's
            # ENIs and the nodes' primary addresses are IPv4); an IPv4 cluster has no IPv4 there at all.
            raise ValueError(
                "the VPC's private subnets are IPv6-only; EKS places the control plane, node groups and Fargate "
                "pods only in subnets with IPv4, for IPv6 clusters too: use a VPC with dual-stack private subnets "
                "(EksVpc(ipv6_only_private_subnets=False)); IPv6-only subnets suit workloads outside the cluster"
            )
        _check_zones(private_subnets)
        specs = list(nodegroups) if nodegroups is not None else [NodeGroupSpec("ng")]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"node group names must be unique, got {names}")
        self._specs = {s.name: s for s in specs}
        self.multus_enis: dict[str, int] = {s.name: 0 for s in specs}  # set by set_multus_enis (eksnet.multus)
        self.max_pods: dict[str, int] = {s.name: self._node_max_pods(s) for s in specs}
        self.ami_types: dict[str, eks.NodegroupAmiType] = {s.name: s.resolved_ami_type() for s in specs}
        validate.eks_cluster_name(cluster_name, "cluster_name")
        self.cluster_name = cluster_name
        logging = list(cluster_logging)
        versions = dict(addon_versions or {})
        installed = {"vpc-cni", "kube-proxy", "coredns"} | (
            {"eks-pod-identity-agent"} if cni_identity is CniIdentity.POD_IDENTITY else set()
        )
        if set(versions) - installed:
            raise ValueError(
                f"addon_versions names add-ons this cluster does not install: "
                f"{sorted(set(versions) - installed)} (it installs {sorted(installed)})"
            )
        self._check_custom_networking_zones(private_subnets)
        if self.vpc_cni.multi_nic:
            _check_multi_nic(specs, versions)
            versions.setdefault("vpc-cni", MULTI_NIC_MIN_ADDON_VERSION)

        stack = cdk.Stack.of(self)
        # --- the anchors' defaults: a customer-managed key for secrets, an owned log group --------------
        self.secrets_key: kms.IKey | None = None
        if secrets_key is True:
            self.secrets_key = kms.Key(
                self, "SecretsKey", enable_key_rotation=True,
                description=f"EKS secrets envelope encryption of {cluster_name}",
            )
        elif secrets_key is not False:
            self.secrets_key = secrets_key
        self.control_plane_log_group: logs.LogGroup | None = None
        if control_plane_log_retention is not None and logging:
            self.control_plane_log_group = logs.LogGroup(
                self, "ControlPlaneLogs", log_group_name=f"/aws/eks/{cluster_name}/cluster",
                retention=control_plane_log_retention, removal_policy=cdk.RemovalPolicy.DESTROY,
            )
        # --- control plane -----------------------------------------------------------------------
        self.control_plane_security_group = ec2.SecurityGroup(
            self,
            "ControlPlaneSecurityGroup",
            vpc=vpc,
            description=f"EKS control plane of {cluster_name} (additional security group)",
            allow_all_outbound=True,
            allow_all_ipv6_outbound=self.dual_stack,
        )
        self.cluster_role = iam.Role(
            self,
            "ClusterRole",
            assumed_by=iam.ServicePrincipal("eks.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKSClusterPolicy")],
        )
        managed = ["AmazonEKSClusterPolicy"]
        if self.vpc_cni.pod_security_groups is not None:
            # Creates the trunk and branch ENIs that security groups for pods need.
            managed.append("AmazonEKSVPCResourceController")
            self.cluster_role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(managed[-1]))
        # Exactly the managed policies the role has: an acknowledgment of one it lacks would suppress nothing.
        nag.acknowledge_as(self.cluster_role, "EksCluster", "cluster-role",
                           findings=nag.managed_policy_findings(managed))
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=cluster_name,
            version=version,
            vpc=vpc,
            ip_family=ip_family,
            role=self.cluster_role,
            security_group=self.control_plane_security_group,
            endpoint_access=endpoint_access,
            cluster_logging=logging,
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            bootstrap_self_managed_addons=False,
            secrets_encryption_key=self.secrets_key,
            kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(self, "KubectlLayer")),
        )
        if self.control_plane_log_group is not None:
            # Created before the cluster, or EKS makes the group itself (no retention) and the stack's fails.
            self.cluster.node.add_dependency(self.control_plane_log_group)
        self._acknowledge_kubectl_provider()
        # The seed's `iam.withOIDC`: a native AWS::IAM::OIDCProvider for IRSA (the CNI's, and any workload's),
        # not Cluster.open_id_connect_provider, which is a custom resource with its own Lambda.
        self.oidc_provider = eks.OidcProviderNative(
            self, "OidcProvider", url=self.cluster.cluster_open_id_connect_issuer_url
        )
        for i, arn in enumerate(admin_principal_arns):
            self.cluster.grant_cluster_admin(f"Admin{i}", arn)

        # --- VPC CNI IAM and the add-ons -----------------------------------------------------------
        self.cni_role = self._cni_role(cni_identity)
        self.addons: dict[str, eks.Addon] = {}
        cni = eks.Addon(
            self,
            "VpcCni",
            cluster=self.cluster,
            addon_name="vpc-cni",
            addon_version=versions.pop("vpc-cni", None),
            configuration_values=self.vpc_cni.render(
                ipv6=self.ipv6, pod_ipv4_egress=self.pod_ipv4_egress, region=stack.region
            ),
        )
        cfn_cni: eks.CfnAddon = cni.node.default_child  # type: ignore[assignment]
        if cni_identity is CniIdentity.IRSA:
            cfn_cni.service_account_role_arn = self.cni_role.role_arn
        else:
            cfn_cni.pod_identity_associations = [
                eks.CfnAddon.PodIdentityAssociationProperty(
                    role_arn=self.cni_role.role_arn, service_account=CNI_SERVICE_ACCOUNT
                )
            ]
            pia = eks.Addon(
                self,
                "PodIdentityAgent",
                cluster=self.cluster,
                addon_name="eks-pod-identity-agent",
                addon_version=versions.pop("eks-pod-identity-agent", None),
            )
            cni.node.add_dependency(pia)
            self.addons["eks-pod-identity-agent"] = pia
        self.addons["vpc-cni"] = cni
        for name, cid in (("kube-proxy", "KubeProxy"), ("coredns", "CoreDns")):
            self.addons[name] = eks.Addon(
                self, cid, cluster=self.cluster, addon_name=name, addon_version=versions.pop(name, None)
            )
        # coredns needs a node to become healthy, and nodes need vpc-cni: only vpc-cni and kube-proxy gate nodes
        # (coredns follows the first node group unless coredns_after_nodes=False).
        # ANNOTATE_POD_IP without its RBAC would leave aws-node failing to patch pods: apply them together.
        self.annotate_pod_ip_rbac: eks.KubernetesManifest | None = None
        if self.vpc_cni.annotate_pod_ip:
            self.annotate_pod_ip_rbac = eks.KubernetesManifest(
                self, "AnnotatePodIpRbac", cluster=self.cluster, manifest=annotate_pod_ip_rbac()
            )

        # --- nodes -----------------------------------------------------------------------------------
        self.node_role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(n)
                for n in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")
            ],
        )
        nag.acknowledge_as(self.node_role, "EksCluster", "node-role", findings=nag.managed_policy_findings(
            ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"]))
        self.node_security_group = ec2.SecurityGroup(
            self,
            "NodeSecurityGroup",
            vpc=vpc,
            description=f"EKS nodes of {cluster_name}: outbound IPv4 and IPv6 (cluster security group does the rest)",
            allow_all_outbound=True,
            allow_all_ipv6_outbound=self.dual_stack,
        )
        self.nodegroups: dict[str, eks.Nodegroup] = {}
        self.launch_templates: dict[str, ec2.LaunchTemplate] = {}
        self.node_user_data: dict[str, ec2.UserData] = {}
        for spec in specs:
            self._add_nodegroup(spec)
        if coredns_after_nodes and self.nodegroups:
            self.addons["coredns"].node.add_dependency(next(iter(self.nodegroups.values())))
        # Node groups and Fargate profiles added later (cluster.add_nodegroup_capacity, add_fargate_profile)
        # are checked at synth against the same placement rules.
        self.node.add_validation(PlacementCheck(self.cluster))

    def close_imds_to_pods(self) -> None:
        """IMDSv2 hop limit 1 on every node group (instead of 2): pods, one network hop beyond the
        node, can no longer get the node role's credentials (host-network pods still can). Called by
        per-IP Multus mode, which gives the node role EC2 writes no pod may borrow."""
        for lt in self.launch_templates.values():
            lt.node.default_child.add_property_override("LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit", 1)

    def add_security_group_policy(
        self,
        id: str,
        *,
        name: str,
        namespace: str,
        security_groups: Sequence[ec2.ISecurityGroup],
        pod_labels: Mapping[str, str] | None = None,
        service_account_labels: Mapping[str, str] | None = None,
    ) -> eks.KubernetesManifest:
        """Apply a ``SecurityGroupPolicy`` to the cluster (see ``eksnet.vpc_cni.security_group_policy``).

        Refused unless the cluster runs security groups for pods: without ``ENABLE_POD_ENI`` the
        policy is accepted by the API server and silently ignored.
        """
        if self.vpc_cni.pod_security_groups is None:
            raise ValueError(
                f"SecurityGroupPolicy {name}: this cluster does not run security groups for pods; "
                "set VpcCniConfig(pod_security_groups=PodSecurityGroups())"
            )
        manifest = security_group_policy(
            name,
            namespace,
            security_group_ids=[g.security_group_id for g in security_groups],
            pod_labels=pod_labels,
            service_account_labels=service_account_labels,
        )
        applied = eks.KubernetesManifest(self, id, cluster=self.cluster, manifest=[manifest])
        # The CRD comes with the VPC resource controller, which EKS runs once the add-on is there.
        applied.node.add_dependency(self.addons["vpc-cni"])
        return applied

    # ------------------------------------------------------------------------------------------------

    def _check_custom_networking_zones(self, subnets: Sequence[ec2.ISubnet]) -> None:
        """Every zone nodes can land in needs its ENIConfig, or the CNI on those nodes has no pod subnet."""
        cn = self.vpc_cni.custom_networking
        if cn is None:
            return
        zones = {s.availability_zone for s in subnets}
        if any(cdk.Token.is_unresolved(z) for z in zones):
            return
        missing = sorted(zones - set(cn.subnets))
        if missing:
            raise ValueError(
                f"custom networking has no EniSubnet for zone(s) {missing}, where node groups run: "
                "add one per zone of the VPC's private subnets"
            )

    def set_multus_enis(self, nodegroup: str, count: int) -> int:
        """Declare that every node of ``nodegroup`` carries ``count`` Multus ENIs (``eksnet.multus.MultusNetworking``
        calls this): the VPC CNI cannot use them, so ``max_pods[nodegroup]`` is computed again (and an instance type
        that cannot hold 1 + ``count`` ENIs is refused). The node user data reads the value at synth. Returns it."""
        if nodegroup not in self._specs:
            raise ValueError(f"node group {nodegroup!r} is not one of this cluster's: {sorted(self._specs)}")
        spec = self._specs[nodegroup]
        for it in spec.instance_types:
            try:
                _max_pods.check_multus_fit(it, count)
            except _max_pods.UnknownInstanceType:
                continue  # an explicit max_pods covers types the table lacks (checked in _node_max_pods)
            except ValueError as exc:
                raise ValueError(f"node group {nodegroup}: {exc}") from None
        self.multus_enis[nodegroup] = count
        self.max_pods[nodegroup] = self._node_max_pods(spec)
        return self.max_pods[nodegroup]

    def _node_max_pods(self, spec: NodeGroupSpec) -> int:
        cni = self.vpc_cni
        for it in spec.instance_types:
            try:
                lim = _max_pods.limits(it)
            except _max_pods.UnknownInstanceType as exc:
                if spec.max_pods is None:
                    raise ValueError(f"node group {spec.name}: {exc}") from None
                continue
            if cni.prefix_delegation(ipv6=self.ipv6) and not lim.supports_prefix_delegation:
                mode = "IPv6 (a /80 prefix per node)" if self.ipv6 else "prefix mode (ENABLE_PREFIX_DELEGATION)"
                raise ValueError(
                    f"node group {spec.name}: {it} is not a Nitro instance type, and {mode} needs Nitro: "
                    "choose a Nitro type such as m5.large" + ("" if self.ipv6 else ", or use secondary IP mode")
                )
            if cni.pod_security_groups is not None and not lim.supports_trunk_eni:
                raise ValueError(
                    f"node group {spec.name}: {it} cannot carry security groups per pod (needs a Nitro instance type "
                    "with trunk ENI support, outside the t family): choose e.g. m5.large, or drop pod_security_groups"
                )
        if spec.max_pods is not None:
            return spec.max_pods
        try:
            return min(
                _max_pods.max_pods(
                    it,
                    ipv6=self.ipv6,
                    prefix_delegation=cni.prefix_delegation(ipv6=self.ipv6),
                    custom_networking=cni.custom_networking is not None,
                    trunk_eni=cni.pod_security_groups is not None,
                    multus_enis=self.multus_enis.get(spec.name, 0),
                )
                for it in spec.instance_types
            )
        except ValueError as exc:
            raise ValueError(f"node group {spec.name}: {exc}") from None

    def _cni_role(self, identity: CniIdentity) -> iam.Role:
        if identity is CniIdentity.IRSA:
            provider = self.oidc_provider
            issuer = provider.open_id_connect_provider_issuer
            conditions = cdk.CfnJson(
                self,
                "CniIrsaConditions",
                value={
                    f"{issuer}:sub": f"system:serviceaccount:{CNI_NAMESPACE}:{CNI_SERVICE_ACCOUNT}",
                    f"{issuer}:aud": "sts.amazonaws.com",
                },
            )
            principal: iam.IPrincipal = iam.OpenIdConnectPrincipal(provider).with_conditions(
                {"StringEquals": conditions}
            )
        else:
            principal = iam.SessionTagsPrincipal(iam.ServicePrincipal("pods.eks.amazonaws.com"))
        role = iam.Role(
            self,
            "VpcCniRole",
            assumed_by=principal,
            description=f"VPC CNI (kube-system/aws-node) of EKS cluster {self.node.path}"[:1000],
        )
        if self.ipv6:
            stack = cdk.Stack.of(self)
            eni_arn = stack.format_arn(service="ec2", region="*", account="*", resource="network-interface",
                                       resource_name="*")
            # ModifyNetworkInterfaceAttribute may also authorize the instance (attachment), groups and VPC it touches.
            modify_arns = [stack.format_arn(service="ec2", region="*", account="*", resource=t, resource_name="*")
                           for t in ("network-interface", "instance", "security-group", "vpc")]
            policy = iam.Policy(
                self,
                "VpcCniIpv6Policy",
                statements=[
                    iam.PolicyStatement(actions=[a for a in IPV6_CNI_ACTIONS if a.startswith("ec2:Describe")],
                                        resources=["*"]),
                    iam.PolicyStatement(
                        actions=["ec2:AssignIpv6Addresses", "ec2:CreateTags"], resources=[eni_arn]),
                    iam.PolicyStatement(
                        actions=["ec2:ModifyNetworkInterfaceAttribute"], resources=modify_arns),
                ],
            )
            policy.attach_to_role(role)
            nag.acknowledge_as(policy, "EksCluster", "cni-policy-ipv6",
                               findings=nag.resource_findings(policy, ["*", *modify_arns]))
        else:
            role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKS_CNI_Policy"))
            nag.acknowledge_as(role, "EksCluster", "cni-role-ipv4",
                               findings=nag.managed_policy_findings(["AmazonEKS_CNI_Policy"]))
        return role

    def _acknowledge_kubectl_provider(self) -> None:
        """Acknowledge, finding by finding, what cdk-nag reports on aws-cdk-lib's own kubectl provider."""
        provider = self.cluster.kubectl_provider
        if provider is None:
            return
        stack = cdk.Stack.of(self)
        findings = nag.managed_policy_findings([
            "service-role/AWSLambdaBasicExecutionRole",
            "service-role/AWSLambdaVPCAccessExecutionRole",
            "AmazonEC2ContainerRegistryReadOnly",
        ])
        for cond in (c for c in provider.node.find_all() if isinstance(c, cdk.CfnCondition)):
            # The handler adds ECR Public read access only in regions that have it (an Fn::If).
            ecr_public = {
                "Fn::If": [
                    stack.get_logical_id(cond),
                    {
                        "Fn::Join": [
                            "",
                            [
                                "arn:",
                                {"Ref": "AWS::Partition"},
                                ":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly",
                            ],
                        ]
                    },
                    {"Ref": "AWS::NoValue"},
                ]
            }
            findings.append("Policy::" + json.dumps(ecr_public, separators=(",", ":")))
        nag.acknowledge_as(provider, "kubectl provider", "managed-policies", findings=findings)
        handlers = [
            c
            for c in provider.node.find_all()
            if isinstance(c, lambda_.CfnFunction) and c.node.path.endswith("/Handler/Resource")
        ]
        nag.acknowledge_as(provider, "kubectl provider", "invoke-handler-versions",
                           findings=[f"Resource::<{stack.get_logical_id(h)}.Arn>:*" for h in handlers])
        nag.acknowledge_as(provider, "kubectl provider", "runtimes")

    def _add_nodegroup(self, spec: NodeGroupSpec) -> None:
        # Read at synth: set_multus_enis may change it after the node group is made.
        max_pods = cdk.Lazy.string(_MaxPodsProducer(self.max_pods, spec.name))
        shell = ec2.UserData.for_linux()
        user_data = ec2.MultipartUserData()
        user_data.add_part(
            ec2.MultipartBody.from_raw_body(
                content_type="application/node.eks.aws",
                body=(
                    "apiVersion: node.eks.aws/v1alpha1\n"
                    "kind: NodeConfig\n"
                    "spec:\n"
                    "  kubelet:\n"
                    "    config:\n"
                    f"      maxPods: {max_pods}\n"
                ),
            )
        )
        user_data.add_user_data_part(shell, ec2.MultipartBody.SHELL_SCRIPT)
        lt = ec2.LaunchTemplate(
            self,
            f"LaunchTemplate{spec.name}",
            require_imdsv2=True,
            http_tokens=ec2.LaunchTemplateHttpTokens.REQUIRED,
            http_put_response_hop_limit=2,
            # The IMDS IPv6 endpoint exists on Nitro only: a Xen type would fail to launch with it on.
            http_protocol_ipv6=True if self.dual_stack and _all_nitro(spec.instance_types) else None,
            security_group=self.node_security_group,
            user_data=user_data,
        )
        # Listing groups in the template replaces EKS's default: keep the cluster security group.
        lt.add_security_group(
            ec2.SecurityGroup.from_security_group_id(
                self, f"ClusterSecurityGroup{spec.name}", self.cluster.cluster_security_group_id
            )
        )
        ng = eks.Nodegroup(
            self,
            f"Nodegroup{spec.name}",
            cluster=self.cluster,
            nodegroup_name=spec.name,
            node_role=self.node_role,
            instance_types=[ec2.InstanceType(t) for t in spec.instance_types],
            ami_type=self.ami_types[spec.name],
            min_size=spec.min_size,
            desired_size=spec.desired_size,
            max_size=spec.max_size,
            labels=spec.labels or None,
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            launch_template_spec=eks.LaunchTemplateSpec(id=lt.launch_template_id, version=lt.latest_version_number),
        )
        ng.node.add_dependency(self.addons["vpc-cni"], self.addons["kube-proxy"])
        self.launch_templates[spec.name] = lt
        self.node_user_data[spec.name] = shell
        self.nodegroups[spec.name] = ng
