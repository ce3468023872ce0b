"""Max pods per node follows from the instance type and the VPC CNI mode, as amazon-eks-ami computes it."""

from __future__ import annotations

import json

import boto3
import pytest
from eksnet import max_pods as mp
from moto import mock_aws

# Published figures: amazon-eks-ami templates/shared/runtime/eni-max-pods.txt (secondary IP mode,
# uncapped: "# of ENI * (# of IPv4 per ENI - 1) + 2").
PUBLISHED_SECONDARY_IP = {
    "t3.micro": 4,
    "t3.small": 11,
    "t3.medium": 17,
    "t3a.small": 8,
    "t2.xlarge": 44,
    "m4.large": 20,
    "m5.large": 29,
    "m5.xlarge": 58,
    "m5.4xlarge": 234,
    "m5.24xlarge": 737,
    "c5.18xlarge": 737,
    "m6g.medium": 8,
    "r5.large": 29,
}


@pytest.mark.parametrize(("instance_type", "published"), sorted(PUBLISHED_SECONDARY_IP.items()))
def test_secondary_ip_mode_matches_the_published_eni_max_pods_figure(instance_type, published):
    assert mp.max_pods(instance_type, cap=False) == published


def test_t3_medium_runs_17_pods_in_secondary_ip_mode():
    assert mp.max_pods("t3.medium") == 17


def test_recommended_value_caps_large_types_at_250_pods():
    # m5.24xlarge (96 vCPUs) addresses 737 pods, more than kubelet should run.
    assert mp.max_pods("m5.24xlarge") == 250


def test_prefix_delegation_multiplies_slots_by_16_before_the_cap():
    # 3 ENIs * (10 - 1) * 16 + 2, the figure the EKS calculator shows with --show-max-allowed.
    assert mp.max_pods("m5.large", prefix_delegation=True, cap=False) == 434


@pytest.mark.parametrize(("instance_type", "expected"), [("m5.large", 110), ("t3.medium", 110), ("m5.8xlarge", 250)])
def test_prefix_delegation_recommends_110_or_250_by_vcpu_count(instance_type, expected):
    assert mp.max_pods(instance_type, prefix_delegation=True) == expected


def test_prefix_delegation_on_a_small_type_can_stay_below_the_cap():
    # t3.micro: 2 ENIs * (2 - 1) * 16 + 2 = 34.
    assert mp.max_pods("t3.micro", prefix_delegation=True) == 34


def test_custom_networking_leaves_the_primary_eni_out():
    # m5.large: (3 - 1) * (10 - 1) + 2.
    assert mp.max_pods("m5.large", custom_networking=True) == 20


def test_max_enis_limits_the_enis_the_cni_uses():
    assert mp.max_pods("m5.large", max_enis=1) == 11


def test_ipv6_is_limited_by_the_cap_not_by_enis():
    assert mp.max_pods("t3.medium", ipv6=True) == 110
    assert mp.max_pods("m5.16xlarge", ipv6=True) == 250


def test_prefix_delegation_is_refused_off_nitro():
    with pytest.raises(ValueError, match="not a Nitro instance type"):
        mp.max_pods("m4.large", prefix_delegation=True)


def test_ipv6_is_refused_off_nitro():
    with pytest.raises(ValueError, match="IPv6 clusters"):
        mp.max_pods("t2.medium", ipv6=True)


def test_bare_metal_counts_as_nitro_for_prefixes():
    assert mp.limits("m5.metal").hypervisor == ""
    assert mp.max_pods("m5.metal", prefix_delegation=True) == 250


def test_custom_networking_refuses_a_type_with_no_eni_to_spare():
    lone = mp.InstanceLimits("x1.lone", max_enis=1, ipv4_per_eni=10, ipv6_per_eni=10, vcpus=2, hypervisor="nitro")
    with pytest.raises(ValueError, match="custom networking leaves none for pods"):
        mp.max_pods(lone, custom_networking=True)


def test_an_unknown_type_says_how_to_refresh_the_table():
    with pytest.raises(mp.UnknownInstanceType, match="python -m eksnet.max_pods refresh"):
        mp.limits("m5.gigantic")


def test_t_family_has_no_trunk_eni_for_pod_security_groups():
    assert not mp.limits("t3.large").supports_trunk_eni
    assert mp.limits("m5.large").supports_trunk_eni


def test_the_shipped_table_is_package_data():
    from importlib.resources import files

    shipped = json.loads((files("eksnet") / "data" / "instance_limits.json").read_text())
    assert len(shipped["instanceTypes"]) > 500
    assert shipped["instanceTypes"]["t3.medium"] == {
        "architectures": ["x86_64"],
        "network_card_enis": [3],
        "bare_metal": False,
        "hypervisor": "nitro",
        "ipv4_per_eni": 6,
        "ipv6_per_eni": 6,
        "max_enis": 3,
        "vcpus": 2,
    }


def test_refresh_reads_the_default_network_card_of_describe_instance_types(tmp_path):
    # A multi-card type: the VPC CNI only uses the default card's interfaces, not the instance total.
    item = {
        "InstanceType": "p5.48xlarge",
        "Hypervisor": "nitro",
        "BareMetal": False,
        "VCpuInfo": {"DefaultVCpus": 192},
        "NetworkInfo": {
            "MaximumNetworkInterfaces": 64,
            "DefaultNetworkCardIndex": 0,
            "Ipv4AddressesPerInterface": 50,
            "Ipv6AddressesPerInterface": 50,
            "NetworkCards": [{"NetworkCardIndex": i, "MaximumNetworkInterfaces": 2} for i in range(32)],
        },
    }
    name, row = mp.row_from_describe(item)
    assert (name, row["max_enis"], row["vcpus"]) == ("p5.48xlarge", 2, 192)
    assert row["network_card_enis"] == [2] * 32  # every card's ENIs are kept (multi-NIC mode uses them)


def test_refresh_keeps_the_architecture_ec2_reports():
    with mock_aws():
        document = mp.fetch(boto3.client("ec2", region_name="eu-central-1"), "test")
    assert document["instanceTypes"]["m7g.large"]["architectures"] == ["arm64"]
    assert document["instanceTypes"]["m5.large"]["architectures"] == ["x86_64"]


def test_refresh_rewrites_the_table_from_ec2(tmp_path):
    # moto's EC2 answers DescribeInstanceTypes with AWS's published data, paginated like EC2.
    out = tmp_path / "limits.json"
    with mock_aws():
        document = mp.fetch(boto3.client("ec2", region_name="eu-central-1"), "test")
    mp.write_table(document, out)
    reread = json.loads(out.read_text())
    assert reread["instanceTypes"]["m5.large"]["max_enis"] == 3
    assert list(reread["instanceTypes"]) == sorted(reread["instanceTypes"])
    assert mp._table(out)["t3.medium"].ipv4_per_eni == 6


def test_refresh_without_credentials_leaves_the_table_alone(tmp_path, monkeypatch, capsys):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    out = tmp_path / "limits.json"
    assert mp.main(["refresh", "--region", "eu-central-1", "--output", str(out)]) == 2
    assert not out.exists()
    assert "no AWS credentials" in capsys.readouterr().err


def test_calc_command_prints_max_pods(capsys):
    assert mp.main(["calc", "t3.medium", "m5.large", "--prefix-delegation"]) == 0
    assert capsys.readouterr().out.split("\n")[:2] == ["t3.medium 110", "m5.large 110"]


def test_security_groups_for_pods_lose_the_trunk_enis_slot():
    # c5.large: (3 - 1) * (10 - 1) + 2; the trunk ENI counts against the instance's ENI maximum.
    assert mp.max_pods("c5.large", trunk_eni=True) == 20


def test_custom_networking_and_trunk_eni_together_take_two_enis():
    assert mp.max_pods("m5.xlarge", trunk_eni=True, custom_networking=True) == 2 * 14 + 2


def test_the_table_carries_each_types_architecture_and_network_cards():
    assert mp.limits("m7g.large").architecture == "arm64"
    assert mp.limits("t3.medium").architecture == "x86_64"
    assert mp.limits("c6in.32xlarge").network_card_enis == (8, 8)
    assert all(lim.architectures and lim.network_card_enis for lim in mp._table().values())
