"""Where a stack deploys: account, region and availability zones, as plain values.

Every value is explicit so that `cdk synth` never asks AWS anything. The library takes these as arguments; an
app decides where they come from (the project's apps read them from ``eksnet:*`` context keys, ``apps/context.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk

from constructs import Construct
from eksnet import typecheck, validate
from eksnet.function_logs import function_logs
from eksnet.stack_pass import StackPass

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
    its zones. No default account or region: a library default would be a placeholder that synthesizes and
    then fails to deploy.
    """

    account: str
    region: str
    azs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        typecheck.check_fields(self)
        validate.account_id(self.account, "DeployEnv.account")
        validate.region(self.region, "DeployEnv.region")
        azs = self.azs or REGION_ZONES.get(self.region)
        if not azs:
            raise ValueError(
                f"no default zones for region {self.region!r} (known: {sorted(REGION_ZONES)}); list them in "
                f"DeployEnv.azs (e.g. ('{self.region}a', '{self.region}b', ...)) as the region names them for your account"
            )
        object.__setattr__(self, "azs", tuple(azs))
        for az in self.azs:
            if not az.startswith(self.region) or len(az) == len(self.region):
                raise ValueError(
                    f"DeployEnv.azs: zone {az!r} is not in region {self.region!r} (expected e.g. {self.region}a)"
                )
        if len(set(self.azs)) != len(self.azs):
            raise ValueError(f"DeployEnv.azs lists a zone twice: {list(self.azs)}")

    @property
    def cdk_env(self) -> cdk.Environment:
        return cdk.Environment(account=self.account, region=self.region)


class EksnetStack(cdk.Stack):
    """A Stack pinned to an explicit environment whose zones are known without a lookup.

    aws-cdk-lib asks AWS for availability zones (through the CLI's context
    provider) unless the stack answers ``availability_zones`` itself; answering
    here keeps `cdk synth --no-lookups` offline and deterministic.
    """

    def __init__(self, scope: Construct, id: str, *, deploy_env: DeployEnv, **kwargs) -> None:
        super().__init__(scope, id, env=deploy_env.cdk_env, **kwargs)
        self.deploy_env = deploy_env
        StackPass.of(self).add(function_logs())  # every function, aws-cdk-lib's included, logs with a retention

    @property
    def availability_zones(self) -> list[str]:
        return list(self.deploy_env.azs)
