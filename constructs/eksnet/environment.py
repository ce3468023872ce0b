"""Where a scenario deploys: account, region and availability zones, read from CDK context.

Every value is explicit so that `cdk synth` never asks AWS anything: the default
placeholders in ``cdk.json`` make synth work offline with no credentials, and a
user overrides them with ``-c eksnet:account=... -c eksnet:region=...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import aws_cdk as cdk

from constructs import Construct
from eksnet import typecheck, validate
from eksnet.function_logs import FunctionLogs

ACCOUNT_KEY = "eksnet:account"
REGION_KEY = "eksnet:region"
AZS_KEY = "eksnet:availabilityZones"
CLUSTER_NAME_KEY = "eksnet:clusterName"

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_REGION = "eu-central-1"

# The regions eksnet is built and tested for (README "Regions"): the default app synthesizes and passes
# cfn-lint in each, in that region.
SUPPORTED_REGIONS: tuple[str, ...] = ("eu-central-1", "us-east-1", "us-west-2", "eu-west-1")

# Default zones per region: three zones that exist in every account. Zone names are not region + a/b/c
# everywhere (ap-northeast-1 has no "b" zone for new accounts), so a region not listed here needs
# ``eksnet:availabilityZones``. us-east-1's letters map to different physical zones per account; any three work.
REGION_ZONES: dict[str, tuple[str, ...]] = {
    "eu-central-1": ("eu-central-1a", "eu-central-1b", "eu-central-1c"),
    "us-east-1": ("us-east-1a", "us-east-1b", "us-east-1c"),
    "us-west-2": ("us-west-2a", "us-west-2b", "us-west-2c"),
    "eu-west-1": ("eu-west-1a", "eu-west-1b", "eu-west-1c"),
    "ap-northeast-1": ("ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"),
}


@dataclass(frozen=True)
class DeployEnv:
    """An explicit deployment target; ``azs`` are full zone names such as ``eu-central-1a``.

    ``azs`` empty means the region's zones from ``REGION_ZONES``; a region without an entry there must list
    its zones (``eksnet:availabilityZones``).
    """

    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    azs: tuple[str, ...] = ()
    cluster_name: str = "myipv6cluster"

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        validate.account_id(self.account, "DeployEnv.account")
        validate.region(self.region, "DeployEnv.region")
        azs = self.azs or REGION_ZONES.get(self.region)
        if not azs:
            raise ValueError(
                f"no default zones for region {self.region!r} (known: {sorted(REGION_ZONES)}); list them with "
                f"-c {AZS_KEY}={self.region}a,{self.region}b,... as the region names them for your account"
            )
        object.__setattr__(self, "azs", tuple(azs))
        for az in self.azs:
            if not az.startswith(self.region) or len(az) == len(self.region):
                raise ValueError(
                    f"{AZS_KEY}: zone {az!r} is not in region {self.region!r} (expected e.g. {self.region}a)"
                )
        if len(set(self.azs)) != len(self.azs):
            raise ValueError(f"{AZS_KEY} lists a zone twice: {list(self.azs)}")

    @property
    def cdk_env(self) -> cdk.Environment:
        return cdk.Environment(account=self.account, region=self.region)

    @classmethod
    def from_context(cls, scope: Construct) -> DeployEnv:
        """Read the ``eksnet:*`` context keys; ``-c`` values arrive as strings, so JSON lists are parsed."""
        node = scope.node
        azs = node.try_get_context(AZS_KEY) or ()
        if isinstance(azs, str):
            azs = json.loads(azs) if azs.strip().startswith("[") else [a.strip() for a in azs.split(",") if a.strip()]
        return cls(
            account=str(node.try_get_context(ACCOUNT_KEY) or DEFAULT_ACCOUNT),
            region=str(node.try_get_context(REGION_KEY) or DEFAULT_REGION),
            azs=tuple(azs),
            cluster_name=str(node.try_get_context(CLUSTER_NAME_KEY) or "myipv6cluster"),
        )


class EksnetStack(cdk.Stack):
    """A Stack pinned to an explicit environment whose zones are known without a lookup.

    aws-cdk-lib asks AWS for availability zones (through the CLI's context
    provider) unless the stack answers ``availability_zones`` itself; answering
    here keeps `cdk synth --no-lookups` offline and deterministic.
    """

    def __init__(self, scope: Construct, id: str, *, deploy_env: DeployEnv, **kwargs) -> None:
        super().__init__(scope, id, env=deploy_env.cdk_env, **kwargs)
        self.deploy_env = deploy_env
        cdk.Aspects.of(self).add(FunctionLogs())  # every function, aws-cdk-lib's included, logs with a retention

    @property
    def availability_zones(self) -> list[str]:
        return list(self.deploy_env.azs)
