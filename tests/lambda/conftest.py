"""Fixtures for the Lambda tests: one moto server per worker, a fresh VPC/node per test, the handlers loaded."""

from __future__ import annotations

from types import ModuleType

import botocore.awsrequest
import pytest
from multus_eni_world import REGION, Node, build_node, load_lambda_module, make_client

from demo import moto_ext


def _refusal(model, **_):
    """A botocore short-circuit: the call fails as EC2 would answer an unauthorized request."""
    return (
        botocore.awsrequest.AWSResponse("https://ec2", 403, {}, None),
        {"Error": {"Code": "UnauthorizedOperation", "Message": f"injected refusal of {model.name}"},
         "ResponseMetadata": {"HTTPStatusCode": 403}},
    )


SIBLINGS = ("multus_eni_budget", "multus_eni_ops", "multus_eni_reconcile")


@pytest.fixture(scope="session")
def budget() -> ModuleType:
    return load_lambda_module("multus_eni", "multus_eni_budget", "multus_eni_budget")


@pytest.fixture(scope="session")
def ops(budget) -> ModuleType:
    return load_lambda_module("multus_eni", "multus_eni_ops", "multus_eni_ops")


@pytest.fixture(scope="session")
def reconcile(ops) -> ModuleType:
    return load_lambda_module("multus_eni", "multus_eni_reconcile", "multus_eni_reconcile", deps=SIBLINGS[:2])


@pytest.fixture(scope="session")
def index(reconcile) -> ModuleType:
    return load_lambda_module("multus_eni", "index", "multus_eni_index", deps=SIBLINGS)


@pytest.fixture(scope="session")
def sweeper(ops) -> ModuleType:
    return load_lambda_module("multus_eni", "sweeper", "multus_eni_sweeper", deps=SIBLINGS[:2])


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto server on loopback with the project's extensions, for the whole worker session."""
    server, endpoint = moto_ext.serve()
    yield endpoint
    server.stop()


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def node(moto_endpoint) -> Node:
    return build_node(moto_endpoint)


@pytest.fixture
def settings_of(ops):
    """The handler's settings for ``node``, as the construct writes them into the environment."""

    def settings(node: Node, **overrides):
        values = {"cluster_name": node.cluster, "subnets": node.multus_subnets, "group_names": frozenset({node.group}),
                  "launch_hook": node.launch_hook, "terminate_hook": node.terminate_hook,
                  "security_group_ids": (node.security_group_id,)}
        return ops.Settings(**{**values, **overrides})

    return settings


@pytest.fixture
def clients(index, budget, node, moto_endpoint):
    """EC2 and Auto Scaling clients as the handler builds them, recording their calls into ``node.calls``.

    ``refuse``: EC2 operation names answered with an error before they reach the server;
    ``seconds_left``: the time the invocation has (the deadline guard runs as in Lambda).
    """

    def make(refuse: tuple[str, ...] = (), seconds_left: float = 900.0, reserve: float | None = None):
        ec2 = make_client("ec2", moto_endpoint, config=index.BOTO_CONFIG)
        deadline = budget.Deadline.after(seconds_left, budget.LIFECYCLE_RESERVE if reserve is None else reserve)
        deadline.guard(ec2)  # first: a call the deadline refuses is never made, so never recorded
        ec2.meta.events.register("before-parameter-build.ec2.*", node.calls)
        for name in refuse:
            ec2.meta.events.register(f"before-call.ec2.{name}", _refusal)
        autoscaling = make_client("autoscaling", moto_endpoint, node.calls, config=index.BOTO_CONFIG)
        return ec2, autoscaling

    return make


@pytest.fixture
def run(index, ops, node, settings_of, clients):
    """Deliver one event to the lifecycle handler's ``handle``."""

    def deliver(event: dict, refuse: str | tuple[str, ...] = (), seconds_left: float = 900.0,
                **settings_overrides) -> dict:
        ec2, autoscaling = clients((refuse,) if isinstance(refuse, str) else refuse, seconds_left)
        return index.handle(event, ec2, autoscaling, settings_of(node, **settings_overrides), ops.logger())

    return deliver
