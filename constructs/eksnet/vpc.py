"""Dual-stack and IPv6 VPCs for EKS (MISSION.md section 1). Being built: see issue 3."""

from __future__ import annotations

import enum


class PodIpv4Egress(enum.Enum):
    """How IPv6 pods reach IPv4 destinations: one choice, read by both the VPC and the cluster.

    NODE_SNAT: the VPC CNI gives each pod a host-local IPv4 and SNATs it to the node
    (``ENABLE_V4_EGRESS=true``, the EKS default); DNS64 stays off on node subnets.
    NAT64: pods are IPv6 only (``ENABLE_V4_EGRESS=false``); subnets turn DNS64 on and
    route ``64:ff9b::/96`` to their zone's NAT gateway.
    """

    NODE_SNAT = "node-snat"
    NAT64 = "nat64"
