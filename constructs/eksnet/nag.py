"""The cdk-nag gate: AwsSolutions checks as an aws-cdk-lib validation plugin, and named suppressions.

cdk-nag 3 runs through ``Validations.of(app).add_plugins``: any unacknowledged
finding fails synth. A suppression is an acknowledgment on one construct (and its
children) with a reason; ``acknowledge`` refuses an empty or generic reason so
that no blanket suppression slips in.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from constructs import Construct, IConstruct

_MIN_REASON = 20


def add_checks(app: cdk.App) -> None:
    """Make every synth of ``app`` fail on an unsuppressed AwsSolutions or eksnet EKS finding."""
    from eksnet.eks_checks import EksChecks  # the EKS rules cdk-nag cannot see on aws_eks_v2 clusters

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), EksChecks())


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Suppress cdk-nag ``rule`` (e.g. ``AwsSolutions-IAM4``) on ``construct`` only, saying why."""
    if isinstance(construct, cdk.App) or isinstance(construct, cdk.Stage):
        raise ValueError(f"refusing a blanket suppression of {rule} on the whole app")
    if not reason or len(reason.strip()) < _MIN_REASON:
        raise ValueError(f"suppression of {rule} on {construct.node.path} needs a specific reason")
    rule_id = rule if "::" in rule else f"AwsSolutions::{rule}"
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def acknowledge_all(constructs: list[Construct], rule: str, reason: str) -> None:
    for c in constructs:
        acknowledge(c, rule, reason)
