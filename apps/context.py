"""The apps' settings, read once from CDK context: every ``eksnet:*`` key, its default, and the walkthrough's names.

The library (``eksnet``) takes plain arguments and reads no context; this module is where the apps turn
``-c eksnet:...=...`` (strings on the command line, any JSON in ``cdk.json``) into typed values. ``read``
returns an ``AppSettings``: where every stack deploys (a ``DeployEnv``) and the scenario settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from eksnet.environment import DeployEnv
from eksnet.vpc import NatGateways

from constructs import Construct

ACCOUNT_KEY = "eksnet:account"
REGION_KEY = "eksnet:region"
AZS_KEY = "eksnet:availabilityZones"
CLUSTER_NAME_KEY = "eksnet:clusterName"
NAT_GATEWAYS_KEY = "eksnet:natGateways"
STACKS_KEY = "eksnet:stacks"

# The default app's stacks (each scenario module builds its own; apps.main imports a module only to build one).
NETWORK_STACK = "EksnetNetwork"
IPV6_ONLY_STACK = "EksnetNetworkIpv6Only"
IPV6_CLUSTER_STACK = "EksnetIpv6Cluster"
IPV4_CLUSTER_STACK = "EksnetIpv4Cluster"
CALICO_STACK = "EksnetCalico"
MULTUS_STACK = "EksnetMultus"

# aws-cdk-lib settings the apps choose, under any context the CLI or cdk.json gives (which wins): cross-stack
# references stay "strong" (an export the importing stack uses cannot be removed), said explicitly instead of
# left to aws-cdk-lib's default, which warns on every stack that imports.
APP_DEFAULTS = {"@aws-cdk/core:defaultCrossStackReferences": "strong"}

# A placeholder account and the walkthrough's region: offline synth needs no credentials; deploy with your own.
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "eu-central-1"
# The walkthrough's IPv6 cluster (eksctl's myipv6cluster), the name EksnetNetwork's subnets are tagged for.
DEFAULT_CLUSTER_NAME = "myipv6cluster"


@dataclass(frozen=True)
class AppSettings:
    """What the context chose.

    ``deploy_env``: account, region and zones of every stack. ``cluster_name``: the IPv6 cluster's name.
    ``nat_gateways``: the NAT gateways of every VPC the apps make (one per VPC unless ``per-az``).
    ``stacks``: the stack names to build (with what they build on); empty means every stack.
    """

    deploy_env: DeployEnv
    cluster_name: str = DEFAULT_CLUSTER_NAME
    nat_gateways: NatGateways = NatGateways.SHARED
    stacks: tuple[str, ...] = ()


def read(scope: Construct) -> AppSettings:
    """Every ``eksnet:*`` key of ``scope``'s context, typed; a bad value is one error naming its key."""
    node = scope.node
    account = str(node.try_get_context(ACCOUNT_KEY) or DEFAULT_ACCOUNT)
    region = str(node.try_get_context(REGION_KEY) or DEFAULT_REGION)
    azs = _names(AZS_KEY, node.try_get_context(AZS_KEY))
    try:
        deploy_env = DeployEnv(account=account, region=region, azs=azs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"context {ACCOUNT_KEY}={account!r}, {REGION_KEY}={region!r}, {AZS_KEY}={list(azs)!r}: "
                         f"{err}") from None
    return AppSettings(
        deploy_env=deploy_env,
        cluster_name=str(node.try_get_context(CLUSTER_NAME_KEY) or DEFAULT_CLUSTER_NAME),
        nat_gateways=_nat_gateways(node.try_get_context(NAT_GATEWAYS_KEY)),
        stacks=_names(STACKS_KEY, node.try_get_context(STACKS_KEY)),
    )


def _names(key: str, value: object) -> tuple[str, ...]:
    """A list of names: a JSON list (``cdk.json``, or ``-c key='["a","b"]'``) or ``a,b,c`` (``-c key=a,b,c``)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        except json.JSONDecodeError:
            raise ValueError(f"context {key} must be a JSON list or a,b,c, got {value!r}") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"context {key} must be a list of names (JSON, or a,b,c), got {value!r}")
    return tuple(v.strip() for v in value if v.strip())


def _nat_gateways(value: object) -> NatGateways:
    if value is None:
        return NatGateways.SHARED
    try:
        return NatGateways(value)
    except ValueError:
        raise ValueError(f"context {NAT_GATEWAYS_KEY}={value!r} is not one of "
                         f"{[m.value for m in NatGateways]}") from None
