"""Every Lambda function of every stack of the default app (aws-cdk-lib's providers included) logs to a log group
that has a retention and that the function's role may write to (issue 11, item 6)."""

from __future__ import annotations

import json

from support.cfn import ref_id

WRITE = {"logs:CreateLogStream", "logs:PutLogEvents"}


def _functions(templates):
    for stack, template in templates.items():
        for lid, r in template["Resources"].items():
            if r["Type"] == "AWS::Lambda::Function":
                yield stack, lid, r["Properties"], template["Resources"]


def _may_write(resources: dict, role_id: str, group_id: str) -> bool:
    role = resources[role_id]["Properties"]
    if "AWSLambdaBasicExecutionRole" in json.dumps(role.get("ManagedPolicyArns", [])):
        return True  # logs:CreateLogGroup/CreateLogStream/PutLogEvents on every log group
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    statements += [s for r in resources.values() if r["Type"] == "AWS::IAM::Policy"
                   and role_id in {ref_id(x) for x in r["Properties"]["Roles"]}
                   for s in r["Properties"]["PolicyDocument"]["Statement"]]
    granted = set()
    for s in statements:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        if group_id in json.dumps(s["Resource"]) or s["Resource"] == "*":
            granted |= set(actions)
    return WRITE <= granted


def test_the_default_app_has_functions_to_check(templates):
    assert len(list(_functions(templates))) >= 10


def test_every_function_logs_to_a_group_with_a_retention(templates):
    for stack, lid, fn, resources in _functions(templates):
        group = ref_id((fn.get("LoggingConfig") or {}).get("LogGroup"))
        assert group, f"{stack}/{lid} has no log group of its own"
        assert resources[group]["Properties"].get("RetentionInDays"), f"{stack}/{group} keeps logs forever"


def test_every_function_may_write_to_its_log_group(templates):
    for stack, lid, fn, resources in _functions(templates):
        group = ref_id(fn["LoggingConfig"]["LogGroup"])
        role = ref_id(fn["Role"])
        assert role, f"{stack}/{lid}: role not in the template"
        assert _may_write(resources, role, group), f"{stack}/{lid} cannot write to {group}"



def _fixed_template(build) -> dict:
    """The template of a stack with the function-log fix, after ``build(stack)``."""
    import aws_cdk as cdk
    from eksnet.function_logs import function_logs
    from eksnet.stack_pass import StackPass

    app = cdk.App()
    stack = cdk.Stack(app, "S")
    build(stack)
    StackPass.of(stack).add(function_logs())
    return app.synth().get_stack_by_name("S").template


def test_a_function_of_a_users_own_class_gets_a_log_group():
    import aws_cdk as cdk

    class MyFunction(cdk.CfnResource):  # the class is the user's, the resource type a function
        pass

    template = _fixed_template(lambda stack: MyFunction(stack, "Fn", type="AWS::Lambda::Function", properties={
        "Role": "arn:aws:iam::123456789012:role/r", "Code": {"ZipFile": "x"}, "Runtime": "python3.13",
        "Handler": "index.handler"}))
    groups = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"]
    assert groups == [ref_id(template["Resources"]["Fn"]["Properties"]["LoggingConfig"]["LogGroup"])]


def test_a_resource_of_a_users_own_class_that_is_no_function_gets_none():
    import aws_cdk as cdk

    class MyQueue(cdk.CfnResource):
        pass

    template = _fixed_template(lambda stack: MyQueue(stack, "Q", type="AWS::SQS::Queue"))
    assert [r["Type"] for r in template["Resources"].values()] == ["AWS::SQS::Queue"]
