"""The real entry points (``index.handler``, ``sweeper.handler``) read their environment; bad settings say what to fix."""

from __future__ import annotations

import json

import pytest
from multus_eni_world import lifecycle_event


@pytest.fixture
def lambda_env(monkeypatch, node, moto_endpoint):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # boto3 reads it: the handler code stays as deployed
    monkeypatch.setenv("CLUSTER_NAME", node.cluster)
    monkeypatch.setenv("MULTUS_SUBNETS", json.dumps(node.multus_subnets))
    monkeypatch.setenv("MULTUS_SECURITY_GROUP_IDS", node.security_group_id)
    return node


def test_the_lifecycle_handler_works_from_its_environment(lambda_env, index):
    node = lambda_env
    outcome = index.handler(lifecycle_event(node, node.start(node.launch_hook)), None)
    assert outcome["result"] == "CONTINUE" and sorted(outcome["enis"]) == [1, 2]


def test_the_sweeper_handler_works_from_its_environment(lambda_env, sweeper):
    assert sweeper.handler({"detail-type": "Scheduled Event"}, None)["deleted"] == []


def test_clients_retry_in_adaptive_mode(index, sweeper):
    assert index.BOTO_CONFIG.retries["mode"] == "adaptive"
    assert sweeper.BOTO_CONFIG.retries["mode"] == "adaptive"


@pytest.mark.parametrize("env, message", [
    ({}, "CLUSTER_NAME"),
    ({"CLUSTER_NAME": "c", "MULTUS_SUBNETS": "nope"}, "MULTUS_SUBNETS must be JSON"),
    ({"CLUSTER_NAME": "c", "MULTUS_SUBNETS": '{"eu-central-1a": []}'}, "at least one subnet per zone"),
    ({"CLUSTER_NAME": "c", "MULTUS_IPV4_PREFIX_COUNT": "x"}, "MULTUS_IPV4_PREFIX_COUNT must be an integer"),
    ({"CLUSTER_NAME": "c", "MULTUS_IPV6_PREFIX_COUNT": "17"}, "between 0 and 16"),
    ({"CLUSTER_NAME": "c", "MULTUS_FIRST_DEVICE_INDEX": "0"}, "MULTUS_FIRST_DEVICE_INDEX must be between 1"),
])
def test_settings_refuse_a_bad_environment_naming_the_variable(ops, env, message):
    with pytest.raises(ops.ConfigError, match=message):
        ops.Settings.from_env(env)


def test_settings_read_every_documented_variable(ops):
    s = ops.Settings.from_env({
        "CLUSTER_NAME": "c", "MULTUS_SUBNETS": '{"eu-central-1a": ["subnet-1", "subnet-2"]}',
        "MULTUS_SECURITY_GROUP_IDS": "sg-1, sg-2", "MULTUS_IPV4_PREFIX_COUNT": "1", "MULTUS_IPV6_PREFIX_COUNT": "2",
        "MULTUS_FIRST_DEVICE_INDEX": "2", "MULTUS_DETACH_TIMEOUT_SECONDS": "30", "LOG_LEVEL": "DEBUG",
    })
    assert (s.cluster_name, dict(s.subnets), tuple(s.security_group_ids)) == (
        "c", {"eu-central-1a": ("subnet-1", "subnet-2")}, ("sg-1", "sg-2"))
    assert (s.ipv4_prefix_count, s.ipv6_prefix_count, s.first_device_index, s.detach_timeout_seconds,
            s.log_level) == (1, 2, 2, 30, "DEBUG")


def test_an_event_missing_its_token_is_an_error_naming_the_field(ops):
    with pytest.raises(ValueError, match="LifecycleActionToken"):
        ops.LifecycleAction.from_detail({"EC2InstanceId": "i-1", "AutoScalingGroupName": "g",
                                         "LifecycleHookName": "h", "LifecycleTransition": "x"})


def test_the_client_token_is_stable_per_action_and_index_and_fits_ec2s_limit(ops):
    a = ops.client_token("tok", "i-0123456789abcdef0", 1)
    assert a == ops.client_token("tok", "i-0123456789abcdef0", 1)
    assert a != ops.client_token("tok", "i-0123456789abcdef0", 2) != ops.client_token("other", "i-1", 1)
    assert len(a) <= 64 and a.isascii()
