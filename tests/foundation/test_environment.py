"""The deployment environment comes from context, explicitly, and bad values are refused."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from eksnet.environment import DeployEnv, EksnetStack


def test_defaults_to_three_zones_of_the_region():
    assert DeployEnv(region="eu-west-1").azs == ("eu-west-1a", "eu-west-1b", "eu-west-1c")


def test_reads_zones_given_on_the_command_line_as_a_comma_list():
    app = cdk.App(context={"eksnet:region": "us-east-2", "eksnet:availabilityZones": "us-east-2a,us-east-2c"})
    assert DeployEnv.from_context(app).azs == ("us-east-2a", "us-east-2c")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"account": "12345"}, "12-digit"),
        ({"region": "mars"}, "region name"),
        ({"azs": ("us-east-1a",)}, "not in region"),
        ({"azs": ("eu-central-1a", "eu-central-1a")}, "twice"),
    ],
)
def test_refuses_bad_values_with_a_message_that_says_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DeployEnv(**kwargs)


def test_stack_answers_its_zones_without_a_lookup():
    app = cdk.App()
    stack = EksnetStack(app, "S", deploy_env=DeployEnv(azs=("eu-central-1b", "eu-central-1c")))
    assert stack.availability_zones == ["eu-central-1b", "eu-central-1c"]


def test_default_zones_come_from_the_region_table_not_region_plus_abc():
    assert DeployEnv(region="ap-northeast-1").azs == ("ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d")


def test_every_supported_region_has_default_zones():
    from eksnet.environment import REGION_ZONES, SUPPORTED_REGIONS

    for region in SUPPORTED_REGIONS:
        assert len(DeployEnv(region=region).azs) == 3 and set(REGION_ZONES[region]) == set(DeployEnv(region=region).azs)


def test_a_region_without_a_table_entry_needs_its_zones_named():
    with pytest.raises(ValueError, match="eksnet:availabilityZones"):
        DeployEnv(region="sa-east-1")
    assert DeployEnv(region="sa-east-1", azs=("sa-east-1a", "sa-east-1c")).azs == ("sa-east-1a", "sa-east-1c")


@pytest.mark.parametrize(("kwargs", "prop"), [({"region": 1}, "region"), ({"azs": "eu-central-1a"}, "azs"),
                                              ({"account": 123456789012}, "account")])
def test_wrong_types_are_refused_with_the_props_name(kwargs, prop):
    with pytest.raises(TypeError, match=f"DeployEnv.{prop} must be"):
        DeployEnv(**kwargs)
