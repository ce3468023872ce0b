"""The Calico construct's choices, refusals and warning: construction only (no synth), each cluster in its own stack."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_eks_v2 as eks
from eksnet import calico
from eksnet.calico import Calico, PolicyEngine, vpc_cni_for
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import EksnetStack
from eksnet.vpc import EksVpc, NatGateways, PodIpv4Egress
from eksnet.vpc_cni import PrefixMode, VpcCniConfig
from support.envs import deploy_env

from apps import calico as calico_app
from apps import clusters


def test_vpc_cni_for_calico_annotates_pod_ips_and_keeps_the_rest():
    cfg = vpc_cni_for(PolicyEngine.CALICO, VpcCniConfig(ip_allocation=PrefixMode()))
    assert (cfg.annotate_pod_ip, cfg.enable_network_policy, cfg.ip_allocation) == (True, False, PrefixMode())


def test_vpc_cni_for_the_agent_turns_on_enable_network_policy():
    cfg = vpc_cni_for(PolicyEngine.VPC_CNI)
    assert (cfg.enable_network_policy, cfg.annotate_pod_ip) == (True, False)


def test_the_agent_engine_renders_enable_network_policy_in_the_addon_configuration():
    doc = vpc_cni_for(PolicyEngine.VPC_CNI).render(ipv6=False, pod_ipv4_egress=PodIpv4Egress.NODE_SNAT,
                                                   region="eu-central-1")
    assert (doc["enableNetworkPolicy"], "ANNOTATE_POD_IP" in doc["env"]) == ("true", False)


def test_the_calico_engine_renders_annotate_pod_ip_with_the_agent_off():
    doc = vpc_cni_for(PolicyEngine.CALICO).render(ipv6=False, pod_ipv4_egress=PodIpv4Egress.NODE_SNAT,
                                                  region="eu-central-1")
    assert (doc["enableNetworkPolicy"], doc["env"]["ANNOTATE_POD_IP"]) == ("false", "true")


def test_vpc_cni_for_calico_refuses_a_config_with_the_agent_on():
    with pytest.raises(ValueError, match="cannot both enforce"):
        vpc_cni_for(PolicyEngine.CALICO, VpcCniConfig(enable_network_policy=True))


def test_installation_registry_must_end_with_a_slash():
    with pytest.raises(ValueError, match="must end with '/'"):
        calico.installation(registry="example.com/mirror")


@pytest.fixture(scope="module")
def build_cluster():
    """Builds EksClusters in one throwaway app (each in its own stack): construction only."""
    app = cdk.App()
    count = iter(range(100))

    def build(vpc_cni: VpcCniConfig, *, ipv6: bool = False,
              egress: PodIpv4Egress = PodIpv4Egress.NODE_SNAT) -> EksCluster:
        stack = EksnetStack(app, f"S{next(count)}", deploy_env=deploy_env())
        vpc = EksVpc(stack, "Vpc", nat_gateways=NatGateways.SHARED, pod_ipv4_egress=egress, flow_logs=False)
        return EksCluster(stack, "Cluster", vpc=vpc, cluster_name="c",
                          ip_family=eks.IpFamily.IP_V6 if ipv6 else eks.IpFamily.IP_V4, vpc_cni=vpc_cni,
                          nodegroups=[NodeGroupSpec("ng", instance_types=("m5.large",))])

    return build


def _warnings(construct) -> list[str]:
    return [str(m.data) for m in construct.node.metadata if m.type == "aws:cdk:warning"]


def test_calico_with_the_vpc_cni_agent_fails_synth(build_cluster):
    cluster = build_cluster(VpcCniConfig(enable_network_policy=True, annotate_pod_ip=True))
    with pytest.raises(ValueError, match="cannot both enforce NetworkPolicy"):
        Calico(cluster, "Calico", cluster=cluster)
    assert cluster.node.try_find_child("Calico") is None


def test_calico_without_annotate_pod_ip_names_the_prop_to_set(build_cluster):
    cluster = build_cluster(VpcCniConfig())
    with pytest.raises(ValueError, match=r"vpc_cni=VpcCniConfig\(annotate_pod_ip=True"):
        Calico(cluster, "Calico", cluster=cluster)


def test_ready_timeout_must_fit_in_the_kubectl_lambda(build_cluster):
    cluster = build_cluster(vpc_cni_for(PolicyEngine.CALICO))
    with pytest.raises(ValueError, match="between 1 and 14 minutes"):
        Calico(cluster, "Calico", cluster=cluster, ready_timeout=cdk.Duration.minutes(20))


def test_ipv6_pods_with_ipv4_egress_through_the_node_get_a_warning(build_cluster):
    cluster = build_cluster(vpc_cni_for(PolicyEngine.CALICO, VpcCniConfig(ip_allocation=PrefixMode())), ipv6=True)
    made = Calico(cluster, "Calico", cluster=cluster)
    assert any("Calico cannot enforce policy on IPv4 egress" in w for w in _warnings(made))


def test_ipv6_pods_with_nat64_get_no_warning(build_cluster):
    cluster = build_cluster(vpc_cni_for(PolicyEngine.CALICO, VpcCniConfig(ip_allocation=PrefixMode())), ipv6=True,
                            egress=PodIpv4Egress.NAT64)
    assert _warnings(Calico(cluster, "Calico", cluster=cluster)) == []


def test_ipv4_cluster_gets_no_warning(build_cluster):
    cluster = build_cluster(vpc_cni_for(PolicyEngine.CALICO))
    assert _warnings(Calico(cluster, "Calico", cluster=cluster)) == []


def test_the_scenario_adds_only_its_stack_on_the_cluster_stack_it_is_given():
    app = cdk.App()
    base = clusters.ipv4_cluster_stack(app, deploy_env())
    stack = calico_app.calico_stack(app, deploy_env(), cluster=base)
    assert [s.node.id for s in app.node.children] == [clusters.IPV4_CLUSTER_STACK, calico_app.CALICO_STACK]
    assert not [c for c in stack.node.find_all() if isinstance(c, EksCluster)]
