"""The Multus install's objects are valid Kubernetes (kubernetes-validate), pinned, and keep the VPC CNI default."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from eksnet.multus import MULTUS_VERSION, MultusConfigError, MultusLogLevel, multus_image, multus_manifests

K8S_VERSION = "1.35.0"


@pytest.fixture(scope="module")
def manifests():
    return multus_manifests(image=multus_image("eu-central-1"))


@pytest.mark.parametrize("kind", ["service_account", "cluster_role", "cluster_role_binding", "config_map",
                                  "daemon_set", "crd"])
def test_every_object_is_valid_kubernetes(manifests, kind):
    kubernetes_validate.validate(getattr(manifests, kind), K8S_VERSION, strict=True)


def test_validation_catches_a_broken_daemonset(manifests):
    broken = json.loads(json.dumps(manifests.daemon_set))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_image_is_the_pinned_thick_build_in_the_region():
    assert multus_image("eu-central-1") == (
        f"602401143452.dkr.ecr.eu-central-1.amazonaws.com/eks/multus-cni:{MULTUS_VERSION}_thick")
    assert multus_image("af-south-1").startswith("877085696533.dkr.ecr.af-south-1.amazonaws.com/")
    assert multus_image("cn-north-1").startswith("918309763551.dkr.ecr.cn-north-1.amazonaws.com.cn/")


def test_both_containers_run_the_same_image(manifests):
    spec = manifests.daemon_set["spec"]["template"]["spec"]
    assert {c["image"] for c in spec["containers"] + spec["initContainers"]} == {multus_image("eu-central-1")}


def test_vpc_cni_is_the_default_delegate(manifests):
    config = json.loads(manifests.config_map["data"]["daemon-config.json"])
    assert config["multusMasterCNI"] == "10-aws.conflist"
    assert config["multusConfigFile"] == "auto"


def test_log_level_is_configurable():
    m = multus_manifests(image="x", log_level=MultusLogLevel.DEBUG)
    assert json.loads(m.config_map["data"]["daemon-config.json"])["logLevel"] == "debug"


def test_daemonset_skips_fargate_and_tolerates_every_taint(manifests):
    spec = manifests.daemon_set["spec"]["template"]["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["fargate"]} in terms[0][
        "matchExpressions"]
    assert {t["effect"] for t in spec["tolerations"]} == {"NoSchedule", "NoExecute"}


def test_rbac_reads_nads_but_cannot_change_them(manifests):
    nad_rules = [r for r in manifests.cluster_role["rules"] if "k8s.cni.cncf.io" in r["apiGroups"]]
    assert nad_rules == [{"apiGroups": ["k8s.cni.cncf.io"], "resources": ["network-attachment-definitions"],
                          "verbs": ["get", "list", "watch"]}]


def test_binding_names_the_daemonsets_service_account(manifests):
    subject = manifests.cluster_role_binding["subjects"][0]
    assert (subject["name"], subject["namespace"]) == (
        manifests.daemon_set["spec"]["template"]["spec"]["serviceAccountName"], "kube-system")


def test_crd_comes_first(manifests):
    assert manifests.all()[0]["kind"] == "CustomResourceDefinition"


def test_default_network_conf_must_be_a_cni_file_name():
    with pytest.raises(MultusConfigError, match="CNI config file name"):
        multus_manifests(image="x", default_network_conf="../aws.conflist")
