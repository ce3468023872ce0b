"""Subnet CIDR reservations that deploy in every region: the CloudFormation type where it exists, else EC2's API.

A subnet CIDR reservation keeps EC2 from handing a range of a subnet out as primary addresses, so pod
addresses (delegated prefixes or explicitly assigned addresses) never collide with ENIs'. CloudFormation's
``AWS::EC2::SubnetCidrReservation`` is not registered in every region: cfn-lint 1.58's per-region schemas
list it in us-east-1 and us-west-2 and a few isolated partitions only, and a deploy that names it in
eu-central-1 fails. The EC2 API (``CreateSubnetCidrReservation``) exists everywhere, so elsewhere the same
reservation is a custom resource (aws-cdk-lib's ``AwsCustomResource``) that creates it on stack create,
replaces it when its properties change and deletes it on stack delete; its IAM allows only those two actions,
and only on the reserved subnets (one policy per stack, a statement per subnet).

``SubnetCidrReservation(scope, id, subnet=..., cidr=..., reservation_type=...)`` picks by the stack's region;
``reservation_id`` is the reservation's id either way. ``CFN_TYPE_REGIONS`` is the table it reads
(``tests/vpc/test_cidr_reservation.py`` checks it against cfn-lint's own schemas for every region).
"""

from __future__ import annotations

import enum

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr

from constructs import Construct
from eksnet import nag, typecheck, validate

# Regions whose CloudFormation registers AWS::EC2::SubnetCidrReservation (cfn-lint 1.58's per-region schemas).
CFN_TYPE_REGIONS: frozenset[str] = frozenset({
    "us-east-1", "us-west-2",
    "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "us-isob-west-1", "us-isof-east-1", "us-isof-south-1",
    "eu-isoe-west-1", "eusc-de-east-1",
})

_LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class CidrReservationType(enum.Enum):
    """Reservation types: both keep EC2 from handing the range out as primary addresses.

    PREFIX: EC2 assigns IPv4 /28 (IPv6 /80) prefixes from the range (prefix delegation on an ENI).
    EXPLICIT: addresses from the range are assigned one by one with ``AssignPrivateIpAddresses``.
    """

    PREFIX = "prefix"
    EXPLICIT = "explicit"


def cfn_type_available(region: str) -> bool:
    """Whether ``region``'s CloudFormation has ``AWS::EC2::SubnetCidrReservation`` (False for an unknown region)."""
    return not cdk.Token.is_unresolved(region) and region in CFN_TYPE_REGIONS


class SubnetCidrReservation(Construct):
    """One CIDR reserved in one subnet, made the way the stack's region can deploy.

    Keyword arguments: ``subnet`` (an ``ec2.ISubnet``), ``cidr`` (IPv4 or IPv6 CIDR inside the subnet; a
    token such as ``Fn::Select`` over ``Fn::Cidr`` is fine), ``reservation_type`` (``CidrReservationType``),
    ``description`` [None].

    Attributes: ``native`` (True when the CloudFormation type is used), ``reservation_id`` (the
    reservation's id, a token), ``resource`` (the ``ec2.CfnSubnetCidrReservation`` or the
    ``cr.AwsCustomResource``). An environment-agnostic stack (region unknown at synth) gets the custom
    resource, which works in every region.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        subnet: ec2.ISubnet,
        cidr: str,
        reservation_type: CidrReservationType,
        description: str | None = None,
    ) -> None:
        typecheck.check_call("SubnetCidrReservation", SubnetCidrReservation.__init__, locals())
        if not cdk.Token.is_unresolved(cidr):
            validate.network(cidr, "SubnetCidrReservation.cidr")
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        self.native = cfn_type_available(stack.region)
        self.resource: ec2.CfnSubnetCidrReservation | cr.AwsCustomResource
        if self.native:
            res = ec2.CfnSubnetCidrReservation(
                self, "Resource", subnet_id=subnet.subnet_id, cidr=cidr,
                reservation_type=reservation_type.value, description=description,
            )
            self.resource = res
            self.reservation_id: str = res.ref
            return

        params = {"SubnetId": subnet.subnet_id, "Cidr": cidr, "ReservationType": reservation_type.value}
        if description:
            params["Description"] = description
        create = cr.AwsSdkCall(
            service="EC2", action="createSubnetCidrReservation", parameters=params,
            physical_resource_id=cr.PhysicalResourceId.from_response("SubnetCidrReservation.SubnetCidrReservationId"),
            output_paths=["SubnetCidrReservation.SubnetCidrReservationId"],
        )
        subnet_arn = stack.format_arn(service="ec2", resource="subnet", resource_name=subnet.subnet_id)
        statement = iam.PolicyStatement(
            actions=["ec2:CreateSubnetCidrReservation", "ec2:DeleteSubnetCidrReservation"], resources=[subnet_arn])
        # aws-cdk-lib's AwsCustomResource function and its role are one per stack (a singleton), so a policy per
        # reservation would grant nothing more precisely than one policy for all: the stack's first reservation
        # makes it, the others add their subnet's statement to it and depend on it. One policy instead of one per
        # reservation (each costs synth time in aws-cdk-lib's template validation, and an IAM call at deploy).
        first = stack.node.try_find_child(_FIRST_POLICY_MARK)
        access = ({"policy": cr.AwsCustomResourcePolicy.from_statements([statement])} if first is None
                  else {"role": first.role})
        res = cr.AwsCustomResource(
            self, "Resource",
            resource_type="Custom::SubnetCidrReservation",
            on_create=create,
            # A changed CIDR, type or description makes a new reservation (a new physical id); CloudFormation
            # then deletes the old one, like the native type's replacement.
            on_update=create,
            on_delete=cr.AwsSdkCall(
                service="EC2", action="deleteSubnetCidrReservation",
                parameters={"SubnetCidrReservationId": cr.PhysicalResourceIdReference()},
            ),
            **access,
            # The Lambda runtime's AWS SDK has had these calls since 2021: no download from npm at deploy time.
            install_latest_aws_sdk=False,
            log_group=_provider_log_group(stack),
        )
        if first is None:
            _FirstPolicy(stack, res)
        else:
            first.policy.add_statements(statement)
            res.node.add_dependency(first.policy)  # the function may call EC2 only once its role allows it
        self.resource = res
        self.reservation_id = res.get_response_field("SubnetCidrReservation.SubnetCidrReservationId")
        nag.acknowledge_custom_resource_provider(stack)


_FIRST_POLICY_MARK = "SubnetCidrReservationAccess"


class _FirstPolicy(Construct):
    """Marks the stack's reservation policy (the first reservation's) and the AwsCustomResource function's role."""

    def __init__(self, stack: cdk.Stack, first: cr.AwsCustomResource) -> None:
        super().__init__(stack, _FIRST_POLICY_MARK)
        self.policy: iam.Policy = first.node.find_child("CustomResourcePolicy")  # type: ignore[assignment]
        self.role: iam.IRole = first.grant_principal  # type: ignore[assignment]


def _provider_log_group(stack: cdk.Stack) -> logs.ILogGroup:
    """The one log group of the stack's AwsCustomResource function, with a retention (not kept forever)."""
    existing = stack.node.try_find_child("SubnetCidrReservationLogs")
    if existing is not None:
        return existing  # type: ignore[return-value]
    return logs.LogGroup(stack, "SubnetCidrReservationLogs", retention=_LOG_RETENTION,
                         removal_policy=cdk.RemovalPolicy.DESTROY)
