"""The real entry points (``index.handler``, ``sweeper.handler``) read their environment; bad settings say what to fix."""

from __future__ import annotations

import json

import pytest
from multus_eni_world import lifecycle_event


class Context:
    """What the handler reads of Lambda's context object."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


@pytest.fixture
def lambda_env(monkeypatch, node, moto_endpoint):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)  # boto3 reads it: the handler code stays as deployed
    monkeypatch.setenv("CLUSTER_NAME", node.cluster)
    monkeypatch.setenv("MULTUS_SUBNETS", json.dumps(node.multus_subnets))
    monkeypatch.setenv("MULTUS_SECURITY_GROUP_IDS", node.security_group_id)
    monkeypatch.setenv("MULTUS_GROUP_NAMES", json.dumps([node.group]))
    monkeypatch.setenv("MULTUS_LAUNCH_HOOK", node.launch_hook)
    monkeypatch.setenv("MULTUS_TERMINATE_HOOK", node.terminate_hook)
    return node


def test_the_lifecycle_handler_works_from_its_environment(lambda_env, index):
    node = lambda_env
    outcome = index.handler(lifecycle_event(node, node.start(node.launch_hook)), Context(180))
    assert outcome["result"] == "CONTINUE" and sorted(outcome["enis"]) == [1, 2]


def test_the_lifecycle_handler_keeps_its_deadline_from_the_lambda_context(lambda_env, index):
    node = lambda_env
    outcome = index.handler(lifecycle_event(node, node.start(node.launch_hook)), Context(30))
    assert outcome["result"] == "ABANDON" and "DeadlineReached" in outcome["error"]
    assert node.our_enis() == []


def test_the_sweeper_handler_works_from_its_environment(lambda_env, sweeper):
    assert sweeper.handler({"detail-type": "Scheduled Event"}, Context(300))["deleted"] == []


def test_clients_retry_in_standard_mode_with_explicit_timeouts(index, sweeper, budget):
    for config in (index.BOTO_CONFIG, sweeper.BOTO_CONFIG):
        assert config.retries == {"mode": "standard", "total_max_attempts": budget.TOTAL_ATTEMPTS}
        assert (config.connect_timeout, config.read_timeout) == (budget.CONNECT_TIMEOUT, budget.READ_TIMEOUT)


@pytest.mark.parametrize("env, message", [
    ({}, "CLUSTER_NAME"),
    ({"CLUSTER_NAME": "c", "MULTUS_SUBNETS": "nope"}, "MULTUS_SUBNETS must be JSON"),
    ({"CLUSTER_NAME": "c", "MULTUS_SUBNETS": '{"eu-central-1a": []}'}, "at least one subnet per zone"),
    ({"CLUSTER_NAME": "c", "MULTUS_GROUP_NAMES": "g1"}, "MULTUS_GROUP_NAMES must be a JSON list"),
    ({"CLUSTER_NAME": "c", "MULTUS_GROUP_NAMES": '[""]'}, "MULTUS_GROUP_NAMES must be a JSON list"),
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
        "MULTUS_GROUP_NAMES": '["g1", "g2"]', "MULTUS_LAUNCH_HOOK": "up", "MULTUS_TERMINATE_HOOK": "down",
        "MULTUS_SECURITY_GROUP_IDS": "sg-1, sg-2", "MULTUS_IPV4_PREFIX_COUNT": "1", "MULTUS_IPV6_PREFIX_COUNT": "2",
        "MULTUS_FIRST_DEVICE_INDEX": "2", "MULTUS_DETACH_TIMEOUT_SECONDS": "30",
    })
    assert (s.cluster_name, dict(s.subnets), tuple(s.security_group_ids)) == (
        "c", {"eu-central-1a": ("subnet-1", "subnet-2")}, ("sg-1", "sg-2"))
    assert (s.group_names, s.launch_hook, s.terminate_hook) == (frozenset({"g1", "g2"}), "up", "down")
    assert (s.ipv4_prefix_count, s.ipv6_prefix_count, s.first_device_index, s.detach_timeout_seconds) == (1, 2, 2, 30)


def test_an_event_missing_its_token_is_an_error_naming_the_field(ops):
    with pytest.raises(ValueError, match="LifecycleActionToken"):
        ops.LifecycleAction.from_detail({"EC2InstanceId": "i-1", "AutoScalingGroupName": "g",
                                         "LifecycleHookName": "h", "LifecycleTransition": "x"})


def test_the_client_token_is_stable_per_action_and_index_and_fits_ec2s_limit(ops):
    a = ops.client_token("tok", "i-0123456789abcdef0", 1)
    assert a == ops.client_token("tok", "i-0123456789abcdef0", 1)
    assert a != ops.client_token("tok", "i-0123456789abcdef0", 2) != ops.client_token("other", "i-1", 1)
    assert len(a) <= 64 and a.isascii()
