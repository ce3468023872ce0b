"""The Multus install: the thick-plugin DaemonSet (the AWS build, pinned) with the VPC CNI's
``10-aws.conflist`` as the default delegate, applied with the cluster's ``KubernetesManifest``."""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import aws_cdk as cdk
import yaml
from aws_cdk import aws_eks_v2 as eks

from constructs import Construct
from eksnet import typecheck, validate
from eksnet.multus.nad import (
    MultusConfigError,
    MultusTypeError,
    NetworkAttachmentDefinition,
    _check_fields,
    check_namespace,
)

# --------------------------------------------------------------------------------------------
# The Multus install (thick plugin, AWS build)
# --------------------------------------------------------------------------------------------

#: The pinned Multus release: the AWS build of multus-cni v4.1.4, thick plugin (daemon + shim).
MULTUS_VERSION = "v4.1.4-eksbuild.3"

# EKS add-on images live in a per-region ECR registry; most regions use account 602401143452.
_EKS_REGISTRY_ACCOUNTS = {
    "af-south-1": "877085696533", "ap-east-1": "800184023465", "ap-south-2": "900889452093",
    "ap-southeast-3": "296578399912", "ap-southeast-4": "491585149902", "ca-west-1": "761377655185",
    "eu-south-1": "590381155156", "eu-south-2": "455263428931", "il-central-1": "066635153087",
    "me-central-1": "759879836304", "me-south-1": "558608220178",
    "us-gov-east-1": "151742754352", "us-gov-west-1": "013241004608",
    "cn-north-1": "918309763551", "cn-northwest-1": "961992271922",
}


def multus_image(region: str, version: str = MULTUS_VERSION) -> str:
    """The thick-plugin image of ``version`` in ``region``'s EKS registry."""
    typecheck.check_call("multus_image", multus_image, locals(), error=MultusTypeError)
    account = _EKS_REGISTRY_ACCOUNTS.get(region, "602401143452")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/eks/multus-cni:{version}_thick"


_DATA = "data"
_CRD_FILE = "nad-crd.yaml"
_DAEMONSET_FILE = "multus-daemonset-thick.yaml"


def _load_yaml(name: str) -> list[dict[str, Any]]:
    """The documents of a manifest shipped in ``eksnet/multus/data`` (package data: found in an installed wheel)."""
    text = resources.files(__package__).joinpath(_DATA).joinpath(name).read_text(encoding="utf-8")
    # libyaml's parser when PyYAML has it (~10x faster on the DaemonSet manifest), with the same safe constructor.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc]


#: The NAD CRD (``data/nad-crd.yaml``, vendored verbatim from multus-cni).
NAD_CRD: dict[str, Any] = _load_yaml(_CRD_FILE)[0]


class MultusLogLevel(enum.Enum):
    PANIC = "panic"
    ERROR = "error"
    VERBOSE = "verbose"
    DEBUG = "debug"


@dataclass(frozen=True)
class MultusManifests:
    """The objects of the Multus install, as plain dicts (see ``multus_manifests``)."""

    crd: dict[str, Any]
    service_account: dict[str, Any]
    cluster_role: dict[str, Any]
    cluster_role_binding: dict[str, Any]
    config_map: dict[str, Any]
    daemon_set: dict[str, Any]

    def __post_init__(self) -> None:
        _check_fields(self)

    def rbac_and_config(self) -> list[dict[str, Any]]:
        return [self.service_account, self.cluster_role, self.cluster_role_binding, self.config_map]

    def all(self) -> list[dict[str, Any]]:
        return [self.crd, *self.rbac_and_config(), self.daemon_set]


def multus_manifests(
    *, image: str, default_network_conf: str = "10-aws.conflist", log_level: MultusLogLevel = MultusLogLevel.ERROR,
    namespace: str = "kube-system",
) -> MultusManifests:
    """The Multus thick-plugin install as in the AWS build's ``multus-daemonset-thick.yml``
    (``data/multus-daemonset-thick.yaml``), with ``namespace``, ``image``, the log level and the default
    network set.

    The daemon generates ``00-multus.conf`` from ``default_network_conf`` (the VPC CNI's conflist), so
    the VPC CNI stays every pod's ``eth0`` and Multus adds what the annotation selects.
    """
    typecheck.check_call("multus_manifests", multus_manifests, locals(), error=MultusTypeError)
    check_namespace(namespace)
    if not validate.is_cni_conf_file_name(default_network_conf):
        raise MultusConfigError(
            f"default_network_conf {default_network_conf!r} must be a CNI config file name such as 10-aws.conflist"
        )
    by_kind = {doc["kind"]: doc for doc in _load_yaml(_DAEMONSET_FILE)}
    sa, role, binding = by_kind["ServiceAccount"], by_kind["ClusterRole"], by_kind["ClusterRoleBinding"]
    config_map, daemon_set = by_kind["ConfigMap"], by_kind["DaemonSet"]
    for namespaced in (sa, config_map, daemon_set):
        namespaced["metadata"]["namespace"] = namespace
    for subject in binding["subjects"]:
        subject["namespace"] = namespace
    daemon_config = json.loads(config_map["data"]["daemon-config.json"])
    daemon_config["logLevel"] = log_level.value
    daemon_config["multusMasterCNI"] = default_network_conf
    config_map["data"]["daemon-config.json"] = json.dumps(daemon_config, indent=2)
    pod_spec = daemon_set["spec"]["template"]["spec"]
    for container in (*pod_spec["containers"], *pod_spec["initContainers"]):
        container["image"] = image
    return MultusManifests(crd=copy.deepcopy(NAD_CRD), service_account=sa, cluster_role=role,
                           cluster_role_binding=binding, config_map=config_map, daemon_set=daemon_set)


class MultusInstall(Construct):
    """Multus on ``cluster``: the NAD CRD, RBAC, daemon config and the thick-plugin DaemonSet.

    Applied as two ``KubernetesManifest`` resources so that CloudFormation orders them: the CRD
    first (NADs added with ``add_network`` depend on it), then the rest. ``image`` defaults to the
    pinned AWS build in the stack's region (``multus_image``).

    Attributes: ``manifests`` (the dicts), ``crd_manifest`` and ``daemon_manifest`` (the
    ``KubernetesManifest`` resources), ``networks`` (NAD name -> its ``KubernetesManifest``).
    """

    def __init__(
        self, scope: Construct, id: str, *, cluster: eks.ICluster, image: str | None = None,
        default_network_conf: str = "10-aws.conflist", log_level: MultusLogLevel = MultusLogLevel.ERROR,
    ) -> None:
        typecheck.check_call("MultusInstall", MultusInstall.__init__, locals(), error=MultusTypeError)
        super().__init__(scope, id)
        region = cdk.Stack.of(self).region
        if image is None and cdk.Token.is_unresolved(region):
            raise MultusConfigError("MultusInstall needs a stack with an explicit region, or pass image=...")
        self.cluster = cluster
        self.image = image or multus_image(region)
        self.manifests = multus_manifests(image=self.image, default_network_conf=default_network_conf,
                                          log_level=log_level)
        self.crd_manifest = eks.KubernetesManifest(self, "Crd", cluster=cluster, manifest=[self.manifests.crd],
                                                   overwrite=True)
        self.daemon_manifest = eks.KubernetesManifest(
            self, "Daemon", cluster=cluster, overwrite=True,
            manifest=[*self.manifests.rbac_and_config(), self.manifests.daemon_set],
        )
        self.daemon_manifest.node.add_dependency(self.crd_manifest)
        self.networks: dict[str, eks.KubernetesManifest] = {}

    def add_network(self, nad: NetworkAttachmentDefinition) -> eks.KubernetesManifest:
        """Apply ``nad`` after the CRD exists. The logical id follows the NAD's namespace and name."""
        typecheck.check_call("MultusInstall.add_network", MultusInstall.add_network, locals(), error=MultusTypeError)
        key = f"{nad.namespace or 'default'}/{nad.name}"
        if key in self.networks:
            raise MultusConfigError(f"NetworkAttachmentDefinition {key} is added twice")
        resource = eks.KubernetesManifest(self, f"Nad-{nad.namespace or 'default'}-{nad.name}",
                                          cluster=self.cluster, manifest=[nad.to_manifest()], overwrite=True)
        resource.node.add_dependency(self.crd_manifest)
        self.networks[key] = resource
        return resource

    def add_manifest(self, id: str, *manifests: dict[str, Any], after: Sequence[Construct] = ()) -> eks.KubernetesManifest:
        """Apply further objects (e.g. a pod using the networks) after the Multus daemon and ``after``."""
        resource = eks.KubernetesManifest(self, id, cluster=self.cluster, manifest=list(manifests), overwrite=True)
        resource.node.add_dependency(self.daemon_manifest, *after)
        return resource
