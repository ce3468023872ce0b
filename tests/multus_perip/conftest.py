"""Fixtures for per-IP mode: moto's server on 127.0.0.1 (with the per-IP extensions of demo/moto_ext.py)
standing in for EC2, a fresh VPC per test with one Multus subnet, its explicit CIDR reservation and two ENIs
(two "nodes" sharing the range: demo/perip_subnet.py), and the environment the node runtime reads (credentials,
region, ``AWS_ENDPOINT_URL_EC2``)."""

from __future__ import annotations

import pytest

from demo import moto_ext
from demo.perip_subnet import REGION, build_world


@pytest.fixture(scope="session")
def moto_endpoint():
    server, endpoint = moto_ext.serve()
    yield endpoint
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, moto_endpoint):
    """What a node's daemon would get from the instance, pointed at moto (inherited by daemons)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", moto_endpoint)


@pytest.fixture
def world(moto_endpoint, aws_env):
    return build_world(moto_endpoint)
