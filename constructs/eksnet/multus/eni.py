"""Multus ENIs attached to every node by an Auto Scaling lifecycle hook and a Lambda (MISSION.md section 4).

The seed creates Multus ENIs by hand (a CloudFormation template, then "Attach
network interface" in the console). Nodes come and go with their Auto Scaling
group, so here the group's lifecycle hooks hold each launching node in
``Pending:Wait`` while EventBridge hands the action to a Lambda that creates,
tags, attaches (device index 1..n) and configures one ENI per Multus subnet of the
node's zone, then completes the action; on termination the ENIs go with the instance
(delete-on-termination) and the action always continues. Nodes already running when
the hooks appear are reconciled at deploy time by a custom resource the same function
answers. A second, scheduled Lambda sweeps ENIs leaked by failures. The handlers live in
``lambda/multus_eni/`` (see ``lambda/README.md`` and ``docs/multus_eni.md``).

Example::

    attacher = MultusEniAttacher(self, "MultusEnis",
        cluster_name="myipv6cluster",
        subnets=vpc.multus_subnets,            # {zone: [ISubnet, ...]} in device order
        security_group=vpc.multus_security_group,
        auto_scaling_groups=[self_managed_asg],
        nodegroups=[NodegroupRef("myipv6cluster", "multus-nodes")],
    )
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr

from constructs import Construct
from eksnet import nag, typecheck, validate
from eksnet.multus.nad import MultusTypeError, _check_fields

# The Lambda asset: package data of eksnet (``eksnet/multus/lambda_multus_eni``: in a checkout a link to
# ``lambda/multus_eni``, in an installed wheel a copy), found from the installed package, never the working directory.
LAMBDA_ASSET = Path(str(resources.files("eksnet.multus").joinpath("lambda_multus_eni"))).resolve()
ASSET_EXCLUDE = ["__pycache__", "*.pyc"]  # importing the handler in tests must not change the asset hash

# Tag keys the Lambda writes (lambda/multus_eni/multus_eni_ops.py): the IAM conditions below rely on them.
TAG_MULTUS = "multus"
TAG_CLUSTER = "cluster"
TAG_NO_MANAGE = "node.k8s.amazonaws.com/no_manage"
TAG_INSTANCE_ARN = "eksnet.io/instance-arn"
TAG_DEVICE_INDEX = "eksnet.io/device-index"

LAUNCH_DETAIL_TYPE = "EC2 Instance-launch Lifecycle Action"
TERMINATE_DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"
LAUNCH_HOOK_NAME = "eksnet-multus-eni-launch"
TERMINATE_HOOK_NAME = "eksnet-multus-eni-terminate"
# A launch nobody answered gets no Multus ENIs: ABANDON (the group replaces the node). A termination must never
# be cut short: ABANDON there would also skip the group's other terminate hooks (a node drain among them).
DEFAULT_RESULTS = {"LAUNCHING": "ABANDON", "TERMINATING": "CONTINUE"}

# The newest Python runtime of aws-cdk-lib 2.275 (cdk-nag's AwsSolutions-L1 wants the newest of its family).
RUNTIME = lambda_.Runtime.PYTHON_3_14

# The lifecycle function's timeout. The handler (lambda/multus_eni/multus_eni_budget.py) stops starting EC2 calls
# when fewer than its reserve (the worst case of one call in flight, a waiter pause and the final answer: about
# 1 min 45 s, 1 min 55 s for the deploy-time reconciliation) would be left, so this leaves it a minute of work;
# tests/multus_eni checks the two against each other.
FUNCTION_TIMEOUT = cdk.Duration.minutes(3)
# Lambda's asynchronous retries of a failed invocation wait about one minute, then two (Lambda developer guide,
# "Error handling and automatic retries"): retry k starts after k * 60 s more.
_ASYNC_RETRY_DELAYS = (60, 120)

_MAX_PREFIXES = 16


@dataclass(frozen=True)
class NodegroupRef:
    """A managed node group by name, when the ``aws_eks_v2.Nodegroup`` object is not at hand."""

    cluster_name: str
    nodegroup_name: str

    def __post_init__(self) -> None:
        _check_fields(self)


class MultusEniAttacher(Construct):
    """Lifecycle hooks, an EventBridge rule, the Multus ENI Lambda, its sweeper, a DLQ and least-privilege IAM.

    :param cluster_name: EKS cluster name; written into the ``cluster`` tag of every ENI and the IAM conditions.
    :param subnets: zone -> Multus subnets in device order (``EksVpc.multus_subnets`` has this shape); a node in
        zone Z gets ``len(subnets[Z])`` ENIs at device indexes ``first_device_index``... A node in a zone not
        listed is refused (its launch is ABANDONed).
    :param security_group: the Multus security group put on every ENI.
    :param auto_scaling_groups: self-managed node groups. Default: none. The hooks go into the group's own
        ``LifecycleHookSpecificationList`` so that its first instances are already held.
    :param nodegroups: managed node groups (``aws_eks_v2.Nodegroup`` or ``NodegroupRef``). Default: none. EKS names
        their Auto Scaling group itself and CloudFormation does not expose it, so a custom resource reads it with
        ``eks:DescribeNodegroup`` at deploy time and the hooks are ``AWS::AutoScaling::LifecycleHook`` resources on it
        (nodes launched before the hooks exist get their ENIs from the deploy-time reconciliation, ``reconciliation``).
    :param ipv4_prefix_count: IPv4 /28 prefixes delegated to each ENI (0-16). Default: 0.
    :param ipv6_prefix_count: IPv6 /80 prefixes delegated to each ENI (0-16; the subnets need IPv6). Default: 0.
    :param first_device_index: device index of the first Multus ENI (1-31). Default: 1 (eth0 stays the VPC CNI's).
    :param heartbeat_timeout: how long a node waits in ``Pending:Wait``/``Terminating:Wait`` before the default
        result applies (launch: ABANDON, terminate: CONTINUE). At least the function's timeout plus a minute (4 min),
        at most 2 h; the function's asynchronous retries and event age are derived from it so that every attempt
        ends within it. Default: 5 minutes.
    :param sweep_interval: how often the sweeper runs. Default: 30 minutes.
    :param log_retention: retention of both functions' log groups. Default: one month.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster_name: str,
        subnets: Mapping[str, Sequence[ec2.ISubnet]],
        security_group: ec2.ISecurityGroup,
        auto_scaling_groups: Sequence[autoscaling.AutoScalingGroup] = (),
        nodegroups: Sequence[eks.Nodegroup | NodegroupRef] = (),
        ipv4_prefix_count: int = 0,
        ipv6_prefix_count: int = 0,
        first_device_index: int = 1,
        heartbeat_timeout: cdk.Duration | None = None,
        sweep_interval: cdk.Duration | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        typecheck.check_call("MultusEniAttacher", MultusEniAttacher.__init__, locals(), error=MultusTypeError)
        super().__init__(scope, id)
        heartbeat_timeout = heartbeat_timeout or cdk.Duration.minutes(5)
        sweep_interval = sweep_interval or cdk.Duration.minutes(30)
        _validate(cluster_name, subnets, auto_scaling_groups, nodegroups, ipv4_prefix_count, ipv6_prefix_count,
                  first_device_index, heartbeat_timeout)
        stack = cdk.Stack.of(self)
        self.cluster_name = cluster_name
        self.subnets = {az: list(s) for az, s in subnets.items()}
        self.security_group = security_group

        # --- the Auto Scaling groups and their hooks -----------------------------------------------------------
        self.group_names: list[str] = []
        for asg in auto_scaling_groups:
            _add_hook_specifications(asg, heartbeat_timeout)
            self.group_names.append(asg.auto_scaling_group_name)
        self.lifecycle_hooks: list[autoscaling.CfnLifecycleHook] = []
        self.nodegroup_resolvers: list[cr.AwsCustomResource] = []
        for i, ng in enumerate(nodegroups):
            group_name = self._resolve_nodegroup_asg(f"Nodegroup{i}", ng)
            self.group_names.append(group_name)
            for hook_name, transition in ((LAUNCH_HOOK_NAME, "LAUNCHING"), (TERMINATE_HOOK_NAME, "TERMINATING")):
                self.lifecycle_hooks.append(autoscaling.CfnLifecycleHook(
                    self, f"Nodegroup{i}{transition.title()}Hook",
                    auto_scaling_group_name=group_name, lifecycle_hook_name=hook_name,
                    lifecycle_transition=f"autoscaling:EC2_INSTANCE_{transition}",
                    default_result=DEFAULT_RESULTS[transition], heartbeat_timeout=heartbeat_timeout.to_seconds(),
                ))

        # --- queue, logs, roles, functions ---------------------------------------------------------------------
        self.dead_letter_queue = sqs.Queue(
            self, "DeadLetterQueue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        nag.acknowledge_as(self.dead_letter_queue, "MultusEniAttacher", "dead-letter-queue")

        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"Multus ENI lifecycle Lambda of cluster {cluster_name}")
        self.sweeper_role = iam.Role(self, "SweeperRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                                     description=f"Multus ENI sweeper Lambda of cluster {cluster_name}")
        self._grant_lifecycle(stack)
        self._grant_sweeper(stack)

        code = lambda_.Code.from_asset(str(LAMBDA_ASSET), exclude=ASSET_EXCLUDE)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention,
                                       removal_policy=cdk.RemovalPolicy.DESTROY)
        self.sweeper_log_group = logs.LogGroup(self, "SweeperLogGroup", retention=log_retention,
                                               removal_policy=cdk.RemovalPolicy.DESTROY)
        # The roles are ours, not AWSLambdaBasicExecutionRole: without these grants the functions cannot write a line.
        self.log_group.grant_write(self.role)
        self.sweeper_log_group.grant_write(self.sweeper_role)
        environment = {
            "CLUSTER_NAME": cluster_name,
            "MULTUS_SUBNETS": stack.to_json_string({az: [s.subnet_id for s in ss] for az, ss in self.subnets.items()}),
            "MULTUS_GROUP_NAMES": stack.to_json_string(self.group_names),
            "MULTUS_LAUNCH_HOOK": LAUNCH_HOOK_NAME,
            "MULTUS_TERMINATE_HOOK": TERMINATE_HOOK_NAME,
            "MULTUS_SECURITY_GROUP_IDS": security_group.security_group_id,
            "MULTUS_IPV4_PREFIX_COUNT": str(ipv4_prefix_count),
            "MULTUS_IPV6_PREFIX_COUNT": str(ipv6_prefix_count),
            "MULTUS_FIRST_DEVICE_INDEX": str(first_device_index),
            "MULTUS_DETACH_TIMEOUT_SECONDS": "60",
        }
        # Every attempt must end within the heartbeat: the event is dropped (to the DLQ) once too old to finish in
        # time, and Lambda retries a failed invocation only as often as a retry still fits.
        self.retry_attempts, self.max_event_age = async_limits(heartbeat_timeout)
        json_logs = {"logging_format": lambda_.LoggingFormat.JSON,
                     "application_log_level_v2": lambda_.ApplicationLogLevel.INFO,
                     "system_log_level_v2": lambda_.SystemLogLevel.WARN}
        self.function = lambda_.Function(
            self, "Function", runtime=RUNTIME, architecture=lambda_.Architecture.ARM_64, code=code,
            handler="index.handler", role=self.role, log_group=self.log_group, environment=environment,
            timeout=FUNCTION_TIMEOUT, memory_size=256, **json_logs,
            description="Creates and attaches the Multus ENIs of nodes on Auto Scaling lifecycle actions",
            retry_attempts=self.retry_attempts, max_event_age=self.max_event_age,
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )
        self.sweeper_function = lambda_.Function(
            self, "SweeperFunction", runtime=RUNTIME, architecture=lambda_.Architecture.ARM_64, code=code,
            handler="sweeper.handler", role=self.sweeper_role, log_group=self.sweeper_log_group,
            environment={"CLUSTER_NAME": cluster_name}, **json_logs,
            timeout=cdk.Duration.minutes(5), memory_size=256,
            description="Deletes available Multus ENIs whose instance is gone",
            retry_attempts=0,
        )
        for fn, role in ((self.function, self.role), (self.sweeper_function, self.sweeper_role)):
            fn.node.add_dependency(role)  # the role's policies exist before the first invocation

        # --- the dead-letter queue is watched ----------------------------------------------------------------------
        self.dead_letter_alarm = cloudwatch.Alarm(
            self, "DeadLetterAlarm",
            alarm_description=f"Multus ENI events or invocations of cluster {cluster_name} failed for good: their "
                              "messages in the dead-letter queue say which node and why",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM),
            threshold=0, comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1, treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        # --- EventBridge -------------------------------------------------------------------------------------------
        self.rule = events.Rule(
            self, "LifecycleRule",
            description=f"Multus ENI lifecycle actions of cluster {cluster_name}'s node groups",
            event_pattern=events.EventPattern(
                source=["aws.autoscaling"],
                detail_type=[LAUNCH_DETAIL_TYPE, TERMINATE_DETAIL_TYPE],
                detail={"AutoScalingGroupName": self.group_names,
                        "LifecycleHookName": [LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME]},
            ),
        )
        self.rule.add_target(targets.LambdaFunction(
            self.function, dead_letter_queue=self.dead_letter_queue, retry_attempts=8, max_event_age=self.max_event_age,
        ))
        self.sweep_rule = events.Rule(
            self, "SweepSchedule", description=f"Sweeps leaked Multus ENIs of cluster {cluster_name}",
            schedule=events.Schedule.rate(sweep_interval),
        )
        self.sweep_rule.add_target(targets.LambdaFunction(
            self.sweeper_function, dead_letter_queue=self.dead_letter_queue, retry_attempts=2,
        ))

        # --- nodes already there: reconciled at deploy time ---------------------------------------------------------
        # A managed group's first nodes launch before its hooks exist (EKS names the group, the hooks need the name);
        # a self-managed group's first launch events may go out before this rule exists. This custom resource is
        # answered by the lifecycle function itself (lambda/multus_eni/multus_eni_reconcile.py) after the hooks,
        # the rule and the IAM exist, and again whenever the groups or the ENI layout change.
        self.reconciliation = cdk.CustomResource(
            self, "Reconciliation", service_token=self.function.function_arn,
            resource_type="Custom::MultusEniReconciliation",
            properties={"Groups": self.group_names, "Subnets": environment["MULTUS_SUBNETS"],
                        "Layout": [environment[k] for k in ("MULTUS_IPV4_PREFIX_COUNT", "MULTUS_IPV6_PREFIX_COUNT",
                                                            "MULTUS_FIRST_DEVICE_INDEX",
                                                            "MULTUS_SECURITY_GROUP_IDS")]},
        )
        for before in (*self.lifecycle_hooks, *auto_scaling_groups, self.rule, self.role, self.policy):
            self.reconciliation.node.add_dependency(before)
        for hook in self.lifecycle_hooks:  # the rule and its target exist before a managed group's hooks send events
            hook.node.add_dependency(self.rule)
            hook.node.add_dependency(self.function)

    # --- managed node groups -----------------------------------------------------------------------------------------

    def _resolve_nodegroup_asg(self, id: str, ng: eks.Nodegroup | NodegroupRef) -> str:
        """The Auto Scaling group name EKS gave a managed node group, read at deploy time."""
        stack = cdk.Stack.of(self)
        if isinstance(ng, NodegroupRef):
            cluster, name = ng.cluster_name, ng.nodegroup_name
            arn = stack.format_arn(service="eks", resource="nodegroup", resource_name=f"{cluster}/{name}/*")
        else:
            # Not ``ng.nodegroup_name``: that is CloudFormation's Ref, "<cluster>/<nodegroup>" (aws-cdk#22442),
            # which DescribeNodegroup refuses; the resource's NodegroupName attribute is the bare name.
            cluster, name, arn = ng.cluster.cluster_name, ng.node.default_child.attr_nodegroup_name, ng.nodegroup_arn
        call = cr.AwsSdkCall(
            service="EKS", action="describeNodegroup",
            parameters={"clusterName": cluster, "nodegroupName": name},
            physical_resource_id=cr.PhysicalResourceId.of(f"{cluster}/{name}"),
            output_paths=["nodegroup.resources.autoScalingGroups.0.name"],
        )
        resolver = cr.AwsCustomResource(
            self, f"{id}Asg", on_create=call, on_update=call, install_latest_aws_sdk=False,
            log_group=_provider_log_group(stack),
            policy=cr.AwsCustomResourcePolicy.from_statements([
                iam.PolicyStatement(actions=["eks:DescribeNodegroup"], resources=[arn]),
            ]),
        )
        if isinstance(ng, Construct):
            resolver.node.add_dependency(ng)
        self.nodegroup_resolvers.append(resolver)
        policy = resolver.node.find_child("CustomResourcePolicy")
        nag.acknowledge_as(policy, "MultusEniAttacher", "nodegroup-resolver",
                           findings=nag.resource_findings(policy, [arn]))
        nag.acknowledge_custom_resource_provider(stack)
        return resolver.get_response_field("nodegroup.resources.autoScalingGroups.0.name")

    # --- IAM -----------------------------------------------------------------------------------------------------------

    def _eni_arn(self, stack: cdk.Stack) -> str:
        return stack.format_arn(service="ec2", resource="network-interface", resource_name="*")

    def _our_eni_condition(self) -> dict:
        return {"StringEquals": {f"ec2:ResourceTag/{TAG_CLUSTER}": self.cluster_name,
                                 f"ec2:ResourceTag/{TAG_MULTUS}": "true"}}

    def _grant_lifecycle(self, stack: cdk.Stack) -> None:
        eni_arn = self._eni_arn(stack)
        statements = [
            iam.PolicyStatement(sid="Describe", actions=["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces"],
                                resources=["*"]),
            # Creation only with the tags that make the ENI ours (and keep the VPC CNI off it)...
            iam.PolicyStatement(sid="CreateTaggedEni", actions=["ec2:CreateNetworkInterface"], resources=[eni_arn],
                                conditions={"StringEquals": {
                                    f"aws:RequestTag/{TAG_CLUSTER}": self.cluster_name,
                                    f"aws:RequestTag/{TAG_MULTUS}": "true",
                                    f"aws:RequestTag/{TAG_NO_MANAGE}": "true"}}),
            # ...in the Multus subnets with the Multus security group only...
            iam.PolicyStatement(sid="CreateEniInMultusSubnets", actions=["ec2:CreateNetworkInterface"], resources=[
                *(stack.format_arn(service="ec2", resource="subnet", resource_name=s.subnet_id)
                  for ss in self.subnets.values() for s in ss),
                stack.format_arn(service="ec2", resource="security-group",
                                 resource_name=self.security_group.security_group_id),
            ]),
            # ...and tags only as part of that creation.
            iam.PolicyStatement(sid="TagOnCreate", actions=["ec2:CreateTags"], resources=[eni_arn],
                                conditions={"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}}),
            iam.PolicyStatement(sid="ManageOurEnis", actions=[
                "ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute",
                "ec2:DeleteNetworkInterface"], resources=[eni_arn], conditions=self._our_eni_condition()),
            iam.PolicyStatement(sid="OnOurNodes", actions=[
                "ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute"],
                resources=[stack.format_arn(service="ec2", resource="instance", resource_name="*")],
                conditions={"StringEquals": {"ec2:ResourceTag/aws:autoscaling:groupName": self.group_names}}),
            # SetInstanceHealth: a running node that cannot get its ENIs at deploy time is replaced (reconciliation).
            iam.PolicyStatement(sid="CompleteOurLifecycleActions", actions=[
                "autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth"],
                resources=[_asg_arn(stack, name) for name in self.group_names]),
            iam.PolicyStatement(sid="ListGroupInstances", actions=["autoscaling:DescribeAutoScalingGroups"],
                                resources=["*"]),
        ]
        policy = self.policy = iam.Policy(self, "Policy", statements=statements, roles=[self.role])
        nag.acknowledge_as(policy, "MultusEniAttacher", "lifecycle-policy", findings=nag.resource_findings(policy, [
            "*", eni_arn, stack.format_arn(service="ec2", resource="instance", resource_name="*"),
            *(_asg_arn(stack, n) for n in self.group_names)]))

    def _grant_sweeper(self, stack: cdk.Stack) -> None:
        policy = iam.Policy(self, "SweeperPolicy", roles=[self.sweeper_role], statements=[
            iam.PolicyStatement(sid="Describe", actions=["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces"],
                                resources=["*"]),
            iam.PolicyStatement(sid="DeleteOurEnis", actions=["ec2:DeleteNetworkInterface"],
                                resources=[self._eni_arn(stack)], conditions=self._our_eni_condition()),
        ])
        nag.acknowledge_as(policy, "MultusEniAttacher", "sweeper-policy",
                           findings=nag.resource_findings(policy, ["*", self._eni_arn(stack)]))

def async_limits(heartbeat_timeout: cdk.Duration) -> tuple[int, cdk.Duration]:
    """(retry attempts, maximum event age) of the lifecycle function's asynchronous invocations.

    An event older than ``heartbeat - timeout`` could not be handled before the node's
    wait ends, and retry ``k`` (0-2) is kept only when ``(k + 1) * timeout`` plus
    Lambda's retry delays still fit in the heartbeat.
    """
    heartbeat, timeout = heartbeat_timeout.to_seconds(), FUNCTION_TIMEOUT.to_seconds()
    attempts = 0
    for k in (1, 2):
        if (k + 1) * timeout + sum(_ASYNC_RETRY_DELAYS[:k]) <= heartbeat:
            attempts = k
    return attempts, cdk.Duration.seconds(max(60, heartbeat - timeout))


def _asg_arn(stack: cdk.Stack, name: str) -> str:
    return stack.format_arn(service="autoscaling", resource="autoScalingGroup",
                            resource_name=f"*:autoScalingGroupName/{name}", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)


def _add_hook_specifications(asg: autoscaling.AutoScalingGroup, heartbeat_timeout: cdk.Duration) -> None:
    """Hooks inside the group's own definition: instances of its very first scale-out already wait for the Lambda."""
    cfn: autoscaling.CfnAutoScalingGroup = asg.node.default_child
    existing = cfn.lifecycle_hook_specification_list
    existing = list(existing) if isinstance(existing, list) else []
    taken = {getattr(h, "lifecycle_hook_name", None) for h in existing}
    if LAUNCH_HOOK_NAME in taken:
        raise ValueError(f"{asg.node.path} already has Multus ENI hooks: pass it to one MultusEniAttacher only")
    cfn.lifecycle_hook_specification_list = existing + [
        autoscaling.CfnAutoScalingGroup.LifecycleHookSpecificationProperty(
            lifecycle_hook_name=name, lifecycle_transition=f"autoscaling:EC2_INSTANCE_{transition}",
            default_result=DEFAULT_RESULTS[transition], heartbeat_timeout=heartbeat_timeout.to_seconds(),
        )
        for name, transition in ((LAUNCH_HOOK_NAME, "LAUNCHING"), (TERMINATE_HOOK_NAME, "TERMINATING"))
    ]


_PROVIDER_ID = "AWS679f53fac002430cb0da5b7982bd2287"  # AwsCustomResource's singleton function, one per stack
_PROVIDER_LOG_GROUP_ID = "EksnetAwsCustomResourceLogs"


def _provider_log_group(stack: cdk.Stack) -> logs.ILogGroup | None:
    """A log group with a retention for AwsCustomResource's singleton function, unless the function already exists.

    The singleton takes its log group from whichever AwsCustomResource creates it first in the stack; its role has
    AWSLambdaBasicExecutionRole, which may write there. When another construct made it first, that one decided.
    """
    if stack.node.try_find_child(_PROVIDER_ID) is not None:
        return None
    found = stack.node.try_find_child(_PROVIDER_LOG_GROUP_ID)
    return found or logs.LogGroup(stack, _PROVIDER_LOG_GROUP_ID, retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=cdk.RemovalPolicy.DESTROY)


def _validate(cluster_name, subnets, auto_scaling_groups, nodegroups, ipv4_prefix_count, ipv6_prefix_count,
              first_device_index, heartbeat_timeout) -> None:
    if not cdk.Token.is_unresolved(cluster_name):
        validate.eks_cluster_name(cluster_name, "cluster_name")
    if not subnets:
        raise ValueError("subnets must map at least one availability zone to its Multus subnets, "
                         "e.g. {'eu-central-1a': [subnet]}")
    for az, ss in subnets.items():
        if not ss:
            raise ValueError(f"subnets[{az!r}] is empty: give each zone at least one Multus subnet, or leave it out")
        if first_device_index + len(ss) - 1 > 31:
            raise ValueError(f"subnets[{az!r}] has {len(ss)} subnets: device indexes would pass 31")
        for s in ss:
            zone = s.availability_zone
            if zone and not cdk.Token.is_unresolved(zone) and zone != az:
                raise ValueError(f"subnet {s.node.path} is in {zone}, listed under {az}: list it under its own zone")
    if not auto_scaling_groups and not nodegroups:
        raise ValueError("give auto_scaling_groups and/or nodegroups: without a node group no node gets Multus ENIs")
    for name, value in (("ipv4_prefix_count", ipv4_prefix_count), ("ipv6_prefix_count", ipv6_prefix_count)):
        if not 0 <= value <= _MAX_PREFIXES:
            raise ValueError(f"{name} must be between 0 and {_MAX_PREFIXES}, got {value}")
    if not 1 <= first_device_index <= 31:
        raise ValueError(f"first_device_index must be between 1 and 31 (0 is the node's primary ENI), "
                         f"got {first_device_index}")
    seconds, least = heartbeat_timeout.to_seconds(), FUNCTION_TIMEOUT.to_seconds() + 60
    if not least <= seconds <= 7200:
        raise ValueError(f"heartbeat_timeout must be between {least} seconds (the function's timeout and a minute) "
                         f"and 2 hours, got {seconds} s")

