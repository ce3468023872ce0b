"""Network policy engines for EKS: Calico on the VPC CNI (Tigera operator), or the VPC CNI's own agent.

Seed 003, "Installing and using Calico network policies": the VPC CNI keeps doing pod
networking and Calico only enforces policy. The seed applies the operator manifest, then an
``Installation`` with ``cni.type: AmazonVPC``, then waits for ``kubectl get tigerastatus/calico``.
As code:

* the operator from its Helm chart at a pinned version (``CALICO_VERSION``), through
  ``aws_eks_v2.HelmChart`` (the chart installs the operator.tigera.io CRDs);
* the ``Installation`` as our own manifest (``kubernetesProvider: EKS``, ``cni.type: AmazonVPC``),
  so it is in the template, validated against the vendored CRD schema in the tests, and not
  hidden in chart values (the chart's own Installation is turned off);
* the VPC CNI set to annotate pods with their IPs (``ANNOTATE_POD_IP``, which Calico needs to
  see a pod's address before the kubelet reports it) plus the RBAC that annotation needs
  (``patch`` on pods for ``kube-system/aws-node``, added as a separate ClusterRole so the
  add-on's own ClusterRole stays EKS-managed);
* a readiness wait: a ``KubernetesObjectValue`` that reads ``Installation/default``
  ``.status.calicoVersion``. The operator writes that field only once its status manager
  reports every component available, the same condition ``tigerastatus/calico`` shows as
  ``AVAILABLE True`` (tigera/operator, pkg/controller/installation/core_controller.go).
  Deploying fails if Calico is not ready within ``ready_timeout``.

The other engine, the VPC CNI's network policy agent, is a flag of the cluster's VPC CNI
(``enableNetworkPolicy``). ``vpc_cni_for(engine)`` gives the VPC CNI configuration each engine
needs; the two are mutually exclusive and ``Calico`` refuses a cluster with the agent on.

Example::

    cluster = EksCluster(stack, "Cluster", vpc=vpc, cluster_name="myipv4cluster",
                         vpc_cni=vpc_cni_for(PolicyEngine.CALICO))
    Calico(stack, "Calico", cluster=cluster)
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_eks_v2 as eks

from constructs import Construct
from eksnet import typecheck
from eksnet.cluster import EksCluster
from eksnet.vpc import PodIpv4Egress
from eksnet.vpc_cni import VpcCniConfig, annotate_pod_ip_rbac  # noqa: F401  (re-exported: the RBAC Calico relies on)

# Calico release and its tigera-operator chart (operator v1.38.6); pinned, bumped deliberately.
CALICO_VERSION = "v3.30.3"
CHART_REPOSITORY = "https://docs.tigera.io/calico/charts"
CHART_NAME = "tigera-operator"
OPERATOR_NAMESPACE = "tigera-operator"

INSTALLATION_API_VERSION = "operator.tigera.io/v1"
WARNING_ID = "eksnet:calico-ipv6-v4-egress"


class PolicyEngine(enum.Enum):
    """Who enforces NetworkPolicy: Calico (Tigera operator) or the VPC CNI's network policy agent."""

    CALICO = "calico"
    VPC_CNI = "vpc-cni"


def vpc_cni_for(engine: PolicyEngine, base: VpcCniConfig | None = None) -> VpcCniConfig:
    """``base`` (default ``VpcCniConfig()``) with what ``engine`` needs from the VPC CNI.

    CALICO: ``annotate_pod_ip`` on, the agent off. VPC_CNI: the agent (``enableNetworkPolicy``) on.
    A ``base`` that already turns on the other engine's switch is refused rather than silently changed.
    """
    typecheck.check_call("vpc_cni_for", vpc_cni_for, locals())
    base = base or VpcCniConfig()
    if engine is PolicyEngine.CALICO:
        if base.enable_network_policy:
            raise ValueError(_EXCLUSIVE)
        return dataclasses.replace(base, annotate_pod_ip=True)
    return dataclasses.replace(base, enable_network_policy=True)


_EXCLUSIVE = (
    "Calico and the VPC CNI network policy agent cannot both enforce NetworkPolicy: choose one. For Calico, build "
    "the cluster with EksCluster(vpc_cni=VpcCniConfig(enable_network_policy=False, annotate_pod_ip=True)) "
    "(eksnet.calico.vpc_cni_for(PolicyEngine.CALICO) gives that); for the agent, do not add Calico"
)


def installation(*, registry: str | None = None) -> dict[str, Any]:
    """The operator's ``Installation``: Calico for policy only, pods networked by the VPC CNI."""
    spec: dict[str, Any] = {"kubernetesProvider": "EKS", "cni": {"type": "AmazonVPC"}}
    if registry is not None:
        if not registry.endswith("/"):
            raise ValueError(f"registry must end with '/' (the operator prepends it to image paths), got {registry!r}")
        spec["registry"] = registry
    return {"apiVersion": INSTALLATION_API_VERSION, "kind": "Installation", "metadata": {"name": "default"},
            "spec": spec}


def operator_values(*, api_server: bool = False, whisker: bool = False) -> dict[str, Any]:
    """Helm values of the tigera-operator chart: the operator and its CRDs, no chart-made Installation.

    ``api_server`` adds Calico's API server (the projectcalico.org/v3 API for calicoctl-free
    ``kubectl`` use of Calico policies); ``whisker`` adds the flow-log UI and Goldmane, its
    aggregator. Both are off by default: the seed needs neither to enforce NetworkPolicy.
    """
    return {
        "installation": {"enabled": False},
        "apiServer": {"enabled": api_server},
        "goldmane": {"enabled": whisker},
        "whisker": {"enabled": whisker},
    }


class Calico(Construct):
    """Calico network policy on an ``EksCluster`` whose VPC CNI keeps networking pods.

    Props (keyword-only; defaults in brackets):

    * ``cluster``: the ``EksCluster``. Its ``vpc_cni`` must have ``annotate_pod_ip=True`` and
      ``enable_network_policy=False`` (see ``vpc_cni_for``); the add-on configuration is fixed
      when the cluster is built, so a wrong one is an error that names the prop to set.
    * ``version`` [``CALICO_VERSION``]: the tigera-operator chart version.
    * ``api_server`` [False], ``whisker`` [False]: optional Calico components (``operator_values``).
    * ``registry`` [None: the operator's default registries]: an image registry mirror ending in '/'.
    * ``ready_timeout`` [10 minutes]: how long deployment waits for Calico to be available
      (at most 14 minutes, under the kubectl Lambda's 15).

    Attributes: ``chart`` (``HelmChart``), ``installation`` (the manifest dict),
    ``installation_manifest`` (``KubernetesManifest``), ``rbac`` (the cluster's ANNOTATE_POD_IP RBAC), ``ready``
    (``KubernetesObjectValue``; ``ready.value`` is the running Calico version). Make workloads
    and policies depend on ``ready`` so they are applied once Calico enforces them.

    IPv6 clusters whose pods reach IPv4 through node SNAT (``ENABLE_V4_EGRESS=true``) get a synth
    warning: that IPv4 traffic leaves through a second, host-local pod interface that Calico does
    not police, so policy does not apply to it.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: EksCluster,
        version: str = CALICO_VERSION,
        api_server: bool = False,
        whisker: bool = False,
        registry: str | None = None,
        ready_timeout: cdk.Duration | None = None,
    ) -> None:
        # Validation first: a refused Calico leaves nothing behind in the tree.
        typecheck.check_call("Calico", Calico.__init__, locals())
        cni = cluster.vpc_cni
        if cni.enable_network_policy:
            raise ValueError(_EXCLUSIVE)
        if not cni.annotate_pod_ip:
            raise ValueError(
                "Calico on the VPC CNI needs the CNI to annotate pods with their IPs, and the cluster's add-on "
                "configuration is fixed when it is built: create the EksCluster with "
                "vpc_cni=VpcCniConfig(annotate_pod_ip=True, ...) (or eksnet.calico.vpc_cni_for(PolicyEngine.CALICO))"
            )
        if not version.startswith("v") or version.count(".") != 2:
            raise ValueError(f"version must be a tigera-operator chart version such as {CALICO_VERSION}, got {version!r}")
        timeout = ready_timeout or cdk.Duration.minutes(10)
        if not cdk.Token.is_unresolved(timeout.to_seconds()) and not 60 <= timeout.to_seconds() <= 14 * 60:
            raise ValueError("ready_timeout must be between 1 and 14 minutes (the kubectl handler Lambda stops at 15)")
        manifest = installation(registry=registry)
        super().__init__(scope, id)
        self.installation = manifest

        if cluster.ipv6 and cluster.pod_ipv4_egress is PodIpv4Egress.NODE_SNAT:
            cdk.Annotations.of(self).add_warning_v2(
                WARNING_ID,
                "Calico cannot enforce policy on IPv4 egress of IPv6 pods: with PodIpv4Egress.NODE_SNAT the VPC CNI "
                "(ENABLE_V4_EGRESS=true) sends it through a second, host-local pod interface that Calico does not "
                "police. Use PodIpv4Egress.NAT64 on the VPC and cluster if that traffic must be policed.",
            )

        k8s = cluster.cluster
        # The cluster applies the RBAC with ANNOTATE_POD_IP (checked above); the readiness wait needs it too.
        self.rbac = cluster.annotate_pod_ip_rbac
        self.chart = eks.HelmChart(
            self, "Operator",
            cluster=k8s,
            chart=CHART_NAME,
            repository=CHART_REPOSITORY,
            version=version,
            release="calico",
            namespace=OPERATOR_NAMESPACE,
            create_namespace=True,
            values=operator_values(api_server=api_server, whisker=whisker),
        )
        # The operator inspects the aws-node DaemonSet: let the vpc-cni add-on exist first.
        vpc_cni_addon = cluster.addons.get("vpc-cni")
        if vpc_cni_addon is not None:
            self.chart.node.add_dependency(vpc_cni_addon)
        self.installation_manifest = eks.KubernetesManifest(
            self, "Installation", cluster=k8s, manifest=[self.installation])
        self.installation_manifest.node.add_dependency(self.chart)  # the chart installs the CRD
        self.ready = eks.KubernetesObjectValue(
            self, "Ready",
            cluster=k8s,
            object_type="installations.operator.tigera.io",
            object_name="default",
            json_path=".status.calicoVersion",
            timeout=timeout,
        )
        self.ready.node.add_dependency(self.installation_manifest, self.rbac)
        # calico-node needs nodes to run on: start the clock once they exist.
        for ng in cluster.nodegroups.values():
            self.ready.node.add_dependency(ng)
