"""Every Lambda function of an eksnet stack logs to a log group with a retention.

Our own functions get their log group and its write grant where they are made
(``eksnet.multus.eni``). aws-cdk-lib also makes functions of its own: the providers of
custom resources (``ec2.Vpc``'s default security group restriction, the EKS kubectl
provider, ``CfnJson``'s utilities, ``AwsCustomResource``). Left alone, Lambda creates
``/aws/lambda/<name>`` on first write with no retention: logs kept forever, and a
group CloudFormation does not own. This fix (run once per stack by ``eksnet.stack_pass``) gives each function that has no log
group of its own a ``LogGroup`` beside it (retention, removed with the stack) and
points the function's ``LoggingConfig.LogGroup`` at it, so the function depends on the
group and never writes before it exists. Those providers' roles carry
``AWSLambdaBasicExecutionRole``, which may write to any log group; tests check that
every function's role can write to its group.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnResource, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import IConstruct

DEFAULT_RETENTION = logs.RetentionDays.ONE_MONTH
_FUNCTION = "AWS::Lambda::Function"


# Packages whose classes are never a function under another class: aws-cdk-lib's (each L1 class stands for one
# resource type), the constructs library's and jsii's own proxies.
_LIBRARY_PACKAGES = frozenset({"aws_cdk", "constructs", "jsii"})


def _is_function(c: IConstruct) -> bool:
    kind = type(c)
    if kind is lambda_.CfnFunction:
        return True
    if kind is CfnResource:  # as CustomResourceProvider makes its handler
        return c.cfn_resource_type == _FUNCTION
    # Decided by the class's module first: isinstance against aws-cdk-lib's abstract classes walks their
    # hundreds of subclasses for every new class, most of this pass's time.
    if kind.__module__.partition(".")[0] in _LIBRARY_PACKAGES:
        return False
    if isinstance(c, lambda_.CfnFunction):
        return True
    return isinstance(c, CfnResource) and c.cfn_resource_type == _FUNCTION  # a user's own subclass


def function_logs(retention: logs.RetentionDays = DEFAULT_RETENTION):
    """A ``StackPass`` fix: a log group with ``retention`` for each ``AWS::Lambda::Function`` that has none."""

    def fix(constructs: Sequence[IConstruct]) -> None:
        for node in constructs:
            if _is_function(node):
                _give_log_group(node, retention)

    return fix


def _give_log_group(node: CfnResource, retention: logs.RetentionDays) -> None:
    if isinstance(node, lambda_.CfnFunction):
        config = node.logging_config
        if config is not None and getattr(config, "log_group", None):
            return
    scope = node.node.scope
    group_id = f"{node.node.id}LogGroup"
    if scope.node.try_find_child(group_id) is not None:
        return
    group = logs.LogGroup(scope, group_id, retention=retention, removal_policy=RemovalPolicy.DESTROY)
    node.add_property_override("LoggingConfig.LogGroup", group.log_group_name)
