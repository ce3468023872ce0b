"""Add IPv6 to a VPC this app does not own (an existing, IPv4-only VPC imported into CDK).

IPv6 EKS clusters need a dual-stack VPC, and a running VPC cannot be recreated just for that.
CloudFormation can still add to it what ``EksVpc`` gets from ``ec2.Vpc(ip_protocol=DUAL_STACK)``:
``AWS::EC2::VPCCidrBlock`` (an Amazon-provided /56; CloudFormation returns no attribute with its
value, so a custom resource reads it back with ``ec2:DescribeVpcs``), one ``AWS::EC2::SubnetCidrBlock`` (/64) per
subnet, an Egress-only Internet gateway, and ``::/0`` routes (public: Internet gateway; private: EIGW).

What CloudFormation cannot change on subnets it does not own: ``AssignIpv6AddressOnCreation`` and
``EnableDns64``. Set them with ``aws ec2 modify-subnet-attribute`` after deploying, or let nodes ask
for addresses (EKS managed node groups' launch templates do). Because DNS64 cannot be turned on
here, the only pod IPv4 egress offered is node SNAT (``Ipv6ForImportedVpc.pod_ipv4_egress``).

Example::

    vpc = ec2.Vpc.from_vpc_attributes(stack, "Existing", vpc_id="vpc-0abc", availability_zones=[...],
        public_subnet_ids=[...], public_subnet_route_table_ids=[...],
        private_subnet_ids=[...], private_subnet_route_table_ids=[...])
    Ipv6ForImportedVpc(stack, "Ipv6", vpc=vpc, internet_gateway_id="igw-0abc")
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import custom_resources as cr

from constructs import Construct
from eksnet import nag, typecheck
from eksnet.vpc import PodIpv4Egress

_MAX_SUBNETS = 256  # /64s in the /56


class Ipv6ForImportedVpc(Construct):
    """Dual-stack an existing VPC: IPv6 /56, a /64 per public and private subnet, EIGW and ``::/0`` routes.

    Keyword arguments (defaults in brackets):

    - ``vpc``: the imported VPC (``ec2.Vpc.from_vpc_attributes``) with its public and private
      subnets and their route table ids (``*_subnet_route_table_ids``).
    - ``internet_gateway_id`` [None]: the VPC's Internet gateway; required when it has public subnets.
    - ``ipv6_cidr_block`` [None: read after association]: the /56 when it is known in advance (e.g. one
      already associated to the VPC); then no lookup resource is made.
    - ``first_block_index`` [0]: index of the first /64 handed out (public subnets first, then private),
      to leave room for subnets that already have IPv6 blocks.

    Attributes: ``vpc_cidr_block`` (the ``CfnVPCCidrBlock``), ``ipv6_cidr_block`` (token of the /56),
    ``subnet_cidr_blocks`` (subnet id -> ``CfnSubnetCidrBlock``), ``egress_only_internet_gateway``,
    ``routes`` (route table id -> the ``::/0`` ``CfnRoute``), ``pod_ipv4_egress`` (always NODE_SNAT).
    """

    def __init__(self, scope: Construct, id: str, *, vpc: ec2.IVpc, internet_gateway_id: str | None = None,
                 first_block_index: int = 0, ipv6_cidr_block: str | None = None) -> None:
        typecheck.check_call("Ipv6ForImportedVpc", Ipv6ForImportedVpc.__init__, locals())
        super().__init__(scope, id)
        public, private = list(vpc.public_subnets), list(vpc.private_subnets)
        if not public and not private:
            raise ValueError("the imported VPC lists no public or private subnets: pass public_subnet_ids / "
                             "private_subnet_ids to ec2.Vpc.from_vpc_attributes")
        if public and not internet_gateway_id:
            raise ValueError("public subnets need a ::/0 route to the VPC's Internet gateway: pass internet_gateway_id")
        for s in public + private:
            if not _route_table_id(s):
                raise ValueError(f"subnet {s.subnet_id} has no route table id: pass public_subnet_route_table_ids / "
                                 f"private_subnet_route_table_ids to ec2.Vpc.from_vpc_attributes")
        if not 0 <= first_block_index <= _MAX_SUBNETS - len(public) - len(private):
            raise ValueError(f"first_block_index must leave room for {len(public) + len(private)} /64s in the /56 "
                             f"(0..{_MAX_SUBNETS - len(public) - len(private)}), got {first_block_index}")

        self.pod_ipv4_egress = PodIpv4Egress.NODE_SNAT
        self.vpc_cidr_block = ec2.CfnVPCCidrBlock(self, "Ipv6Block", vpc_id=vpc.vpc_id,
                                                  amazon_provided_ipv6_cidr_block=True)
        self.ipv6_cidr_block: str = ipv6_cidr_block or self._look_up_block(vpc.vpc_id)
        blocks = cdk.Fn.cidr(self.ipv6_cidr_block, _MAX_SUBNETS, "64")
        self.subnet_cidr_blocks: dict[str, ec2.CfnSubnetCidrBlock] = {}
        for i, subnet in enumerate(public + private):
            kind = "Public" if i < len(public) else "Private"
            n = i + 1 if i < len(public) else i - len(public) + 1
            self.subnet_cidr_blocks[subnet.subnet_id] = ec2.CfnSubnetCidrBlock(
                self, f"{kind}Subnet{n}Ipv6Block", subnet_id=subnet.subnet_id,
                ipv6_cidr_block=cdk.Fn.select(first_block_index + i, blocks))

        self.egress_only_internet_gateway = ec2.CfnEgressOnlyInternetGateway(self, "EgressOnlyGateway",
                                                                             vpc_id=vpc.vpc_id)
        self.routes: dict[str, ec2.CfnRoute] = {}
        for i, subnet in enumerate(public + private):
            table = subnet.route_table.route_table_id
            if table in self.routes:  # subnets sharing a route table share its route
                continue
            kind, n = ("Public", i + 1) if i < len(public) else ("Private", i - len(public) + 1)
            route = ec2.CfnRoute(
                self, f"{kind}Subnet{n}DefaultRoute6", route_table_id=table, destination_ipv6_cidr_block="::/0",
                gateway_id=internet_gateway_id if kind == "Public" else None,
                egress_only_internet_gateway_id=self.egress_only_internet_gateway.attr_id if kind == "Private"
                else None,
            )
            route.node.add_dependency(self.vpc_cidr_block)
            self.routes[table] = route

    def _look_up_block(self, vpc_id: str) -> str:
        """Read the /56 Amazon gave the VPC (first IPv6 association) once the association exists."""
        path = "Vpcs.0.Ipv6CidrBlockAssociationSet.0.Ipv6CidrBlock"
        call = cr.AwsSdkCall(
            service="EC2", action="describeVpcs", parameters={"VpcIds": [vpc_id]}, output_paths=[path],
            physical_resource_id=cr.PhysicalResourceId.of(f"{vpc_id}-ipv6-block"))
        lookup = cr.AwsCustomResource(
            self, "Ipv6BlockLookup", on_create=call, on_update=call, install_latest_aws_sdk=False,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE))
        lookup.node.add_dependency(self.vpc_cidr_block)
        nag.acknowledge_as(lookup, "Ipv6ForImportedVpc", "ipv6-block-lookup", findings=["Resource::*"])
        nag.acknowledge_custom_resource_provider(cdk.Stack.of(self))
        self.ipv6_block_lookup = lookup
        return lookup.get_response_field(path)


def _route_table_id(subnet: ec2.ISubnet) -> str | None:
    """The subnet's route table id, or None when the import did not say (jsii then fails to read it)."""
    try:
        return subnet.route_table.route_table_id if subnet.route_table is not None else None
    except RuntimeError:
        return None
