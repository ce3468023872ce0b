"""The EC2 calls of per-IP mode (node_runtime/ec2assign.py) against moto's server: EC2 is the
arbiter of a range every node shares, so an address another ENI holds is refused, never taken."""

from __future__ import annotations

import pytest

from demo import moto_ext
from node_runtime.ec2assign import Ec2Assigner, Ec2Error, HeldElsewhere, endpoint_url

pytestmark = pytest.mark.usefixtures("aws_env")


def test_the_endpoint_comes_from_the_environment(moto_endpoint):
    assert endpoint_url() == moto_endpoint


@pytest.mark.parametrize("family", [4, 6])
def test_an_address_is_assigned_to_one_eni_only(world, family):
    ec2 = Ec2Assigner(region="eu-central-1")
    address = str((world.range_v4 if family == 4 else world.range_v6)[3])
    ec2.assign(world.eni_a, address)
    assert address in world.held(world.eni_a)
    assert address in ec2.held(world.eni_a)

    with pytest.raises(HeldElsewhere):
        ec2.assign(world.eni_b, address)
    assert address not in world.held(world.eni_b)
    assert address in world.held(world.eni_a), "the refused request took nothing away"

    ec2.assign(world.eni_a, address)  # repeated on its own ENI (a restart): nothing to do
    ec2.unassign(world.eni_a, address)
    assert address not in world.held(world.eni_a)
    ec2.unassign(world.eni_a, address)  # already gone: DEL and reconciliation may both try
    ec2.assign(world.eni_b, address)  # free again: the other node may take it
    assert address in world.held(world.eni_b)


def test_reassignment_is_never_asked_for(world):
    ec2 = Ec2Assigner()
    before = len(moto_ext.assignment_requests())
    ec2.assign(world.eni_a, str(world.range_v4[0]))
    ec2.assign(world.eni_a, str(world.range_v6[0]))
    with pytest.raises(HeldElsewhere):
        ec2.assign(world.eni_b, str(world.range_v4[0]))
    mine = moto_ext.assignment_requests()[before:]
    assert [r.action for r in mine] == ["AssignPrivateIpAddresses", "AssignIpv6Addresses", "AssignPrivateIpAddresses"]
    assert not any(r.allow_reassignment for r in mine)


def test_an_address_outside_the_subnet_is_a_refusal_not_a_skip(world):
    with pytest.raises(Ec2Error) as refused:
        Ec2Assigner().assign(world.eni_a, "172.31.0.9")
    assert not isinstance(refused.value, HeldElsewhere)
    assert not refused.value.transient
    assert refused.value.code == "InvalidParameterValue"


def test_an_unknown_eni_is_a_refusal(world):
    with pytest.raises(Ec2Error) as refused:
        Ec2Assigner().assign("eni-0123456789abcdef0", str(world.range_v4[1]))
    assert not isinstance(refused.value, HeldElsewhere)
    assert "NotFound" in refused.value.code


def test_an_unreachable_ec2_is_transient(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")
    with pytest.raises(Ec2Error) as failed:
        Ec2Assigner().assign("eni-0123456789abcdef0", "10.0.96.130")
    assert failed.value.transient
