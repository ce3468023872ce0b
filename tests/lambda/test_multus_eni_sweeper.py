"""The scheduled sweeper deletes only available ENIs carrying our tags whose instance is gone."""

from __future__ import annotations

import pytest
from multus_eni_world import REGION, make_client


@pytest.fixture
def sweep(ops, node, moto_endpoint):
    def run(cluster: str | None = None) -> dict:
        return ops.sweep(make_client("ec2", moto_endpoint), cluster or node.cluster, ops.logger())
    return run


def _leak(ops, node, settings_of, instance_id: str, *, cluster: str | None = None, index: int = 1) -> str:
    """An available ENI made as the handler makes them, for ``instance_id`` (which need not exist)."""
    settings = settings_of(node)
    if cluster:
        settings = type(settings)(**{**settings.__dict__, "cluster_name": cluster})
    instance = ops.Instance(instance_id, f"arn:aws:ec2:{REGION}:123456789012:instance/{instance_id}", node.zone,
                            "running", {})
    # Client tokens are idempotency keys for the whole account (moto_ext keeps them per server, as EC2 does):
    # a token reused by another test would answer with that test's ENI, so each leak gets its own.
    token = f"t-{node.instance_id}-{settings.cluster_name}-{instance_id}-{index}"
    return ops.create_eni(node.ec2, settings, instance, node.multus_subnets[node.zone][0], index,
                          token)["NetworkInterfaceId"]


def _exists(node, eni_id: str) -> bool:
    return bool(node.ec2.describe_network_interfaces(
        Filters=[{"Name": "network-interface-id", "Values": [eni_id]}])["NetworkInterfaces"])


def test_an_available_eni_of_a_terminated_instance_is_deleted(ops, node, settings_of, sweep):
    eni = _leak(ops, node, settings_of, node.instance_id)
    node.ec2.terminate_instances(InstanceIds=[node.instance_id])
    assert sweep()["deleted"] == [eni]
    assert not _exists(node, eni)


def test_an_available_eni_of_an_instance_ec2_never_heard_of_is_deleted(ops, node, settings_of, sweep):
    eni = _leak(ops, node, settings_of, "i-0000000000000dead")
    assert sweep()["deleted"] == [eni]


def test_an_available_eni_of_a_running_instance_is_kept(ops, node, settings_of, sweep):
    eni = _leak(ops, node, settings_of, node.instance_id)  # a launch between create and attach looks like this
    assert sweep()["deleted"] == []
    assert _exists(node, eni)


def test_an_attached_eni_is_kept_even_when_tagged_for_another_instance(ops, node, settings_of, sweep):
    eni = _leak(ops, node, settings_of, "i-0000000000000dead")
    node.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=node.instance_id, DeviceIndex=1)
    assert sweep()["deleted"] == []
    assert _exists(node, eni)


def test_enis_of_another_cluster_are_kept(ops, node, settings_of, sweep):
    eni = _leak(ops, node, settings_of, "i-0000000000000dead", cluster=f"{node.cluster}-other")
    assert sweep()["deleted"] == []
    assert _exists(node, eni)


def test_untagged_available_enis_are_kept(node, sweep):
    eni = node.ec2.create_network_interface(SubnetId=node.multus_subnets[node.zone][0])["NetworkInterface"]
    assert sweep()["deleted"] == []
    assert _exists(node, eni["NetworkInterfaceId"])
