"""Each VPC CNI mode renders the add-on configuration the CNI documents, and bad combinations are refused."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
from eksnet.vpc import PodIpv4Egress
from eksnet.vpc_cni import (
    CustomNetworking,
    EniSubnet,
    PodSecurityGroups,
    PrefixMode,
    SecondaryIpMode,
    SgEnforcingMode,
    VpcCniConfig,
    multi_nic_pod_annotation,
    security_group_policy,
    with_multi_nic,
)

SNAT = PodIpv4Egress.NODE_SNAT
REGION = "eu-central-1"
SGP_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "securitygrouppolicy.v1beta1.json").read_text())


def render(config: VpcCniConfig, *, ipv6: bool = False, egress: PodIpv4Egress = SNAT) -> dict:
    return config.render(ipv6=ipv6, pod_ipv4_egress=egress, region=REGION)


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields refused: the API server would silently prune them."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def test_ipv4_default_is_secondary_ip_mode_with_cni_defaults():
    assert render(VpcCniConfig()) == {"env": {}, "enableNetworkPolicy": "false"}


def test_secondary_ip_mode_renders_warm_targets_as_strings():
    doc = render(VpcCniConfig(ip_allocation=SecondaryIpMode(warm_eni_target=0, warm_ip_target=5, minimum_ip_target=10)))
    assert doc["env"] == {"MINIMUM_IP_TARGET": "10", "WARM_ENI_TARGET": "0", "WARM_IP_TARGET": "5"}


def test_prefix_mode_turns_on_prefix_delegation_with_its_warm_prefix_target():
    doc = render(VpcCniConfig(ip_allocation=PrefixMode(warm_prefix_target=2)))
    assert doc["env"] == {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "2"}


def test_pod_security_groups_enable_pod_eni_and_disable_early_demux_in_init():
    doc = render(VpcCniConfig(pod_security_groups=PodSecurityGroups(enforcing_mode=SgEnforcingMode.STANDARD)))
    assert doc["env"] == {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard"}
    assert doc["init"] == {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}}


def test_pod_security_groups_default_to_strict_enforcement():
    assert (
        render(VpcCniConfig(pod_security_groups=PodSecurityGroups()))["env"]["POD_SECURITY_GROUP_ENFORCING_MODE"]
        == "strict"
    )


def test_custom_networking_makes_the_addon_create_one_eniconfig_per_zone():
    cn = CustomNetworking(
        subnets={
            "eu-central-1a": EniSubnet("subnet-a", ("sg-1",)),
            "eu-central-1b": EniSubnet("subnet-b", ("sg-1", "sg-2")),
        }
    )
    doc = render(VpcCniConfig(custom_networking=cn))
    assert doc["env"] == {
        "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true",
        "ENI_CONFIG_LABEL_DEF": "topology.kubernetes.io/zone",
    }
    assert doc["eniConfig"] == {
        "create": True,
        "region": REGION,
        "subnets": {
            "eu-central-1a": {"id": "subnet-a", "securityGroups": ["sg-1"]},
            "eu-central-1b": {"id": "subnet-b", "securityGroups": ["sg-1", "sg-2"]},
        },
    }


def test_network_policy_agent_and_pod_ip_annotation():
    doc = render(VpcCniConfig(enable_network_policy=True, annotate_pod_ip=True))
    assert doc["enableNetworkPolicy"] == "true"
    assert doc["env"] == {"ANNOTATE_POD_IP": "true"}


def test_ipv6_uses_prefix_mode_and_node_snat_for_ipv4_egress_by_default():
    assert render(VpcCniConfig(), ipv6=True)["env"] == {
        "ENABLE_IPv4": "false",
        "ENABLE_IPv6": "true",
        "ENABLE_PREFIX_DELEGATION": "true",
        "ENABLE_V4_EGRESS": "true",
    }


def test_ipv6_with_nat64_turns_ipv4_egress_off():
    assert render(VpcCniConfig(), ipv6=True, egress=PodIpv4Egress.NAT64)["env"]["ENABLE_V4_EGRESS"] == "false"


def test_ipv4_cluster_does_not_render_v4_egress():
    assert "ENABLE_V4_EGRESS" not in render(VpcCniConfig(), egress=PodIpv4Egress.NAT64)["env"]


def test_extra_env_passes_through():
    assert render(VpcCniConfig(extra_env={"AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"}))["env"] == {
        "AWS_VPC_K8S_CNI_EXTERNALSNAT": "true"
    }


def test_the_rendered_document_is_json():
    config = VpcCniConfig(
        ip_allocation=PrefixMode(), pod_security_groups=PodSecurityGroups(), enable_network_policy=True
    )
    assert json.loads(json.dumps(render(config))) == render(config)


def test_prefix_delegation_flag_follows_mode_and_family():
    assert VpcCniConfig().prefix_delegation(ipv6=True)
    assert not VpcCniConfig().prefix_delegation(ipv6=False)
    assert VpcCniConfig(ip_allocation=PrefixMode()).prefix_delegation(ipv6=False)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: render(
                VpcCniConfig(custom_networking=CustomNetworking({"eu-central-1a": EniSubnet("subnet-a", ("sg-1",))})),
                ipv6=True,
            ),
            "not supported on IPv6",
        ),
        (lambda: render(VpcCniConfig(ip_allocation=SecondaryIpMode()), ipv6=True), "always use prefix mode"),
        (lambda: SecondaryIpMode(warm_ip_target=-1), "whole number >= 0"),
        (lambda: PrefixMode(warm_prefix_target=0), "keeps no address in reserve"),
        (lambda: CustomNetworking({}), "one EniSubnet per availability zone"),
        (lambda: CustomNetworking({"subnet-a": EniSubnet("subnet-a", ("sg-1",))}), "must be an availability zone name"),
        (lambda: EniSubnet("subnet-a", ()), "at least one security group"),
        (lambda: EniSubnet("subnet-a", tuple(f"sg-{i}" for i in range(6))), "at most 5"),
        (lambda: VpcCniConfig(extra_env={"lower": "x"}), "upper-case name"),
        (lambda: render(VpcCniConfig(annotate_pod_ip=True, extra_env={"ANNOTATE_POD_IP": "false"})), "typed fields"),
    ],
)
def test_invalid_combinations_fail_with_a_message_that_says_what_to_change(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_boolean_is_not_a_count():
    with pytest.raises(TypeError, match=r"PrefixMode.warm_prefix_target must be int or None, got True \(bool\)"):
        PrefixMode(warm_prefix_target=True)


def test_security_group_policy_is_valid_against_its_crd_schema():
    manifest = security_group_policy(
        "db-access",
        "shop",
        security_group_ids=["sg-0123"],
        pod_labels={"app": "api"},
        service_account_labels={"team": "shop"},
    )
    jsonschema.validate(manifest, strict(SGP_SCHEMA["openAPIV3Schema"]))
    assert manifest["apiVersion"] == f"{SGP_SCHEMA['group']}/{SGP_SCHEMA['version']}"
    assert manifest["kind"] == SGP_SCHEMA["kind"]
    assert manifest["spec"]["securityGroups"] == {"groupIds": ["sg-0123"]}


def test_the_crd_schema_check_catches_a_misspelt_field():
    manifest = security_group_policy("p", "default", security_group_ids=["sg-1"], pod_labels={"a": "b"})
    manifest["spec"]["securityGroup"] = manifest["spec"].pop("securityGroups")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(manifest, strict(SGP_SCHEMA["openAPIV3Schema"]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"security_group_ids": []}, "1 to 16"),
        ({"security_group_ids": [f"sg-{i}" for i in range(17)]}, "1 to 16"),
        ({"security_group_ids": ["sg-1"], "pod_labels": None}, "matches no pod"),
    ],
)
def test_security_group_policy_refuses_what_the_crd_or_controller_would(kwargs, message):
    args = {"pod_labels": {"app": "x"}, **kwargs}
    with pytest.raises(ValueError, match=message):
        security_group_policy("p", "default", **args)


def test_security_group_policy_refuses_an_invalid_name():
    with pytest.raises(ValueError, match="must be a DNS-1123 subdomain"):
        security_group_policy("Bad_Name", "default", security_group_ids=["sg-1"], pod_labels={"a": "b"})


# --- multi-NIC: the pods' opt-in ------------------------------------------------------------------------------

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "orders", "namespace": "shop"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "orders"}},
             "template": {"metadata": {"labels": {"app": "orders"}, "annotations": {"team": "shop"}},
                          "spec": {"containers": [{"name": "orders", "image": "public.ecr.aws/docker/library/busybox"}]}}},
}


def test_the_multi_nic_opt_in_is_the_annotation_the_vpc_cni_reads():
    # the key and value of the EKS user guide's multi-homed pods (the VPC CNI's multiNICPodAnnotation)
    assert multi_nic_pod_annotation() == {"k8s.amazonaws.com/nicConfig": "multi-nic-attachment"}


def test_with_multi_nic_annotates_a_workloads_pod_template_and_keeps_the_rest():
    annotated = with_multi_nic(DEPLOYMENT)
    assert annotated["spec"]["template"]["metadata"]["annotations"] == {
        "team": "shop", "k8s.amazonaws.com/nicConfig": "multi-nic-attachment"}
    assert "annotations" not in annotated["metadata"]  # the Deployment itself is not what the CNI reads
    assert "k8s.amazonaws.com/nicConfig" not in DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]  # a copy
    kubernetes_validate.validate(annotated, "1.35", strict=True)
    assert with_multi_nic(annotated) == annotated  # idempotent


def test_with_multi_nic_reaches_the_pods_of_every_workload_kind():
    pod = with_multi_nic({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert pod["metadata"]["annotations"] == multi_nic_pod_annotation()
    kubernetes_validate.validate(pod, "1.35", strict=True)
    cron = with_multi_nic({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
                           "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                               "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}})
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"] == multi_nic_pod_annotation()
    kubernetes_validate.validate(cron, "1.35", strict=True)


def test_with_multi_nic_refuses_what_makes_no_pods_and_a_conflicting_value():
    with pytest.raises(ValueError, match="'Service' makes no pods; give a Pod or one of Deployment"):
        with_multi_nic({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})
    other = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "template": {
        "metadata": {"annotations": {"k8s.amazonaws.com/nicConfig": "all"}}, "spec": {}}}}
    with pytest.raises(ValueError, match="the VPC CNI knows only 'multi-nic-attachment'"):
        with_multi_nic(other)
    with pytest.raises(TypeError, match=r"with_multi_nic.manifest must be a mapping of str to Any, got 'Pod'"):
        with_multi_nic("Pod")  # type: ignore[arg-type]


def test_multi_nic_cannot_be_combined_with_security_groups_for_pods():
    with pytest.raises(ValueError, match="multi_nic cannot be combined with pod_security_groups"):
        render(VpcCniConfig(multi_nic=True, pod_security_groups=PodSecurityGroups()))
    assert render(VpcCniConfig(multi_nic=True))["env"]["ENABLE_MULTI_NIC"] == "true"
