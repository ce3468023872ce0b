"""Where a stack deploys is explicit (``DeployEnv``, plain values), and bad values are refused."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from eksnet.environment import REGION_ZONES, SUPPORTED_REGIONS, DeployEnv, EksnetStack
from support.envs import deploy_env


def test_defaults_to_three_zones_of_the_region():
    assert deploy_env(region="eu-west-1").azs == ("eu-west-1a", "eu-west-1b", "eu-west-1c")


def test_account_and_region_have_no_default():
    with pytest.raises(TypeError, match="account"):
        DeployEnv()  # a placeholder default would synthesize and then fail to deploy


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"account": "12345"}, "DeployEnv.account must be a 12-digit"),
        ({"region": "mars"}, "DeployEnv.region must be a region name"),
        ({"azs": ("us-east-1a",)}, "not in region"),
        ({"azs": ("eu-central-1a", "eu-central-1a")}, "twice"),
    ],
)
def test_refuses_bad_values_with_a_message_that_says_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        deploy_env(**kwargs)


def test_stack_answers_its_zones_without_a_lookup():
    app = cdk.App()
    stack = EksnetStack(app, "S", deploy_env=deploy_env(azs=("eu-central-1b", "eu-central-1c")))
    assert stack.availability_zones == ["eu-central-1b", "eu-central-1c"]


def test_default_zones_come_from_the_region_table_not_region_plus_abc():
    assert deploy_env(region="ap-northeast-1").azs == ("ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d")


def test_every_supported_region_has_default_zones():
    for region in SUPPORTED_REGIONS:
        azs = deploy_env(region=region).azs
        assert len(azs) == 3 and set(REGION_ZONES[region]) == set(azs)


def test_a_region_without_a_table_entry_needs_its_zones_named():
    with pytest.raises(ValueError, match=r"no default zones for region 'sa-east-1'.*DeployEnv\.azs"):
        deploy_env(region="sa-east-1")
    assert deploy_env(region="sa-east-1", azs=("sa-east-1a", "sa-east-1c")).azs == ("sa-east-1a", "sa-east-1c")


@pytest.mark.parametrize(("kwargs", "prop"), [({"region": 1}, "region"), ({"azs": "eu-central-1a"}, "azs"),
                                              ({"account": 123456789012}, "account")])
def test_wrong_types_are_refused_with_the_props_name(kwargs, prop):
    with pytest.raises(TypeError, match=f"DeployEnv.{prop} must be"):
        deploy_env(**kwargs)
