"""The handler's records, formatted by the Lambda Python runtime's own JSON formatter (awslambdaric, what
``LoggingConfig.LogFormat: JSON`` runs), are one JSON object per line carrying the bound fields as keys."""

from __future__ import annotations

import io
import json
import logging

import pytest
from awslambdaric.lambda_runtime_log_utils import JsonFormatter
from multus_eni_world import lifecycle_event


@pytest.fixture
def json_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("multus_eni")
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)  # setLevel, not .level =: it clears the logger's isEnabledFor cache
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    log.removeHandler(handler)
    log.setLevel(level)


def test_each_line_is_a_json_object_with_the_instance_group_and_hook(node, run, json_lines):
    run(lifecycle_event(node, node.start(node.launch_hook)))
    lines = json_lines()
    assert lines and all(line["instance_id"] == node.instance_id and line["group"] == node.group
                         and line["hook"] == node.launch_hook for line in lines)
    (done,) = [line for line in lines if line["message"] == "lifecycle action completed"]
    assert (done["level"], done["result"], done["logger"]) == ("INFO", "CONTINUE", "multus_eni")
    attached = [line for line in lines if line["message"] == "multus eni attached"]
    assert sorted(line["device_index"] for line in attached) == [1, 2]


def test_an_ignored_event_is_a_warning_that_says_why(node, run, json_lines):
    event = lifecycle_event(node, "token")
    event["detail"]["AutoScalingGroupName"] = "someone-elses-group"
    run(event)
    (line,) = json_lines()
    assert line["level"] == "WARNING" and line["group"] == "someone-elses-group"
    assert line["message"] == "event ignored: not this function's hook or group"
