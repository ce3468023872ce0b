"""Every manifest eksnet's network policy part renders is valid: Kubernetes kinds against the
Kubernetes schemas (kubernetes-validate, strict: unknown fields are errors), operator.tigera.io
kinds against the vendored CRD schema (tests/policy/schemas/, with its source)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from eksnet import calico, policy
from eksnet.policy import LabelSelector, Peer, Port, Protocol, Requirement, SelectorOperator, tcp

from apps import calico as calico_app

KUBERNETES_VERSION = "1.35"  # EksCluster's default version
SCHEMAS = Path(__file__).parent / "schemas"


def validate_kubernetes(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def _closed(schema: dict) -> dict:
    """The schema with unknown fields forbidden wherever fields are listed (the API server would prune them)."""
    schema = copy.deepcopy(schema)

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def installation_schema() -> dict:
    crd = yaml.safe_load((SCHEMAS / "operator.tigera.io_installations.extract.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = _closed(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"].pop("additionalProperties", None)
    return schema


def validate_installation(manifest: dict) -> None:
    assert manifest["apiVersion"] == "operator.tigera.io/v1" and manifest["kind"] == "Installation"
    jsonschema.validate(manifest, installation_schema())


POLICIES = {
    "default-deny-ingress": policy.default_deny_ingress("ns"),
    "default-deny-egress": policy.default_deny_egress("ns"),
    "default-deny-all": policy.default_deny_all("ns"),
    "allow-all-ingress": policy.allow_all_ingress("ns"),
    "allow-all-egress": policy.allow_all_egress("ns"),
    "allow-dns-egress": policy.allow_dns_egress("ns"),
    "allow-ingress": policy.allow_ingress(
        "ns", "from-frontends", pod_selector=LabelSelector.labels(role="db"),
        peers=[Peer.pods(LabelSelector.labels(role="frontend")),
               Peer.pods_in_namespaces(policy.namespace_named("prod"), LabelSelector(match_expressions=(
                   Requirement("tier", SelectorOperator.NOT_IN, ("batch",)),))),
               Peer.cidr("172.17.0.0/16", ["172.17.1.0/24"]), Peer.cidr("2001:db8::/32", ["2001:db8:1::/48"])],
        ports=[tcp(6379), tcp("redis"), Port(30000, Protocol.TCP, 30100), Port(protocol=Protocol.SCTP)]),
    "allow-egress": policy.allow_egress("ns", "to-net", peers=[Peer.cidr("10.0.0.0/24")], ports=[tcp(5978)]),
    "seed-deny-all": calico_app.deny_all_policy(),
}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_network_policy_is_valid_against_the_kubernetes_schema(name):
    validate_kubernetes(POLICIES[name].to_manifest())


@pytest.mark.parametrize("index", range(len(calico_app.workload_manifests())))
def test_seed_workload_manifest_is_valid_against_the_kubernetes_schema(index):
    validate_kubernetes(calico_app.workload_manifests()[index])


@pytest.mark.parametrize("index", range(len(calico.annotate_pod_ip_rbac())))
def test_annotate_pod_ip_rbac_is_valid_against_the_kubernetes_schema(index):
    validate_kubernetes(calico.annotate_pod_ip_rbac()[index])


def test_installation_is_valid_against_the_installation_crd():
    validate_installation(calico.installation())


def test_installation_with_a_registry_mirror_is_valid_against_the_installation_crd():
    validate_installation(calico.installation(registry="123456789012.dkr.ecr.eu-central-1.amazonaws.com/"))


# The validators reject what they should, so the tests above can fail.

def test_the_kubernetes_validator_rejects_an_unknown_field():
    bad = policy.default_deny_egress("ns").to_manifest()
    bad["spec"]["policyType"] = ["Egress"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_kubernetes(bad)


@pytest.mark.parametrize("mutate", [
    lambda m: m["spec"]["cni"].update(type="Cilium"),
    lambda m: m["spec"].update(kubernetesProvider="EKS-Anywhere"),
    lambda m: m["spec"].update(cniType="AmazonVPC"),
], ids=["unknown-cni", "unknown-provider", "unknown-field"])
def test_the_installation_validator_rejects_what_the_crd_does_not_allow(mutate):
    bad = calico.installation()
    mutate(bad)
    with pytest.raises(jsonschema.ValidationError):
        validate_installation(bad)
