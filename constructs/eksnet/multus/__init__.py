"""Multus on EKS (MISSION.md section 4): one package, one module per concept.

* ``nad``: ``NetworkAttachmentDefinition`` and its typed parts (interfaces, IPAM, routes, CNI versions).
* ``annotation``: the pod annotation ``k8s.v1.cni.cncf.io/networks``.
* ``install``: ``MultusInstall``, the thick-plugin DaemonSet, from the manifests shipped in ``data/``.
* ``eni``: ``MultusEniAttacher``, the lifecycle hooks and Lambda that attach Multus ENIs to nodes.
* ``networking``: ``MultusNetworking``, all of the above from one list of ``MultusInterface``.
* ``node``: the node side: Multus ENIs renamed and configured, the node runtime shipped and started.
* ``perip``: per-IP mode: ranges reserved per zone, the node role's bounded EC2 right, the IMDS hop closed.

Every public name is importable from ``eksnet.multus`` directly.
"""

from eksnet.multus.annotation import NetworkSelection, network_selection_annotation
from eksnet.multus.eni import (
    LAUNCH_HOOK_NAME,
    TERMINATE_HOOK_NAME,
    MultusEniAttacher,
    NodegroupRef,
)
from eksnet.multus.install import (
    MULTUS_VERSION,
    NAD_CRD,
    MultusInstall,
    MultusLogLevel,
    MultusManifests,
    multus_image,
    multus_manifests,
)
from eksnet.multus.nad import (
    EKSNET_IPAM_TYPE,
    EKSNET_IPVLAN_TYPE,
    EKSNET_MACVLAN_TYPE,
    NAD_API_VERSION,
    NAD_KIND,
    NETWORKS_ANNOTATION,
    CniVersion,
    EksnetIpam,
    HostDevice,
    HostLocalIpam,
    Interface,
    Ipam,
    IpRange,
    Ipvlan,
    IpvlanMode,
    Macvlan,
    MacvlanMode,
    MultusConfigError,
    NetworkAttachmentDefinition,
    Route,
    StaticAddress,
    StaticIpam,
    check_ifname,
    check_k8s_name,
    check_namespace,
)
from eksnet.multus.networking import MultusInterface, MultusNetworking, PerIpSettings
from eksnet.multus.node import (
    AddressMode,
    MultusInterfaces,
    MultusNodeBootstrap,
    NodeRuntimeAsset,
    NodeRuntimeInstall,
    RpFilter,
)
from eksnet.multus.perip import PerIpMultus, PerIpRanges

__all__ = [
    "AddressMode", "MultusInterface", "MultusNetworking", "PerIpSettings",
    "CniVersion", "EKSNET_IPAM_TYPE", "EKSNET_IPVLAN_TYPE", "EKSNET_MACVLAN_TYPE", "EksnetIpam", "HostDevice",
    "HostLocalIpam", "Interface", "Ipam", "IpRange", "Ipvlan", "IpvlanMode", "LAUNCH_HOOK_NAME", "MULTUS_VERSION",
    "Macvlan", "MacvlanMode", "MultusConfigError", "MultusEniAttacher", "MultusInstall", "MultusInterfaces",
    "MultusLogLevel", "MultusManifests", "MultusNodeBootstrap", "NAD_API_VERSION", "NAD_CRD", "NAD_KIND",
    "NETWORKS_ANNOTATION", "NetworkAttachmentDefinition", "NetworkSelection", "NodeRuntimeAsset",
    "NodeRuntimeInstall", "NodegroupRef", "PerIpMultus", "PerIpRanges", "Route", "RpFilter", "StaticAddress", "StaticIpam", "TERMINATE_HOOK_NAME",
    "check_ifname", "check_k8s_name", "check_namespace", "multus_image", "multus_manifests",
    "network_selection_annotation",
]
