"""Every Lambda function of an eksnet stack logs to a log group with a retention.

Our own functions get their log group and its write grant where they are made
(``eksnet.multus.eni``). aws-cdk-lib also makes functions of its own: the providers of
custom resources (``ec2.Vpc``'s default security group restriction, the EKS kubectl
provider, ``CfnJson``'s utilities, ``AwsCustomResource``). Left alone, Lambda creates
``/aws/lambda/<name>`` on first write with no retention: logs kept forever, and a
group CloudFormation does not own. This aspect gives each function that has no log
group of its own a ``LogGroup`` beside it (retention, removed with the stack) and
points the function's ``LoggingConfig.LogGroup`` at it, so the function depends on the
group and never writes before it exists. Those providers' roles carry
``AWSLambdaBasicExecutionRole``, which may write to any log group; tests check that
every function's role can write to its group.
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import IConstruct

DEFAULT_RETENTION = logs.RetentionDays.ONE_MONTH


@jsii.implements(IAspect)
class FunctionLogs:
    """Aspect: a log group with ``retention`` for each ``AWS::Lambda::Function`` that has none."""

    def __init__(self, retention: logs.RetentionDays = DEFAULT_RETENTION) -> None:
        self.retention = retention

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or node.cfn_resource_type != "AWS::Lambda::Function":
            return
        if isinstance(node, lambda_.CfnFunction):
            config = node.logging_config
            if config is not None and getattr(config, "log_group", None):
                return
        scope = node.node.scope
        group_id = f"{node.node.id}LogGroup"
        if scope.node.try_find_child(group_id) is not None:
            return
        group = logs.LogGroup(scope, group_id, retention=self.retention, removal_policy=RemovalPolicy.DESTROY)
        node.add_property_override("LoggingConfig.LogGroup", group.log_group_name)
