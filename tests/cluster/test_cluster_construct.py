"""EksCluster synthesizes the cluster, add-ons, CNI IAM and node groups each mode needs; bad props are refused.

One test app, synthesized once for the module with the gates on (cdk-nag and the eksnet EKS checks):
- ``V6``: an IPv6 cluster on a plain dual-stack ``ec2.Vpc``, default CNI config, IRSA, t3.medium nodes,
  and extra node user data as the Multus construct adds it;
- ``V4``: an IPv4 cluster on an ``EksVpc``, prefix mode + security groups per pod + custom networking +
  network policy agent, Pod Identity for the CNI, two node groups, and a SecurityGroupPolicy.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from eksnet import nag
from eksnet.cluster import IPV6_CNI_ACTIONS, CniIdentity, EksCluster, NodeGroupSpec
from eksnet.environment import EksnetStack
from eksnet.vpc import EksVpc, PodIpv4Egress
from eksnet.vpc_cni import (
    CustomNetworking,
    EniSubnet,
    PodSecurityGroups,
    PrefixMode,
    SecondaryIpMode,
    VpcCniConfig,
)
from support.cfn import props, ref_id, resources
from support.envs import deploy_env

MULTUS_LINE = "echo installing-multus-cni"


def _dual_stack_vpc(stack, id="Vpc") -> ec2.Vpc:
    vpc = ec2.Vpc(stack, id, ip_protocol=ec2.IpProtocol.DUAL_STACK, max_azs=2, nat_gateways=1)
    vpc.add_flow_log("FlowLog")
    return vpc


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    out = tmp_path_factory.mktemp("cluster") / "out"
    app = cdk.App(outdir=str(out))
    env = deploy_env()
    v6 = EksnetStack(app, "V6", deploy_env=env)
    c6 = EksCluster(
        v6,
        "Cluster",
        vpc=_dual_stack_vpc(v6),
        cluster_name="v6",
        ip_family=eks.IpFamily.IP_V6,
        nodegroups=[NodeGroupSpec("ipv6mng")],
    )
    c6.node_user_data["ipv6mng"].add_commands(MULTUS_LINE)

    v4 = EksnetStack(app, "V4", deploy_env=env)
    eks_vpc = EksVpc(v4, "EksVpc", cluster_names=["v4"])
    pod_sg = ec2.SecurityGroup(v4, "PodSg", vpc=eks_vpc.vpc, description="pods of the api app")
    config = VpcCniConfig(
        ip_allocation=PrefixMode(warm_prefix_target=1, warm_ip_target=5),
        pod_security_groups=PodSecurityGroups(),
        custom_networking=CustomNetworking(
            {
                s.availability_zone: EniSubnet(s.subnet_id, (pod_sg.security_group_id,))
                for s in eks_vpc.vpc.private_subnets
            }
        ),
        enable_network_policy=True,
    )
    c4 = EksCluster(
        v4,
        "Cluster",
        vpc=eks_vpc,
        cluster_name="v4",
        vpc_cni=config,
        cni_identity=CniIdentity.POD_IDENTITY,
        nodegroups=[
            NodeGroupSpec("general", instance_types=("m5.large", "m5.xlarge")),
            NodeGroupSpec("big", instance_types=("m5.8xlarge",), min_size=0, desired_size=0),
        ],
        admin_principal_arns=["arn:aws:iam::123456789012:role/Admin"],
    )
    c4.add_security_group_policy(
        "ApiSgp", name="api", namespace="shop", security_groups=[pod_sg], pod_labels={"app": "api"}
    )
    nag.add_checks(app)
    app.synth()
    templates = {n: json.loads((out / f"{n}.template.json").read_text()) for n in ("V6", "V4")}
    return {
        "templates": templates,
        "v6": c6,
        "v4": c4,
        "report": json.loads((out / "validation-report.json").read_text()),
    }


@pytest.fixture(scope="module")
def v6(synthesized):
    return synthesized["templates"]["V6"]


@pytest.fixture(scope="module")
def v4(synthesized):
    return synthesized["templates"]["V4"]


def _one(template, type_):
    found = list(props(template, type_))
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0][1]


def _addon(template, name) -> tuple[str, dict]:
    found = [(lid, p) for lid, p in props(template, "AWS::EKS::Addon") if p["AddonName"] == name]
    assert len(found) == 1, name
    return found[0]


def _addon_config(template, name="vpc-cni") -> dict:
    value = _addon(template, name)[1]["ConfigurationValues"]
    if isinstance(value, dict):  # Fn::Join around tokens (subnet and group ids): keep the literal parts
        value = "".join(p if isinstance(p, str) else "TOKEN" for p in value["Fn::Join"][1])
    return json.loads(value)


def _managed_policies(template, role_lid) -> set[str]:
    arns = template["Resources"][role_lid]["Properties"].get("ManagedPolicyArns", [])
    return {a["Fn::Join"][1][-1].split("/")[-1] for a in arns}


def _statements(template) -> list[dict]:
    return [s for _, p in props(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]]


def _actions(statement) -> set[str]:
    a = statement["Action"]
    return {a} if isinstance(a, str) else set(a)


def _user_data(template, lt_props) -> str:
    """The MIME document, with each base64-encoded part shown as its plain text (CloudFormation encodes it)."""
    body = lt_props["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    if isinstance(body, dict):
        body = "".join(p if isinstance(p, str) else p.get("Fn::Base64", "TOKEN") for p in body["Fn::Join"][1])
    return body


# --- the cluster -------------------------------------------------------------------------------


def test_both_apps_pass_the_gates_with_only_reasoned_acknowledgments(synthesized):
    for plugin in synthesized["report"]["pluginReports"]:
        assert plugin["violations"] == [] or {v["ruleName"] for v in plugin["violations"]} == {"W3010"}, plugin
        for suppressed in plugin.get("suppressedViolations", []):
            assert len(suppressed["reason"]) >= 20


def test_ip_family_is_set_on_the_cluster(v6, v4):
    assert _one(v6, "AWS::EKS::Cluster")["KubernetesNetworkConfig"]["IpFamily"] == "ipv6"
    assert _one(v4, "AWS::EKS::Cluster")["KubernetesNetworkConfig"]["IpFamily"] == "ipv4"


def test_cluster_is_private_with_all_control_plane_logs(v6):
    cluster = _one(v6, "AWS::EKS::Cluster")
    assert cluster["ResourcesVpcConfig"]["EndpointPublicAccess"] is False
    types = {t["Type"] for t in cluster["Logging"]["ClusterLogging"]["EnabledTypes"]}
    assert types == {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def test_eks_does_not_install_self_managed_addons_and_no_auto_mode(v6):
    cluster = _one(v6, "AWS::EKS::Cluster")
    assert cluster["BootstrapSelfManagedAddons"] is False
    assert cluster["ComputeConfig"]["Enabled"] is False


def test_the_three_addons_are_managed(v6):
    assert {p["AddonName"] for _, p in props(v6, "AWS::EKS::Addon")} == {"vpc-cni", "coredns", "kube-proxy"}


def test_pod_identity_brings_the_pod_identity_agent_addon(v4):
    assert "eks-pod-identity-agent" in {p["AddonName"] for _, p in props(v4, "AWS::EKS::Addon")}


def test_the_cluster_has_a_native_oidc_provider_for_irsa(v6):
    provider = _one(v6, "AWS::IAM::OIDCProvider")
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]


def test_admin_principals_get_a_cluster_admin_access_entry(v4):
    entries = [
        p for _, p in props(v4, "AWS::EKS::AccessEntry") if p["PrincipalArn"] == "arn:aws:iam::123456789012:role/Admin"
    ]
    assert len(entries) == 1
    assert entries[0]["AccessPolicies"][0]["PolicyArn"]["Fn::Join"][1][-1].endswith("AmazonEKSClusterAdminPolicy")


# --- the VPC CNI add-on configuration and IAM ---------------------------------------------------


def test_ipv6_addon_configuration(v6):
    assert _addon_config(v6) == {
        "env": {
            "ENABLE_IPv4": "false",
            "ENABLE_IPv6": "true",
            "ENABLE_PREFIX_DELEGATION": "true",
            "ENABLE_V4_EGRESS": "true",
        },
        "enableNetworkPolicy": "false",
    }


def test_ipv4_addon_configuration_combines_the_modes(v4):
    doc = _addon_config(v4)
    assert doc["env"] == {
        "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true",
        "ENABLE_POD_ENI": "true",
        "ENABLE_PREFIX_DELEGATION": "true",
        "ENI_CONFIG_LABEL_DEF": "topology.kubernetes.io/zone",
        "POD_SECURITY_GROUP_ENFORCING_MODE": "strict",
        "WARM_IP_TARGET": "5",
        "WARM_PREFIX_TARGET": "1",
    }
    assert doc["init"] == {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}}
    assert doc["enableNetworkPolicy"] == "true"
    assert doc["eniConfig"]["create"] is True and doc["eniConfig"]["region"] == "eu-central-1"
    assert set(doc["eniConfig"]["subnets"]) == {"eu-central-1a", "eu-central-1b", "eu-central-1c"}


def test_ipv6_cni_role_is_assumed_through_irsa_for_aws_node(v6):
    _, cni = _addon(v6, "vpc-cni")
    role_lid = ref_id(cni["ServiceAccountRoleArn"])
    trust = v6["Resources"][role_lid]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    conditions = v6["Resources"][ref_id(trust["Condition"]["StringEquals"])]["Properties"]["Value"]
    assert "system:serviceaccount:kube-system:aws-node" in json.dumps(conditions)


def _cni_statements(v6) -> list[dict]:
    return [s for s in _statements(v6) if _actions(s) & (set(IPV6_CNI_ACTIONS) | {"ec2:CreateTags"})]


def test_ipv6_cni_policy_has_todays_upstream_actions(v6):
    granted = set().union(*(_actions(s) for s in _cni_statements(v6)))
    assert granted == set(IPV6_CNI_ACTIONS) | {"ec2:CreateTags"}


def test_only_the_describe_actions_which_take_no_resource_are_on_star(v6):
    star = [s for s in _cni_statements(v6) if s["Resource"] == "*"]
    assert len(star) == 1 and all(a.startswith("ec2:Describe") for a in _actions(star[0]))


def _arn_tails(statement) -> set[str]:
    res = statement["Resource"]
    res = res if isinstance(res, list) else [res]
    assert all({"Ref": "AWS::Partition"} in r["Fn::Join"][1] for r in res)  # any partition
    return {r["Fn::Join"][1][-1].rsplit(":", 1)[-1] for r in res}


def test_ipv6_cni_may_assign_and_tag_only_network_interfaces(v6):
    (s,) = [s for s in _cni_statements(v6) if "ec2:CreateTags" in _actions(s)]
    assert _actions(s) == {"ec2:CreateTags", "ec2:AssignIpv6Addresses"}
    assert _arn_tails(s) == {"network-interface/*"}


def test_ipv6_cni_modifies_interfaces_within_the_types_the_action_authorizes(v6):
    (s,) = [s for s in _cni_statements(v6) if "ec2:ModifyNetworkInterfaceAttribute" in _actions(s)]
    assert _arn_tails(s) == {"network-interface/*", "instance/*", "security-group/*", "vpc/*"}


def test_ipv4_cni_role_uses_the_managed_cni_policy_through_pod_identity(v4):
    _, cni = _addon(v4, "vpc-cni")
    assoc = cni["PodIdentityAssociations"]
    assert [a["ServiceAccount"] for a in assoc] == ["aws-node"]
    role = v4["Resources"][ref_id(assoc[0]["RoleArn"])]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(role["AssumeRolePolicyDocument"]["Statement"][0]["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    assert "AmazonEKS_CNI_Policy" in _managed_policies(v4, ref_id(assoc[0]["RoleArn"]))


def test_pod_security_groups_put_the_resource_controller_policy_on_the_cluster_role(v4, v6):
    role4 = ref_id(_one(v4, "AWS::EKS::Cluster")["RoleArn"])
    role6 = ref_id(_one(v6, "AWS::EKS::Cluster")["RoleArn"])
    assert "AmazonEKSVPCResourceController" in _managed_policies(v4, role4)
    assert "AmazonEKSVPCResourceController" not in _managed_policies(v6, role6)


def test_node_role_does_not_carry_the_cni_policy(v6, v4):
    for template in (v6, v4):
        ng = next(p for _, p in props(template, "AWS::EKS::Nodegroup"))
        assert "AmazonEKS_CNI_Policy" not in _managed_policies(template, ref_id(ng["NodeRole"]))


# --- security groups -------------------------------------------------------------------------------


def test_node_and_control_plane_groups_allow_ipv6_egress_in_a_dual_stack_vpc(v6):
    groups = dict(props(v6, "AWS::EC2::SecurityGroup"))
    cluster = _one(v6, "AWS::EKS::Cluster")
    control_plane = ref_id(cluster["ResourcesVpcConfig"]["SecurityGroupIds"][0])
    lt = _one(v6, "AWS::EC2::LaunchTemplate")
    node_groups = [ref_id(g) for g in lt["LaunchTemplateData"]["SecurityGroupIds"] if ref_id(g) in groups]
    assert len(node_groups) == 1
    for lid in (control_plane, node_groups[0]):
        egress = groups[lid]["SecurityGroupEgress"]
        assert {"CidrIpv6": "::/0", "IpProtocol": "-1"}.items() <= next(e for e in egress if "CidrIpv6" in e).items()
        assert any(e.get("CidrIp") == "0.0.0.0/0" for e in egress)


def test_launch_template_keeps_the_cluster_security_group(v6):
    lt = _one(v6, "AWS::EC2::LaunchTemplate")
    cluster_lid = next(iter(resources(v6, "AWS::EKS::Cluster")))
    assert {"Fn::GetAtt": [cluster_lid, "ClusterSecurityGroupId"]} in lt["LaunchTemplateData"]["SecurityGroupIds"]


# --- nodes -------------------------------------------------------------------------------------------


def test_launch_template_requires_imdsv2_with_hop_limit_2_and_ipv6_metadata(v6):
    md = _one(v6, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]["MetadataOptions"]
    assert md["HttpTokens"] == "required"
    assert md["HttpPutResponseHopLimit"] == 2
    assert md["HttpProtocolIpv6"] == "enabled"


def test_nodegroup_uses_the_launch_template_in_private_subnets(v6):
    ng = _one(v6, "AWS::EKS::Nodegroup")
    lt_lid = next(iter(resources(v6, "AWS::EC2::LaunchTemplate")))
    assert ref_id(ng["LaunchTemplate"]["Id"]) == lt_lid
    assert ng["InstanceTypes"] == ["t3.medium"] and ng["NodegroupName"] == "ipv6mng"
    assert all("PrivateSubnet" in ref_id(s) for s in ng["Subnets"])


def test_nodes_wait_for_the_cni_and_kube_proxy_addons(v6):
    ng_lid = next(iter(resources(v6, "AWS::EKS::Nodegroup")))
    depends = set(v6["Resources"][ng_lid].get("DependsOn", []))
    assert {_addon(v6, "vpc-cni")[0], _addon(v6, "kube-proxy")[0]} <= depends


def test_coredns_waits_for_the_first_node_group_so_it_can_become_healthy(v6):
    ng_lid = next(iter(resources(v6, "AWS::EKS::Nodegroup")))
    coredns_lid, _ = _addon(v6, "coredns")
    assert ng_lid in v6["Resources"][coredns_lid].get("DependsOn", [])


def test_secrets_are_encrypted_with_a_customer_managed_key_that_rotates(v6):
    cluster = _one(v6, "AWS::EKS::Cluster")
    (config,) = cluster["EncryptionConfig"]
    assert config["Resources"] == ["secrets"]
    key = v6["Resources"][ref_id(config["Provider"]["KeyArn"])]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True


def test_the_stack_owns_the_control_plane_log_group_with_a_retention(v6):
    (lid, group), = [(lid, r) for lid, r in resources(v6, "AWS::Logs::LogGroup").items()
                     if r["Properties"].get("LogGroupName") == "/aws/eks/v6/cluster"]
    assert group["Properties"]["RetentionInDays"] == 30
    cluster_lid = next(iter(resources(v6, "AWS::EKS::Cluster")))
    assert lid in v6["Resources"][cluster_lid]["DependsOn"]


def test_nodes_pull_images_with_the_pull_only_ecr_policy(v6):
    node_role = next(p for _, p in props(v6, "AWS::IAM::Role")
                     if "ec2.amazonaws.com" in json.dumps(p["AssumeRolePolicyDocument"]))
    policies = json.dumps(node_role["ManagedPolicyArns"])
    assert "AmazonEC2ContainerRegistryPullOnly" in policies and "ReadOnly" not in policies


def test_each_anchor_default_can_be_turned_off():
    cluster = _cluster(secrets_key=False, control_plane_log_retention=None, coredns_after_nodes=False)
    assert cluster.secrets_key is None and cluster.control_plane_log_group is None
    assert cluster.cluster.node.default_child.encryption_config is None
    assert not [d for d in cluster.addons["coredns"].node.dependencies]


def test_max_pods_is_computed_and_written_to_kubelet_config(synthesized, v6):
    assert synthesized["v6"].max_pods == {"ipv6mng": 110}
    body = _user_data(v6, _one(v6, "AWS::EC2::LaunchTemplate"))
    assert "application/node.eks.aws" in body and "maxPods: 110" in body


def test_max_pods_follows_prefix_mode_and_the_vcpu_cap(synthesized):
    # m5.large with prefix delegation and custom networking: (3-1)*(10-1)*16+2 = 290, capped at 110;
    # m5.8xlarge has 32 vCPUs, so the cap is 250.
    assert synthesized["v4"].max_pods == {"general": 110, "big": 250}


def test_added_node_user_data_runs_after_nodeadm_config(v6):
    body = _user_data(v6, _one(v6, "AWS::EC2::LaunchTemplate"))
    assert MULTUS_LINE in body
    assert body.index("maxPods") < body.index(MULTUS_LINE)


def test_attributes_expose_what_other_constructs_build_on(synthesized):
    c = synthesized["v4"]
    assert isinstance(c.cluster, eks.Cluster) and c.cluster.kubectl_provider is not None
    assert set(c.nodegroups) == {"general", "big"} and set(c.launch_templates) == {"general", "big"}
    assert c.vpc_cni.enable_network_policy and not c.vpc_cni.annotate_pod_ip
    assert c.ip_family == eks.IpFamily.IP_V4 and c.pod_ipv4_egress is PodIpv4Egress.NODE_SNAT


def test_security_group_policy_manifest_is_applied_after_the_cni(v4):
    manifests = [
        (lid, p)
        for lid, p in props(v4, "Custom::AWSCDK-EKS-KubernetesResource")
        if "SecurityGroupPolicy" in json.dumps(p["Manifest"])
    ]
    assert len(manifests) == 1
    lid, _ = manifests[0]
    assert _addon(v4, "vpc-cni")[0] in v4["Resources"][lid]["DependsOn"]


# --- validation at construction (no synth) -----------------------------------------------------------


def _stack():
    app = cdk.App()
    return EksnetStack(app, "S", deploy_env=deploy_env())


def _cluster(**kwargs):
    stack = _stack()
    vpc = kwargs.pop("vpc", None) or _dual_stack_vpc(stack)
    return EksCluster(stack, "C", vpc=vpc, cluster_name=kwargs.pop("cluster_name", "c"), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "ip_family": eks.IpFamily.IP_V6,
                "vpc_cni": VpcCniConfig(
                    custom_networking=CustomNetworking({"eu-central-1a": EniSubnet("subnet-a", ("sg-1",))})
                ),
            },
            "not supported on IPv6",
        ),
        (
            {"ip_family": eks.IpFamily.IP_V6, "vpc_cni": VpcCniConfig(ip_allocation=SecondaryIpMode())},
            "always use prefix mode",
        ),
        (
            {"vpc_cni": VpcCniConfig(ip_allocation=PrefixMode()), "nodegroups": [NodeGroupSpec("old", ("m4.large",))]},
            "not a Nitro instance type",
        ),
        (
            {
                "vpc_cni": VpcCniConfig(ip_allocation=PrefixMode()),
                "nodegroups": [NodeGroupSpec("old", ("m4.large",), max_pods=20)],
            },
            "prefix mode .ENABLE_PREFIX_DELEGATION. needs Nitro",
        ),
        (
            {"ip_family": eks.IpFamily.IP_V6, "nodegroups": [NodeGroupSpec("old", ("t2.medium",))]},
            "IPv6 .a /80 prefix per node. needs Nitro",
        ),
        ({"vpc_cni": VpcCniConfig(pod_security_groups=PodSecurityGroups())}, "cannot carry security groups per pod"),
        ({"nodegroups": [NodeGroupSpec("x", ("m5.huge",))]}, "not in instance_limits.json"),
        ({"nodegroups": [NodeGroupSpec("a"), NodeGroupSpec("a")]}, "unique"),
        ({"addon_versions": {"aws-ebs-csi-driver": "v1.0.0"}}, "does not install"),
        ({"cluster_name": ""}, "must be an EKS cluster name .1-100 letters"),
        ({"addon_versions": {"eks-pod-identity-agent": "v1"}}, "it installs"),
    ],
)
def test_invalid_combinations_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _cluster(**kwargs)


def test_ipv6_cluster_refuses_an_ipv4_only_vpc():
    stack = _stack()
    vpc = ec2.Vpc(stack, "V4Only", max_azs=2)
    with pytest.raises(ValueError, match="needs a dual-stack VPC"):
        EksCluster(stack, "C", vpc=vpc, cluster_name="c", ip_family=eks.IpFamily.IP_V6)


def test_pod_ipv4_egress_must_agree_with_the_vpcs_choice():
    stack = _stack()
    eks_vpc = EksVpc(stack, "Vpc", pod_ipv4_egress=PodIpv4Egress.NAT64)
    with pytest.raises(ValueError, match="contradicts the VPC's NAT64"):
        EksCluster(
            stack,
            "C",
            vpc=eks_vpc,
            cluster_name="c",
            ip_family=eks.IpFamily.IP_V6,
            pod_ipv4_egress=PodIpv4Egress.NODE_SNAT,
        )


def test_pod_ipv4_egress_is_taken_from_an_eks_vpc():
    stack = _stack()
    eks_vpc = EksVpc(stack, "Vpc", pod_ipv4_egress=PodIpv4Egress.NAT64)
    cluster = EksCluster(stack, "C", vpc=eks_vpc, cluster_name="c", ip_family=eks.IpFamily.IP_V6)
    assert cluster.pod_ipv4_egress is PodIpv4Egress.NAT64


def test_explicit_max_pods_overrides_the_computed_value_and_unknown_types():
    # an instance type the table lacks needs max_pods, and ami_type (its architecture is unknown too)
    with pytest.raises(ValueError, match="architecture is unknown: give ami_type"):
        _cluster(nodegroups=[NodeGroupSpec("x", ("m5.huge",), max_pods=58)])
    cluster = _cluster(nodegroups=[NodeGroupSpec("x", ("m5.huge",), max_pods=58,
                                                 ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD)])
    assert cluster.max_pods == {"x": 58}


def test_mixed_instance_types_take_the_smallest_max_pods():
    cluster = _cluster(nodegroups=[NodeGroupSpec("x", ("t3.medium", "m5.large"))])
    assert cluster.max_pods == {"x": 17}


def test_security_group_policy_needs_pod_security_groups():
    cluster = _cluster()
    sg = ec2.SecurityGroup(cluster, "Sg", vpc=cluster.cluster.vpc)
    with pytest.raises(ValueError, match="does not run security groups for pods"):
        cluster.add_security_group_policy(
            "P", name="p", namespace="default", security_groups=[sg], pod_labels={"a": "b"}
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instance_types": ()}, "at least one instance type"),
        ({"min_size": 3, "desired_size": 2}, "sizes must satisfy"),
        ({"ami_type": eks.NodegroupAmiType.BOTTLEROCKET_X86_64}, "not an AL2023 type"),
        ({"max_pods": 0}, "between 1 and 737"),
    ],
)
def test_node_group_spec_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NodeGroupSpec("ng", **kwargs)


def test_an_imported_vpc_declares_that_it_is_dual_stack():
    stack = _stack()
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Imported",
        vpc_id="vpc-1",
        availability_zones=["eu-central-1a", "eu-central-1b"],
        private_subnet_ids=["subnet-1", "subnet-2"],
        public_subnet_ids=["subnet-3", "subnet-4"],
    )
    with pytest.raises(ValueError, match="needs a dual-stack VPC"):
        EksCluster(stack, "C", vpc=vpc, cluster_name="c", ip_family=eks.IpFamily.IP_V6)
    assert EksCluster(stack, "D", vpc=vpc, cluster_name="d", ip_family=eks.IpFamily.IP_V6, dual_stack=True).dual_stack


def test_oidc_provider_is_made_with_pod_identity_too(v4):
    assert _one(v4, "AWS::IAM::OIDCProvider")["ClientIdList"] == ["sts.amazonaws.com"]


def test_imds_ipv6_endpoint_stays_off_for_xen_instance_types():
    cluster = _cluster(nodegroups=[NodeGroupSpec("old", ("m4.large",))])
    lt = cluster.launch_templates["old"]
    data = cdk.Stack.of(lt).resolve(lt.node.default_child.launch_template_data)
    assert data["metadataOptions"]["httpTokens"] == "required"
    assert "httpProtocolIpv6" not in data["metadataOptions"]
    assert cluster.max_pods == {"old": 20}


@pytest.mark.parametrize("family", [eks.IpFamily.IP_V4, eks.IpFamily.IP_V6])
def test_clusters_of_both_families_refuse_ipv6_only_private_subnets(family):
    # EKS user guide: an IPv6 cluster and its nodes need dual-stack subnets, not IPv6-only ones.
    stack = _stack()
    eks_vpc = EksVpc(stack, "Vpc", pod_ipv4_egress=PodIpv4Egress.NAT64, ipv6_only_private_subnets=True)
    with pytest.raises(ValueError, match="IPv6-only.*dual-stack private subnets"):
        EksCluster(stack, "C", vpc=eks_vpc, cluster_name="c", ip_family=family)


def test_a_vpc_with_subnets_in_one_zone_is_refused():
    stack = _stack()
    vpc = ec2.Vpc(stack, "OneZone", ip_protocol=ec2.IpProtocol.DUAL_STACK, max_azs=1, nat_gateways=1)
    with pytest.raises(ValueError, match="at least two availability zones"):
        EksCluster(stack, "C", vpc=vpc, cluster_name="c", ip_family=eks.IpFamily.IP_V6)


def test_node_groups_and_fargate_profiles_added_later_are_checked_at_synth():
    stack = _stack()
    eks_vpc = EksVpc(stack, "Vpc", flow_logs=False)
    cluster = EksCluster(stack, "C", vpc=eks_vpc, cluster_name="c", ip_family=eks.IpFamily.IP_V6)
    only6 = ec2.PrivateSubnet(stack, "Only6", availability_zone="eu-central-1a", vpc_id=eks_vpc.vpc_id,
                              cidr_block="192.168.224.0/24", ipv6_cidr_block="2001:db8::/64")
    only6.node.default_child.ipv6_native = True
    assert not cluster.node.validate()
    eks.FargateProfile(stack, "Pods", cluster=cluster.cluster, selectors=[eks.Selector(namespace="apps")],
                       vpc=eks_vpc.vpc, subnet_selection=ec2.SubnetSelection(subnets=[only6]))
    eks.Nodegroup(stack, "Extra", cluster=cluster.cluster, subnets=ec2.SubnetSelection(subnets=[only6]))
    errors = cluster.node.validate()
    assert len(errors) == 2 and all("IPv6-only subnet" in e for e in errors), errors
    assert any("Fargate profile" in e for e in errors) and any("managed node group" in e for e in errors)


def test_ipv6_clusters_refuse_xen_instance_types():
    # EKS: IPv6 needs Nitro instances (the VPC CNI assigns a /80 prefix per node).
    with pytest.raises(ValueError, match="not a Nitro instance type"):
        _cluster(ip_family=eks.IpFamily.IP_V6, nodegroups=[NodeGroupSpec("old", ("m4.large",))])


def test_custom_networking_needs_an_eni_subnet_in_every_node_zone():
    config = VpcCniConfig(custom_networking=CustomNetworking({"eu-central-1a": EniSubnet("subnet-a", ("sg-1",))}))
    with pytest.raises(ValueError, match=r"no EniSubnet for zone\(s\) \['eu-central-1b'\]"):
        _cluster(vpc_cni=config)


def test_cluster_name_follows_eks_naming():
    with pytest.raises(ValueError, match="letters, digits"):
        _cluster(cluster_name="my cluster")


def test_pod_security_groups_lower_max_pods_by_the_trunk_eni():
    cluster = _cluster(
        vpc_cni=VpcCniConfig(pod_security_groups=PodSecurityGroups()), nodegroups=[NodeGroupSpec("sg", ("m5.large",))]
    )
    assert cluster.max_pods == {"sg": 20}


def test_a_graviton_node_group_gets_the_arm_al2023_ami():
    cluster = _cluster(nodegroups=[NodeGroupSpec("arm", ("m7g.large", "c7g.large")), NodeGroupSpec("x86")])
    assert cluster.ami_types == {"arm": eks.NodegroupAmiType.AL2023_ARM_64_STANDARD,
                                 "x86": eks.NodegroupAmiType.AL2023_X86_64_STANDARD}
    cfn = cluster.nodegroups["arm"].node.default_child
    assert cfn.ami_type == "AL2023_ARM_64_STANDARD"


def test_a_node_group_mixing_architectures_is_refused():
    with pytest.raises(ValueError, match=r"two architectures .*split them"):
        _cluster(nodegroups=[NodeGroupSpec("mixed", ("m7g.large", "m5.large"))])


def test_an_ami_type_of_the_other_architecture_is_refused():
    spec = NodeGroupSpec("arm", ("m7g.large",), ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD)
    with pytest.raises(ValueError, match="built for x86_64 but .* are arm64: use AL2023_ARM_64_STANDARD"):
        _cluster(nodegroups=[spec])


def test_multi_nic_mode_renders_its_flag_and_pins_the_addon_to_1_20():
    cluster = _cluster(ip_family=eks.IpFamily.IP_V4, vpc_cni=VpcCniConfig(multi_nic=True),
                       nodegroups=[NodeGroupSpec("net", ("c6in.32xlarge",))])
    cfn = cluster.addons["vpc-cni"].node.default_child
    assert cfn.addon_version == "v1.20.0-eksbuild.1"
    config = cdk.Stack.of(cfn).resolve(cfn.configuration_values)
    assert '"ENABLE_MULTI_NIC":"true"' in json.dumps(config, separators=(",", ":")).replace("\\", "")


def test_multi_nic_mode_refuses_single_card_types_and_older_addons():
    with pytest.raises(ValueError, match="m5.large has one network card"):
        _cluster(vpc_cni=VpcCniConfig(multi_nic=True), nodegroups=[NodeGroupSpec("x", ("m5.large",))])
    with pytest.raises(ValueError, match=r"needs the VPC CNI add-on v1.20.0-eksbuild.1 or later"):
        _cluster(vpc_cni=VpcCniConfig(multi_nic=True), nodegroups=[NodeGroupSpec("x", ("c6in.32xlarge",))],
                 addon_versions={"vpc-cni": "v1.19.6-eksbuild.1"})
    assert _cluster(vpc_cni=VpcCniConfig(multi_nic=True), nodegroups=[NodeGroupSpec("x", ("c6in.32xlarge",))],
                    addon_versions={"vpc-cni": "v1.21.1-eksbuild.3"}).addons["vpc-cni"]


def test_the_cluster_role_acknowledges_exactly_the_managed_policies_it_has(synthesized):
    def acknowledged(cluster) -> set[str]:
        rules = {rule for e in cluster.cluster_role.node.metadata if e.type == nag.ACKNOWLEDGED_RULES for rule in e.data}
        return {r.rsplit("/", 1)[1].rstrip("]") for r in rules if "AwsSolutions-IAM4[Policy::" in r}

    assert acknowledged(synthesized["v6"]) == {"AmazonEKSClusterPolicy"}
    assert acknowledged(synthesized["v4"]) == {"AmazonEKSClusterPolicy", "AmazonEKSVPCResourceController"}
