"""The VPC CNI's modes as typed configuration, rendered into the vpc-cni add-on's ConfigurationValues.

Why typed: the add-on takes a JSON document of environment variables whose names and string
values ("true", "strict") are easy to get wrong and are only checked when EKS applies them, an
hour into a deployment. Here each mode of the EKS best-practices guide is a frozen dataclass,
combinations the CNI cannot run fail at synth with a message that says what to change, and
``render`` produces the add-on's document (``env``, ``init.env``, ``enableNetworkPolicy``,
``eniConfig``: the schema of ``aws eks describe-addon-configuration --addon-name vpc-cni``).

Modes (seed 000, "Amazon VPC CNI and Configuration Modes"):

* ``SecondaryIpMode``: one VPC address per pod from the ENIs' secondary IPs (IPv4 default);
* ``PrefixMode``: /28 prefixes per ENI slot (``ENABLE_PREFIX_DELEGATION``), Nitro only; always the
  mode of IPv6 clusters (a /80 per node);
* ``PodSecurityGroups``: security groups per pod through trunk/branch ENIs (``ENABLE_POD_ENI``);
* ``CustomNetworking``: pods in other subnets than their node, one ENIConfig per zone, created
  by the add-on itself (``eniConfig.create``); IPv4 only;
* the network policy agent (``enableNetworkPolicy``) and ``ANNOTATE_POD_IP`` (Calico reads it);
* for IPv6 clusters, ``ENABLE_V4_EGRESS`` follows the VPC's ``PodIpv4Egress`` choice.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cdk import Token

from eksnet import typecheck, validate
from eksnet.vpc import PodIpv4Egress

MULTI_NIC_MIN_ADDON_VERSION = "v1.20.0-eksbuild.1"  # the first VPC CNI release with ENABLE_MULTI_NIC
#: The pod annotation by which a pod opts in to multi-NIC mode (the EKS user guide's "multi-homed pods", and the
#: VPC CNI's ``multiNICPodAnnotation``); ``MULTI_NIC_ATTACHMENT`` is the only value the VPC CNI defines.
MULTI_NIC_ANNOTATION = "k8s.amazonaws.com/nicConfig"
MULTI_NIC_ATTACHMENT = "multi-nic-attachment"

ZONE_LABEL = "topology.kubernetes.io/zone"
CNI_SERVICE_ACCOUNT = "aws-node"
CNI_NAMESPACE = "kube-system"
ANNOTATE_POD_IP_ROLE = "eksnet-aws-node-annotate-pod-ip"


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _check_target(owner: str, name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}.{name} must be a whole number >= 0 (or None to keep the CNI default), got {value!r}")


@dataclass(frozen=True)
class SecondaryIpMode:
    """Secondary IP mode: each pod takes one secondary IPv4 address of a node ENI.

    ``warm_eni_target`` (CNI default 1) keeps whole ENIs in reserve; ``warm_ip_target`` and
    ``minimum_ip_target`` size the reserve in addresses instead, which the guide recommends for
    clusters short of subnet space. None leaves the CNI's default.
    """

    warm_eni_target: int | None = None
    warm_ip_target: int | None = None
    minimum_ip_target: int | None = None

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        for name in ("warm_eni_target", "warm_ip_target", "minimum_ip_target"):
            _check_target("SecondaryIpMode", name, getattr(self, name))

    def env(self) -> dict[str, str]:
        found = {
            "WARM_ENI_TARGET": self.warm_eni_target,
            "WARM_IP_TARGET": self.warm_ip_target,
            "MINIMUM_IP_TARGET": self.minimum_ip_target,
        }
        return {k: str(v) for k, v in found.items() if v is not None}


@dataclass(frozen=True)
class PrefixMode:
    """Prefix mode (prefix delegation): each ENI slot holds a /28 (16 addresses) instead of one address.

    ``warm_prefix_target`` (CNI default 1) keeps whole prefixes in reserve; ``warm_ip_target`` /
    ``minimum_ip_target`` are finer-grained. Needs Nitro instance types (checked per node group).
    """

    warm_prefix_target: int | None = None
    warm_ip_target: int | None = None
    minimum_ip_target: int | None = None

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        for name in ("warm_prefix_target", "warm_ip_target", "minimum_ip_target"):
            _check_target("PrefixMode", name, getattr(self, name))
        if self.warm_prefix_target == 0 and not self.warm_ip_target and not self.minimum_ip_target:
            raise ValueError(
                "PrefixMode(warm_prefix_target=0) without warm_ip_target or minimum_ip_target keeps no address in "
                "reserve and every new pod waits for EC2: set warm_ip_target, or keep warm_prefix_target's default"
            )

    def env(self) -> dict[str, str]:
        found = {
            "WARM_PREFIX_TARGET": self.warm_prefix_target,
            "WARM_IP_TARGET": self.warm_ip_target,
            "MINIMUM_IP_TARGET": self.minimum_ip_target,
        }
        return {"ENABLE_PREFIX_DELEGATION": "true", **{k: str(v) for k, v in found.items() if v is not None}}


class SgEnforcingMode(enum.Enum):
    """``POD_SECURITY_GROUP_ENFORCING_MODE``: strict (only the pod's groups apply; the default) or standard."""

    STRICT = "strict"
    STANDARD = "standard"


@dataclass(frozen=True)
class PodSecurityGroups:
    """Security groups for pods: branch ENIs on a trunk ENI (``ENABLE_POD_ENI``), Nitro types outside the t family.

    ``disable_tcp_early_demux`` sets the init container's ``DISABLE_TCP_EARLY_DEMUX`` so kubelet's
    TCP liveness/readiness probes reach pods with their own groups (the guide's advice).
    The cluster role gets ``AmazonEKSVPCResourceController``, which creates the trunk and branch ENIs.
    """

    enforcing_mode: SgEnforcingMode = SgEnforcingMode.STRICT
    disable_tcp_early_demux: bool = True

    def __post_init__(self) -> None:
        typecheck.check_fields(self)


@dataclass(frozen=True)
class EniSubnet:
    """Where custom networking puts the pods of one zone: a subnet and the security groups of pod ENIs."""

    subnet_id: str
    security_group_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        object.__setattr__(self, "security_group_ids", tuple(self.security_group_ids))
        if not self.subnet_id:
            raise ValueError("EniSubnet.subnet_id is empty: give the pod subnet of this zone")
        if not self.security_group_ids:
            raise ValueError(f"EniSubnet({self.subnet_id}) needs at least one security group for the pod ENIs")
        if len(self.security_group_ids) > 5:
            raise ValueError(f"EniSubnet({self.subnet_id}): an ENIConfig takes at most 5 security groups")


@dataclass(frozen=True)
class CustomNetworking:
    """Custom networking: pods use ENIs in ``subnets`` (zone name -> EniSubnet), not the node's subnet.

    The add-on creates one ``ENIConfig`` per zone, named after the zone, and nodes pick theirs
    through the ``topology.kubernetes.io/zone`` label (``ENI_CONFIG_LABEL_DEF``). IPv4 clusters only.
    """

    subnets: Mapping[str, EniSubnet]

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        object.__setattr__(self, "subnets", dict(self.subnets))
        if not self.subnets:
            raise ValueError("CustomNetworking needs one EniSubnet per availability zone of the node groups")
        for zone in self.subnets:
            if not Token.is_unresolved(zone):
                validate.availability_zone(zone, "CustomNetworking.subnets: each key")


@dataclass(frozen=True)
class VpcCniConfig:
    """The VPC CNI add-on's configuration: one allocation mode plus optional features.

    ``ip_allocation`` None means the IP family's default: secondary IP mode for IPv4, prefix mode
    for IPv6 (the only mode IPv6 has). ``enable_network_policy`` turns on the CNI's network policy
    agent; ``annotate_pod_ip`` makes the CNI annotate each pod with its IP (Calico's kube-controllers
    read it to react faster). ``extra_env`` passes further CNI variables the types here do not cover;
    it may not override a variable a typed field sets. ``multi_nic`` turns on the VPC CNI's multi-NIC mode
    (``ENABLE_MULTI_NIC``, VPC CNI 1.20 or later): the CNI manages the ENIs of every network card of the
    instance, and pods that opt in by annotation (``multi_nic_pod_annotation()``, ``with_multi_nic(manifest)``)
    get an interface on each card; it cannot be combined with ``pod_security_groups``. ``EksCluster`` then requires
    instance types with several network cards and pins the add-on to at least ``MULTI_NIC_MIN_ADDON_VERSION``.
    """

    ip_allocation: SecondaryIpMode | PrefixMode | None = None
    pod_security_groups: PodSecurityGroups | None = None
    custom_networking: CustomNetworking | None = None
    enable_network_policy: bool = False
    annotate_pod_ip: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)
    multi_nic: bool = False

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        object.__setattr__(self, "extra_env", dict(self.extra_env))
        for k, v in self.extra_env.items():
            if not validate.is_env_var_name(k) or not isinstance(v, str):
                raise ValueError(f"VpcCniConfig.extra_env: {k!r}={v!r} must be an upper-case name with a string value")

    def prefix_delegation(self, *, ipv6: bool) -> bool:
        """Whether pods get prefixes: always on IPv6, else when PrefixMode is chosen."""
        return ipv6 or isinstance(self.ip_allocation, PrefixMode)

    def validate(self, *, ipv6: bool) -> None:
        """Refuse combinations the VPC CNI cannot run on this IP family."""
        if ipv6 and isinstance(self.ip_allocation, SecondaryIpMode):
            raise ValueError(
                "IPv6 clusters always use prefix mode (a /80 per node): drop ip_allocation or use PrefixMode()"
            )
        if self.multi_nic and self.pod_security_groups is not None:
            raise ValueError(
                "multi_nic cannot be combined with pod_security_groups: the VPC CNI's multi-NIC mode does not work "
                "with security groups for pods (EKS user guide); drop one of the two"
            )
        if ipv6 and self.custom_networking is not None:
            raise ValueError(
                "custom networking is not supported on IPv6 clusters (pods already get their own /80 per node): "
                "drop custom_networking or use an IPv4 cluster"
            )

    def render(self, *, ipv6: bool, pod_ipv4_egress: PodIpv4Egress, region: str) -> dict[str, Any]:
        """The add-on's ConfigurationValues document for a cluster of this IP family."""
        self.validate(ipv6=ipv6)
        env: dict[str, str] = {}
        allocation = self.ip_allocation or (PrefixMode() if ipv6 else SecondaryIpMode())
        env.update(allocation.env())
        if ipv6:
            env["ENABLE_IPv6"] = "true"
            env["ENABLE_IPv4"] = "false"
            env["ENABLE_PREFIX_DELEGATION"] = "true"
            env["ENABLE_V4_EGRESS"] = _flag(pod_ipv4_egress is PodIpv4Egress.NODE_SNAT)
        doc: dict[str, Any] = {}
        if self.pod_security_groups is not None:
            env["ENABLE_POD_ENI"] = "true"
            env["POD_SECURITY_GROUP_ENFORCING_MODE"] = self.pod_security_groups.enforcing_mode.value
            if self.pod_security_groups.disable_tcp_early_demux:
                doc["init"] = {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}}
        if self.custom_networking is not None:
            env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] = "true"
            env["ENI_CONFIG_LABEL_DEF"] = ZONE_LABEL
            doc["eniConfig"] = {
                "create": True,
                "region": region,
                "subnets": {
                    zone: {"id": s.subnet_id, "securityGroups": list(s.security_group_ids)}
                    for zone, s in self.custom_networking.subnets.items()
                },
            }
        if self.annotate_pod_ip:
            env["ANNOTATE_POD_IP"] = "true"
        if self.multi_nic:
            env["ENABLE_MULTI_NIC"] = "true"
        clash = sorted(set(self.extra_env) & set(env))
        if clash:
            raise ValueError(f"VpcCniConfig.extra_env sets {clash}, which typed fields already set: use those fields")
        env.update(self.extra_env)
        doc["env"] = dict(sorted(env.items()))
        doc["enableNetworkPolicy"] = _flag(self.enable_network_policy)
        return doc


def security_group_policy(
    name: str,
    namespace: str,
    *,
    security_group_ids: tuple[str, ...] | list[str],
    pod_labels: Mapping[str, str] | None = None,
    service_account_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ``SecurityGroupPolicy`` (vpcresources.k8s.aws/v1beta1): these security groups on matching pods' ENIs.

    Select pods by their labels, their service account's labels, or both (ANDed by the controller).
    The VPC resource controller applies it only where security groups for pods are on
    (``VpcCniConfig.pod_security_groups``); ``EksCluster.add_security_group_policy`` checks that.
    """
    validate.dns1123_subdomain(name, "SecurityGroupPolicy name")
    validate.dns1123_label(namespace, "SecurityGroupPolicy namespace")
    groups = list(security_group_ids)
    if not 1 <= len(groups) <= 16:
        raise ValueError(f"SecurityGroupPolicy {name}: give 1 to 16 security group ids, got {len(groups)}")
    if pod_labels is None and service_account_labels is None:
        raise ValueError(
            f"SecurityGroupPolicy {name}: give pod_labels and/or service_account_labels; without a selector "
            "the policy matches no pod"
        )
    spec: dict[str, Any] = {}
    if pod_labels is not None:
        spec["podSelector"] = {"matchLabels": validate.labels(pod_labels, "pod_labels")}
    if service_account_labels is not None:
        spec["serviceAccountSelector"] = {"matchLabels": validate.labels(service_account_labels,
                                                                         "service_account_labels")}
    spec["securityGroups"] = {"groupIds": groups}
    return {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def multi_nic_pod_annotation() -> dict[str, str]:
    """The annotation a pod carries to get an interface on every network card of its node (multi-NIC mode).

    Without it a pod keeps one interface even where ``VpcCniConfig(multi_nic=True)`` is on; with it, on a node
    of a multi-card instance type, the VPC CNI gives it one VPC address per card with an ENA adapter (a pod
    cannot pick cards). Put it in the pod's ``metadata.annotations`` (a workload's pod template), or use
    ``with_multi_nic`` on a manifest.
    """
    return {MULTI_NIC_ANNOTATION: MULTI_NIC_ATTACHMENT}


# Where each workload kind keeps the metadata of the pods it makes.
_POD_METADATA_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("metadata",),
    **{kind: ("spec", "template", "metadata")
       for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController")},
    "CronJob": ("spec", "jobTemplate", "spec", "template", "metadata"),
}


def with_multi_nic(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a Pod or workload manifest (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob,
    ReplicationController) whose pods carry ``multi_nic_pod_annotation()``; other annotations are kept.

    Refuses other kinds, and a pod template that already sets the annotation to another value (the VPC CNI
    would ignore it and give the pod one interface).
    """
    typecheck.check_call("with_multi_nic", with_multi_nic, locals())
    kind = manifest.get("kind")
    if kind not in _POD_METADATA_PATHS:
        raise ValueError(f"with_multi_nic: {kind!r} makes no pods; give a Pod or one of "
                         f"{', '.join(k for k in _POD_METADATA_PATHS if k != 'Pod')}")
    out = copy.deepcopy(dict(manifest))
    node = out
    for key in _POD_METADATA_PATHS[kind]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            raise ValueError(f"with_multi_nic: {kind} {'.'.join(_POD_METADATA_PATHS[kind])} is not an object")
        node = child
    annotations = node.setdefault("annotations", {})
    present = annotations.get(MULTI_NIC_ANNOTATION)
    if present not in (None, MULTI_NIC_ATTACHMENT):
        raise ValueError(f"with_multi_nic: the pods already carry {MULTI_NIC_ANNOTATION}={present!r}; the VPC CNI "
                         f"knows only {MULTI_NIC_ATTACHMENT!r}")
    annotations.update(multi_nic_pod_annotation())
    return out


def annotate_pod_ip_rbac() -> list[dict[str, Any]]:
    """The ``patch pods`` permission ``ANNOTATE_POD_IP`` needs, for the VPC CNI's service account.

    AWS's documentation adds the rule to the ``aws-node`` ClusterRole; that role belongs to the
    vpc-cni add-on (an update may rewrite it), so the rule gets its own ClusterRole and binding.
    ``EksCluster`` applies it whenever ``annotate_pod_ip`` is on, whoever asked for the annotation.
    """
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": ANNOTATE_POD_IP_ROLE, "labels": {"app.kubernetes.io/managed-by": "eksnet"}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": ANNOTATE_POD_IP_ROLE, "labels": {"app.kubernetes.io/managed-by": "eksnet"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ANNOTATE_POD_IP_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": CNI_SERVICE_ACCOUNT, "namespace": CNI_NAMESPACE}],
    }
    return [role, binding]
