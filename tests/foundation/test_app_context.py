"""The apps read every ``eksnet:*`` context key in one place (``apps.context``), typed, with the README's defaults;
a bad value is one error that names its key."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from eksnet.environment import DeployEnv
from eksnet.vpc import NatGateways

from apps import context


def _read(**values) -> context.AppSettings:
    return context.read(cdk.App(context=values or None))


def test_without_context_the_walkthrough_defaults_apply():
    assert _read() == context.AppSettings(deploy_env=DeployEnv(account="123456789012", region="eu-central-1"),
                                          cluster_name="myipv6cluster", nat_gateways=NatGateways.SHARED, stacks=())


def test_reads_account_region_cluster_name_and_nat_gateways():
    settings = _read(**{"eksnet:account": "111122223333", "eksnet:region": "us-east-1",
                        "eksnet:clusterName": "other", "eksnet:natGateways": "per-az"})
    assert (settings.deploy_env.account, settings.deploy_env.region) == ("111122223333", "us-east-1")
    assert (settings.cluster_name, settings.nat_gateways) == ("other", NatGateways.PER_AZ)


@pytest.mark.parametrize("value", ["us-east-2a,us-east-2c", '["us-east-2a", "us-east-2c"]',
                                   ["us-east-2a", "us-east-2c"]])
def test_reads_zones_as_a_comma_list_a_json_list_or_a_list(value):
    settings = _read(**{"eksnet:region": "us-east-2", "eksnet:availabilityZones": value})
    assert settings.deploy_env.azs == ("us-east-2a", "us-east-2c")


@pytest.mark.parametrize("value", ["EksnetCalico,EksnetMultus", " EksnetCalico , EksnetMultus ",
                                   '["EksnetCalico", "EksnetMultus"]', ["EksnetCalico", "EksnetMultus"]])
def test_reads_the_stack_selection_as_a_list_of_names(value):
    assert _read(**{"eksnet:stacks": value}).stacks == ("EksnetCalico", "EksnetMultus")


@pytest.mark.parametrize(("values", "message"), [
    ({"eksnet:account": "12345"}, r"context eksnet:account='12345'.*DeployEnv\.account must be a 12-digit"),
    ({"eksnet:region": "mars"}, r"eksnet:region='mars'.*must be a region name"),
    ({"eksnet:region": "sa-east-1"}, r"eksnet:availabilityZones=\[\].*no default zones for region 'sa-east-1'"),
    ({"eksnet:natGateways": "one"}, r"context eksnet:natGateways='one' is not one of \['per-az', 'shared', 'none'\]"),
    ({"eksnet:stacks": 5}, r"context eksnet:stacks must be a list of names"),
    ({"eksnet:availabilityZones": "[us-east-2a"}, r"context eksnet:availabilityZones must be a JSON list or a,b,c"),
])
def test_a_bad_value_is_an_error_that_names_its_key(values, message):
    with pytest.raises(ValueError, match=message):
        _read(**values)
