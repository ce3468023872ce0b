"""MultusNetworking: the interface list is said once and everything else agrees with it. The count of interfaces
changes in ONE place (``INTERFACES``, parametrized) and the template (Lambda environment, subnets), the user data's
node config, the IPAM pools, the NAD masters and kubelet's maxPods follow."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_eks_v2 as eks
from eksnet import max_pods
from eksnet.cluster import EksCluster, NodeGroupSpec
from eksnet.environment import EksnetStack
from eksnet.multus import (
    AddressMode,
    MultusConfigError,
    MultusInterface,
    MultusNetworking,
    PerIpSettings,
)
from eksnet.vpc import EksVpc, MultusNetwork
from support import cfn
from support.envs import deploy_env

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "t3.large"
NODEGROUP = "ng"


def build(interfaces, *, instance: str = INSTANCE, vpc_multus=None, stack_id: str = "Mn", **kwargs):
    """A VPC, a cluster with one managed node group and MultusNetworking over ``interfaces``."""
    app = cdk.App()
    stack = EksnetStack(app, stack_id, deploy_env=deploy_env())
    vpc = EksVpc(stack, "Vpc", cluster_names=["mncluster"], multus=vpc_multus)
    cluster = EksCluster(stack, "Cluster", vpc=vpc, cluster_name="mncluster", ip_family=eks.IpFamily.IP_V4,
                         nodegroups=[NodeGroupSpec(NODEGROUP, instance_types=(instance,), min_size=1, desired_size=2,
                                                   max_size=4)])
    networking = MultusNetworking(stack, "Multus", vpc=vpc, cluster=cluster, interfaces=interfaces, **kwargs)
    return app, stack, networking


@pytest.fixture(scope="module", params=[1, 2], ids=["one-interface", "two-interfaces"])
def built(request, tmp_path_factory):
    count = request.param
    interfaces = [MultusInterface(ipv4_prefixes=1, ipv6_prefixes=1)] * count  # the ONE place
    app, stack, networking = build(interfaces, stack_id=f"Mn{count}")
    out = tmp_path_factory.mktemp(f"mn{count}")
    template = cdk.assertions.Template.from_stack(stack).to_json()
    nads = {k: networking.nad(f"net{k}", interface=k) for k in networking.device_indexes}
    return {"count": count, "stack": stack, "networking": networking, "template": template, "nads": nads, "out": out}


def lambda_env(template) -> dict:
    (variables,) = [p["Environment"]["Variables"] for lid, p in cfn.props(template, "AWS::Lambda::Function")
                    if "EniAttacherFunction" in lid]
    return variables


def user_data_text(template) -> str:
    (lt,) = [p for _, p in cfn.props(template, "AWS::EC2::LaunchTemplate")]
    return json.dumps(lt["LaunchTemplateData"]["UserData"])


def node_config_from_user_data(networking) -> dict:
    shell = networking.cluster.node_user_data[NODEGROUP].render()
    return json.loads(shell.split("cat > /etc/eksnet/multus.json <<'EKSNET_EOF'\n")[1].split("EKSNET_EOF")[0])


def test_multus_subnets_one_per_zone_and_interface(built):
    tagged = [p for _, p in cfn.props(built["template"], "AWS::EC2::Subnet") if cfn.tags(p).get("multus") == "true"]
    assert len(tagged) == len(deploy_env().azs) * built["count"]


def test_lambda_attaches_one_eni_per_interface_from_device_index_1(built):
    env = lambda_env(built["template"])
    assert env["MULTUS_FIRST_DEVICE_INDEX"] == "1"
    subnets = env["MULTUS_SUBNETS"]  # Fn::Join of {zone: [subnet refs]}
    refs = [p for p in json.dumps(subnets).split('"Ref": ') if p.startswith('"VpcMultus')]
    assert len(refs) == len(deploy_env().azs) * built["count"]
    assert (env["MULTUS_IPV4_PREFIX_COUNT"], env["MULTUS_IPV6_PREFIX_COUNT"]) == ("1", "1")


def test_node_config_in_user_data_expects_every_interface(built):
    config = node_config_from_user_data(built["networking"])
    assert [i["deviceIndex"] for i in config["interfaces"]] == list(range(1, built["count"] + 1))
    assert all((i["ipv4Prefixes"], i["ipv6Prefixes"], i["mode"]) == (1, 1, "prefix") for i in config["interfaces"])
    assert config == built["networking"].node_config


def test_nad_master_and_pool_are_what_the_node_names_and_serves(built):
    config = node_config_from_user_data(built["networking"])
    by_index = {i["deviceIndex"]: i for i in config["interfaces"]}
    for k, nad in built["nads"].items():
        cni = nad.cni_config()
        assert cni["master"] == by_index[k]["name"] == f"multus{k}"
        assert cni["ipam"]["pool"] == by_index[k]["pool"]
        assert cni["cniVersion"] == "1.1.0"


def test_nad_routes_cover_the_interfaces_subnets_in_both_families(built):
    networking = built["networking"]
    for k, nad in built["nads"].items():
        routes = nad.ipam.routes
        v4 = [ipaddress.ip_network(r.dst) for r in routes if r.family == 4]
        for subnet in networking.subnets[k].values():
            assert any(ipaddress.ip_network(subnet.ipv4_cidr_block).subnet_of(net) for net in v4)
        assert len([r for r in routes if r.family == 6]) == len(networking.subnets[k])
        others = [s for j, subs in networking.subnets.items() if j != k for s in subs.values()]
        for subnet in others:  # no route leads another interface's traffic out of this one
            assert not any(ipaddress.ip_network(subnet.ipv4_cidr_block).overlaps(net) for net in v4)


def test_kubelet_max_pods_leaves_the_multus_enis_out(built):
    expected = max_pods.max_pods(INSTANCE, multus_enis=built["count"])
    assert expected == {1: 24, 2: 13}[built["count"]]  # t3.large: 3 ENIs, 12 addresses each
    assert built["networking"].max_pods == {NODEGROUP: expected}
    assert f"maxPods: {expected}\\n" in user_data_text(built["template"])


def test_first_nodes_launch_only_after_the_hooks_exist(built):
    template = built["template"]
    ((ng_id, ng),) = list(cfn.props(template, "AWS::EKS::Nodegroup"))
    assert (ng["ScalingConfig"]["MinSize"], ng["ScalingConfig"]["DesiredSize"]) == (0, 0)
    (size_id,) = [lid for lid, r in template["Resources"].items() if r["Type"] == "Custom::AWS" and "Size" in lid]
    create = json.dumps(template["Resources"][size_id]["Properties"]["Create"])
    assert "updateNodegroupConfig" in create
    assert '\\"scalingConfig\\":{\\"minSize\\":1,\\"maxSize\\":4,\\"desiredSize\\":2}' in create
    depends = set(template["Resources"][size_id]["DependsOn"])
    hooks = {lid for lid, _ in cfn.props(template, "AWS::AutoScaling::LifecycleHook")}
    assert hooks and hooks <= depends
    # runs again only when its properties change: the sizes in the app
    update = json.dumps(template["Resources"][size_id]["Properties"]["Update"])
    assert update == create and ng_id in create


def test_every_nodes_user_data_carries_the_same_node_config(built):
    config = node_config_from_user_data(built["networking"])
    assert [i["name"] for i in config["interfaces"]] == list(built["networking"].names.values())


# --- refusals: nothing half-made, messages that say what to change ----------------------------------------------

def test_an_instance_type_that_cannot_hold_the_enis_is_refused():
    with pytest.raises(ValueError, match=r"node group ng: t3\.medium holds at most 3 network interface\(s\).*"
                                         r"3 Multus ENI\(s\) need 4"):
        build([MultusInterface()] * 3, instance="t3.medium")


def test_different_prefix_counts_are_refused():
    with pytest.raises(MultusConfigError, match="same prefix counts"):
        build([MultusInterface(ipv4_prefixes=1), MultusInterface(ipv4_prefixes=2)])


def test_a_per_ip_range_outside_its_subnet_is_refused():  # per-IP mode itself: tests/multus_perip/
    with pytest.raises(MultusConfigError, match=r"interface 1 \(AddressMode.PER_IP\).*outside its Multus subnet"):
        build([MultusInterface(mode=AddressMode.PER_IP,
                               per_ip=PerIpSettings(ranges={z: "10.99.0.0/27" for z in deploy_env().azs}))])


def test_a_vpc_with_its_own_multus_subnets_is_refused():
    with pytest.raises(MultusConfigError, match="drop multus= from the EksVpc"):
        build([MultusInterface()], vpc_multus=MultusNetwork())


def test_an_unknown_node_group_is_refused():
    with pytest.raises(MultusConfigError, match="not node groups of the cluster"):
        build([MultusInterface()], node_groups=["nope"])


def test_a_nad_on_an_interface_that_does_not_exist_is_refused(built):
    with pytest.raises(MultusConfigError, match="1-based device indexes"):
        built["networking"].nad("x", interface=built["count"] + 1)


def test_subnets_mixed_between_given_and_derived_are_refused():
    with pytest.raises(MultusConfigError, match="on every MultusInterface or on none"):
        build([MultusInterface(ipv4_supernet="192.168.192.0/20"), MultusInterface()])


def test_each_interface_may_bring_its_own_supernet():
    _, _, networking = build([MultusInterface(ipv4_supernet="192.168.192.0/20"),
                              MultusInterface(ipv4_supernet="192.168.208.0/20")])
    for k, supernet in ((1, "192.168.192.0/20"), (2, "192.168.208.0/20")):
        for subnet in networking.subnets[k].values():
            assert ipaddress.ip_network(subnet.ipv4_cidr_block).subnet_of(ipaddress.ip_network(supernet))
        v4 = [ipaddress.ip_network(r.dst) for r in networking.routes(k) if r.family == 4]
        assert all(net.subnet_of(ipaddress.ip_network(supernet)) for net in v4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ipv4_prefixes": 17}, "0..16"),
    ({"ipv4_prefixes": 0, "ipv6_prefixes": 0}, "above 0"),
    ({"ipv4_subnets": ("192.168.192.0/24",), "ipv4_supernet": "192.168.192.0/20"}, "not both"),
    ({"per_ip": PerIpSettings(range_prefix_length=28)}, "per_ip is for mode=AddressMode.PER_IP"),
])
def test_interface_validation(kwargs, message):
    with pytest.raises(MultusConfigError, match=message):
        MultusInterface(**kwargs)


@pytest.mark.netns
def test_the_node_setup_serves_the_pool_and_names_the_master_the_nad_uses(node):
    # what MultusNetworking writes into the user data, run by the node setup on a "node" (fake IMDS: device 1 has
    # two IPv4 /28 and one IPv6 /80 delegated)
    _, _, networking = build([MultusInterface(ipv4_prefixes=1, ipv6_prefixes=1)], stack_id="MnNode")
    config = node["root"] / "etc/eksnet/multus.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps(networking.node_config))
    env = {"PATH": os.environ["PATH"], "EKSNET_IMDS": node["imds"], "EKSNET_ROOT": str(node["root"])}
    proc = subprocess.run(["ip", "netns", "exec", node["ns"], sys.executable, "-m", "node_runtime.node.setup",
                           "--wait", "5"], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    nad = networking.nad("net1", interface=1).cni_config()
    pools = json.loads((node["root"] / "etc/eksnet/ipamd.json").read_text())["pools"]
    assert list(pools) == [nad["ipam"]["pool"]]
    links = subprocess.run(["ip", "-n", node["ns"], "-j", "link", "show", "dev", nad["master"]],
                           capture_output=True, text=True)
    assert links.returncode == 0, f"no link {nad['master']} on the node"


@pytest.mark.parametrize("prop", ["vpc", "cluster"])
def test_a_vpc_or_cluster_that_is_not_eksnets_is_refused_by_name(prop):
    from aws_cdk import aws_ec2 as ec2

    stack = EksnetStack(cdk.App(), "Typed", deploy_env=deploy_env())
    vpc = EksVpc(stack, "Vpc", cluster_names=["mncluster"])
    cluster = EksCluster(stack, "Cluster", vpc=vpc, cluster_name="mncluster", ip_family=eks.IpFamily.IP_V4,
                         nodegroups=[NodeGroupSpec(NODEGROUP, instance_types=(INSTANCE,))])
    given = {"vpc": vpc, "cluster": cluster}
    given[prop] = ec2.Vpc(stack, "Plain") if prop == "vpc" else object()
    expected = "EksVpc" if prop == "vpc" else "EksCluster"
    with pytest.raises(MultusConfigError, match=rf"MultusNetworking\.{prop} must be {expected}"):
        MultusNetworking(stack, "Multus", interfaces=[MultusInterface()], **given)
