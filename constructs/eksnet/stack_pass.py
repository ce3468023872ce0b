"""One pass over a stack's finished construct tree, for what eksnet adds to constructs it did not make.

Some fixes need every construct of a stack once construction is over, aws-cdk-lib's included: a log group
with a retention for each Lambda function (``eksnet.function_logs``), all IPv6 egress for the security
groups of an ``EksVpc`` (``eksnet.vpc``). As Python aspects on the stack they cost a jsii call back into
Python for every construct of the stack, per aspect: about 1,400 round trips in the default app. Here one
aspect sits on a leaf construct of the stack, so aws-cdk-lib invokes it once, when it invokes aspects (at
synth, before templates are written); it lists the stack's constructs in one call and runs every fix
registered for the stack over that list, in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import aws_cdk as cdk
import jsii

from constructs import Construct, IConstruct

Fix = Callable[[Sequence[IConstruct]], None]


@jsii.implements(cdk.IAspect)
class _RunFixes:
    def __init__(self, owner: StackPass) -> None:
        self._owner = owner

    def visit(self, node: IConstruct) -> None:
        if node is not self._owner:  # only the leaf carries this aspect; nothing else reaches here
            return
        constructs = cdk.Stack.of(self._owner).node.find_all()
        for fix in self._owner.fixes:
            fix(constructs)


class StackPass(Construct):
    """The stack's one pass; ``StackPass.of(scope).add(fix)`` registers ``fix(constructs)``.

    ``fixes`` run once each, in registration order, over the stack's constructs as they are when aspects run.
    """

    ID = "EksnetStackPass"

    def __init__(self, scope: cdk.Stack, id: str) -> None:
        super().__init__(scope, id)
        self.fixes: list[Fix] = []
        cdk.Aspects.of(self).add(_RunFixes(self))

    @classmethod
    def of(cls, scope: IConstruct) -> StackPass:
        stack = cdk.Stack.of(scope)
        found = stack.node.try_find_child(cls.ID)
        if found is None:
            return cls(stack, cls.ID)
        if not isinstance(found, cls):
            raise TypeError(f"{stack.node.path}/{cls.ID} is not an eksnet StackPass")
        return found

    def add(self, fix: Fix) -> None:
        self.fixes.append(fix)
