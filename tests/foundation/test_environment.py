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
