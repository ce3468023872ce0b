"""eksnet's fixes over a finished stack run in one pass: one aspect per stack, invoked once."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from eksnet.stack_pass import StackPass


def _stack() -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App()
    return app, cdk.Stack(app, "S")


def test_of_returns_the_stacks_one_pass():
    _, stack = _stack()
    queue = sqs.Queue(stack, "Q")
    assert StackPass.of(stack) is StackPass.of(queue)


def test_each_fix_runs_once_at_synth_in_registration_order():
    app, stack = _stack()
    calls = []
    StackPass.of(stack).add(lambda constructs: calls.append("first"))
    StackPass.of(stack).add(lambda constructs: calls.append("second"))
    assert calls == []
    app.synth()
    assert calls == ["first", "second"]


def test_fixes_see_constructs_made_after_they_were_registered():
    app, stack = _stack()
    seen = []
    StackPass.of(stack).add(lambda constructs: seen.extend(c.node.path for c in constructs))
    sqs.Queue(stack, "Late")
    app.synth()
    assert "S/Late" in seen


def test_what_a_fix_adds_is_in_the_template():
    app, stack = _stack()
    StackPass.of(stack).add(lambda constructs: sqs.CfnQueue(stack, "Added"))
    template = app.synth().get_stack_by_name("S").template
    assert "Added" in template["Resources"]


def test_each_stack_has_its_own_pass():
    app = cdk.App()
    a, b = cdk.Stack(app, "A"), cdk.Stack(app, "B")
    ran = []
    StackPass.of(a).add(lambda constructs: ran.append("A"))
    app.synth()
    assert ran == ["A"]
    assert StackPass.of(a) is not StackPass.of(b)
