"""Welcome extra: add IPv6 to an existing VPC (``AWS::EC2::VPCCidrBlock``, ``AWS::EC2::SubnetCidrBlock``)."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import custom_resources as cr
from eksnet import nag
from eksnet.environment import EksnetStack
from eksnet.vpc import PodIpv4Egress
from eksnet.vpc_import import Ipv6ForImportedVpc
from support.cfn import ref_id, resources
from support.envs import deploy_env
from vpc_testkit import lint_templates, new_app

AZS = ["eu-central-1a", "eu-central-1b"]
PUBLIC = ["subnet-0a0a0a0a0a0a0a0a1", "subnet-0b0b0b0b0b0b0b0b1"]
PRIVATE = ["subnet-0a0a0a0a0a0a0a0a2", "subnet-0b0b0b0b0b0b0b0b2"]
PUBLIC_RT = "rtb-0c0c0c0c0c0c0c0c1"  # both public subnets share one route table
PRIVATE_RTS = ["rtb-0a0a0a0a0a0a0a0a2", "rtb-0b0b0b0b0b0b0b0b2"]
IGW = "igw-0d0d0d0d0d0d0d0d1"


def existing(stack: cdk.Stack, *, route_tables: bool = True, public: bool = True) -> ec2.IVpc:
    return ec2.Vpc.from_vpc_attributes(
        stack, "Existing", vpc_id="vpc-0123456789abcdef0", availability_zones=AZS,
        public_subnet_ids=PUBLIC if public else None,
        public_subnet_route_table_ids=[PUBLIC_RT, PUBLIC_RT] if public and route_tables else None,
        private_subnet_ids=PRIVATE,
        private_subnet_route_table_ids=PRIVATE_RTS if route_tables else None,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    app = new_app(str(tmp_path_factory.mktemp("cdk")))
    stack = EksnetStack(app, "ImportTest", deploy_env=deploy_env())
    ipv6 = Ipv6ForImportedVpc(stack, "Ipv6", vpc=existing(stack), internet_gateway_id=IGW)
    nag.add_checks(app)
    return app.synth().get_stack_by_name("ImportTest").template, ipv6


def test_the_template_passes_cfn_lint(built, tmp_path):
    findings = lint_templates(tmp_path, {"ImportTest": built[0]})
    assert not findings, "\n".join(map(str, findings))


def test_the_vpc_gets_an_amazon_provided_ipv6_block(built):
    (block,) = resources(built[0], "AWS::EC2::VPCCidrBlock").values()
    assert block["Properties"] == {"AmazonProvidedIpv6CidrBlock": True, "VpcId": "vpc-0123456789abcdef0"}


def test_every_subnet_gets_its_own_slash_64_of_that_block(built):
    template, _ = built
    (lookup_lid,) = resources(template, "Custom::AWS")
    found = {}
    for p in (r["Properties"] for r in resources(template, "AWS::EC2::SubnetCidrBlock").values()):
        index, cidr = p["Ipv6CidrBlock"]["Fn::Select"]
        block, count, bits = cidr["Fn::Cidr"]
        assert (count, bits) == (256, "64")
        assert block["Fn::GetAtt"] == [lookup_lid, "Vpcs.0.Ipv6CidrBlockAssociationSet.0.Ipv6CidrBlock"]
        found[p["SubnetId"]] = index
    assert found == {subnet: i for i, subnet in enumerate(PUBLIC + PRIVATE)}


def test_the_block_is_read_back_after_it_is_associated(built):
    template, _ = built
    (block_lid,) = resources(template, "AWS::EC2::VPCCidrBlock")
    (lookup,) = resources(template, "Custom::AWS").values()
    assert block_lid in lookup["DependsOn"]
    create = lookup["Properties"]["Create"]
    assert "describeVpcs" in create and "vpc-0123456789abcdef0" in create


def test_a_known_block_needs_no_lookup():
    stack = _stack()
    ipv6 = Ipv6ForImportedVpc(stack, "Ipv6", vpc=existing(stack), internet_gateway_id=IGW,
                              ipv6_cidr_block="2001:db8:1200::/56")
    assert ipv6.ipv6_cidr_block == "2001:db8:1200::/56"
    assert not [c for c in stack.node.find_all() if isinstance(c, cr.AwsCustomResource)]


def test_public_route_tables_send_ipv6_to_the_internet_gateway_once_each(built):
    routes = [r["Properties"] for r in resources(built[0], "AWS::EC2::Route").values()]
    public = [r for r in routes if r["RouteTableId"] == PUBLIC_RT]
    assert len(public) == 1 and public[0] == {"RouteTableId": PUBLIC_RT, "DestinationIpv6CidrBlock": "::/0",
                                             "GatewayId": IGW}


def test_private_route_tables_send_ipv6_to_a_new_egress_only_gateway(built):
    template, _ = built
    (eigw,) = resources(template, "AWS::EC2::EgressOnlyInternetGateway")
    routes = {r["Properties"]["RouteTableId"]: r["Properties"] for r in resources(template, "AWS::EC2::Route").values()}
    for table in PRIVATE_RTS:
        assert routes[table]["DestinationIpv6CidrBlock"] == "::/0"
        assert ref_id(routes[table]["EgressOnlyInternetGatewayId"]) == eigw


def test_pods_reach_ipv4_by_node_snat_since_dns64_cannot_be_set_on_foreign_subnets(built):
    assert built[1].pod_ipv4_egress is PodIpv4Egress.NODE_SNAT


def _stack() -> cdk.Stack:
    return EksnetStack(cdk.App(), "ImportTest", deploy_env=deploy_env())


def test_public_subnets_without_an_internet_gateway_id_are_refused():
    stack = _stack()
    with pytest.raises(ValueError, match="pass internet_gateway_id"):
        Ipv6ForImportedVpc(stack, "Ipv6", vpc=existing(stack))


def test_subnets_without_route_table_ids_are_refused():
    stack = _stack()
    with pytest.raises(ValueError, match="has no route table id: pass public_subnet_route_table_ids"):
        Ipv6ForImportedVpc(stack, "Ipv6", vpc=existing(stack, route_tables=False), internet_gateway_id=IGW)


def test_a_first_block_index_without_room_is_refused():
    stack = _stack()
    with pytest.raises(ValueError, match=r"first_block_index must leave room for 2 /64s .*\(0..254\), got 255"):
        Ipv6ForImportedVpc(stack, "Ipv6", vpc=existing(stack, public=False), first_block_index=255)
