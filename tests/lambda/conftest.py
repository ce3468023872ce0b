"""Fixtures for the Lambda tests: one moto server per worker, a fresh VPC/node per test, the handlers loaded."""

from __future__ import annotations

import socket
from types import ModuleType

import botocore.awsrequest
import pytest
from moto.server import ThreadedMotoServer
from multus_eni_world import REGION, Node, build_node, load_lambda_module, make_client
from support import moto_ext


def _refusal(model, **_):
    """A botocore short-circuit: the call fails as EC2 would answer an unauthorized request."""
    return (
        botocore.awsrequest.AWSResponse("https://ec2", 403, {}, None),
        {"Error": {"Code": "UnauthorizedOperation", "Message": f"injected refusal of {model.name}"},
         "ResponseMetadata": {"HTTPStatusCode": 403}},
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ops() -> ModuleType:
    return load_lambda_module("multus_eni", "multus_eni_ops", "multus_eni_ops")


@pytest.fixture(scope="session")
def index(ops) -> ModuleType:
    return load_lambda_module("multus_eni", "index", "multus_eni_index", deps=("multus_eni_ops",))


@pytest.fixture(scope="session")
def sweeper(ops) -> ModuleType:
    return load_lambda_module("multus_eni", "sweeper", "multus_eni_sweeper", deps=("multus_eni_ops",))


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto server on loopback with the project's extensions, for the whole worker session."""
    moto_ext.install()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
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
def run(index, ops, node, moto_endpoint):
    """Deliver one event to the lifecycle handler's ``handle`` with clients that record their calls."""

    def deliver(event: dict, refuse: str | None = None, **settings_overrides) -> dict:
        """``refuse``: an EC2 operation name answered with an error before it reaches the server."""
        settings = ops.Settings(cluster_name=node.cluster, subnets=node.multus_subnets,
                                security_group_ids=(node.security_group_id,), **settings_overrides)
        ec2 = make_client("ec2", moto_endpoint, node.calls, config=index.BOTO_CONFIG)
        if refuse:
            ec2.meta.events.register(f"before-call.ec2.{refuse}", _refusal)
        autoscaling = make_client("autoscaling", moto_endpoint, node.calls, config=index.BOTO_CONFIG)
        return index.handle(event, ec2, autoscaling, settings, ops.JsonLog("DEBUG"))

    return deliver
