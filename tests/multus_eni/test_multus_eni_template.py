"""The MultusEniAttacher's template: hooks, the rule pattern, the DLQ, the functions and their least-privilege IAM."""

from __future__ import annotations

import json

import pytest
from support.cfn import props, ref_id, resources
from support.gates import cfn_lint

LAUNCH = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATE = "autoscaling:EC2_INSTANCE_TERMINATING"


def _one(template, type_) -> tuple[str, dict]:
    (found,) = props(template, type_)
    return found


def _function_id(template, handler: str) -> str:
    return next(lid for lid, r in resources(template, "AWS::Lambda::Function").items()
                if r["Properties"].get("Handler") == handler and r["Properties"]["Runtime"].startswith("python3.14"))


def _functions(template) -> dict[str, dict]:
    return {p["Handler"]: p for _, p in props(template, "AWS::Lambda::Function") if p["Runtime"].startswith("python")}


def _statements(template, role_prefix: str) -> list[dict]:
    """Every policy statement attached to the role whose logical id starts with ``role_prefix``."""
    found = []
    for _, p in props(template, "AWS::IAM::Policy"):
        if any(ref_id(r) and ref_id(r).startswith(role_prefix) for r in p["Roles"]):
            found += p["PolicyDocument"]["Statement"]
    return found


def _actions(statement) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else a


def _resources(statement) -> list:
    r = statement["Resource"]
    return r if isinstance(r, list) else [r]


def test_the_self_managed_group_holds_launching_and_terminating_instances_itself(template):
    (_, asg), = props(template, "AWS::AutoScaling::AutoScalingGroup")
    hooks = {h["LifecycleTransition"]: h for h in asg["LifecycleHookSpecificationList"]}
    assert set(hooks) == {LAUNCH, TERMINATE}
    assert all(h["HeartbeatTimeout"] == 300 for h in hooks.values())


def test_an_unanswered_launch_is_abandoned_and_an_unanswered_termination_continues(template):
    (_, asg), = props(template, "AWS::AutoScaling::AutoScalingGroup")
    hooks = [*asg["LifecycleHookSpecificationList"], *(h for _, h in props(template, "AWS::AutoScaling::LifecycleHook"))]
    assert len(hooks) == 4
    for h in hooks:
        assert h["DefaultResult"] == {LAUNCH: "ABANDON", TERMINATE: "CONTINUE"}[h["LifecycleTransition"]]


def test_the_managed_group_asg_name_is_read_with_describe_nodegroup(template):
    (_, resolver), = props(template, "Custom::AWS")
    call = json.loads(resolver["Create"])
    assert (call["service"], call["action"]) == ("EKS", "describeNodegroup")
    assert call["parameters"] == {"clusterName": "mycluster", "nodegroupName": "managed-multus"}
    assert json.loads(resolver["Update"]) == call  # a replaced node group gets its hooks again


def test_the_managed_group_gets_both_hooks_on_the_resolved_name(template):
    hooks = dict(props(template, "AWS::AutoScaling::LifecycleHook"))
    assert {h["LifecycleTransition"] for h in hooks.values()} == {LAUNCH, TERMINATE}
    resolver_id = next(iter(resources(template, "Custom::AWS")))
    for h in hooks.values():
        assert h["AutoScalingGroupName"] == {"Fn::GetAtt": [resolver_id, "nodegroup.resources.autoScalingGroups.0.name"]}


def test_the_managed_group_hooks_come_after_the_rule_and_the_function_that_answer_them(template):
    rule_id = next(lid for lid, _ in props(template, "AWS::Events::Rule") if "EventPattern" in _)
    fn_id = _function_id(template, "index.handler")
    for lid, r in resources(template, "AWS::AutoScaling::LifecycleHook").items():
        assert {rule_id, fn_id} <= set(r.get("DependsOn", [])), lid


def test_the_resolver_may_only_describe_that_node_group(template):
    (resolver_id,) = resources(template, "Custom::AWS")
    (statement,) = [s for _, p in props(template, "AWS::IAM::Policy") for s in p["PolicyDocument"]["Statement"]
                    if "eks:DescribeNodegroup" in _actions(s)]
    assert _actions(statement) == ["eks:DescribeNodegroup"]
    assert "nodegroup/mycluster/managed-multus/*" in json.dumps(statement["Resource"])


def _lifecycle_rule(template) -> dict:
    return next(p for _, p in props(template, "AWS::Events::Rule") if "EventPattern" in p)


def test_the_rule_matches_only_our_groups_hooks_and_the_two_lifecycle_detail_types(template):
    pattern = _lifecycle_rule(template)["EventPattern"]
    assert pattern["source"] == ["aws.autoscaling"]
    assert pattern["detail-type"] == ["EC2 Instance-launch Lifecycle Action", "EC2 Instance-terminate Lifecycle Action"]
    asg_id = next(iter(resources(template, "AWS::AutoScaling::AutoScalingGroup")))
    resolver_id = next(iter(resources(template, "Custom::AWS")))
    assert {ref_id(n) for n in pattern["detail"]["AutoScalingGroupName"]} == {asg_id, resolver_id}
    assert pattern["detail"]["LifecycleHookName"] == ["eksnet-multus-eni-launch", "eksnet-multus-eni-terminate"]


def test_the_rule_delivers_to_the_lifecycle_function_with_retries_and_a_dead_letter_queue(template):
    (target,) = _lifecycle_rule(template)["Targets"]
    queue_id = next(iter(resources(template, "AWS::SQS::Queue")))
    fn_id = next(lid for lid, r in resources(template, "AWS::Lambda::Function").items()
                 if r["Properties"]["Handler"] == "index.handler" and r["Properties"]["Runtime"].startswith("python"))
    assert ref_id(target["Arn"]) == fn_id
    assert ref_id(target["DeadLetterConfig"]["Arn"]) == queue_id
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_the_dead_letter_queue_is_encrypted(template):
    (_, queue), = props(template, "AWS::SQS::Queue")
    assert queue["SqsManagedSseEnabled"] is True


def test_the_dead_letter_queue_refuses_requests_without_tls(template):
    (_, policy), = props(template, "AWS::SQS::QueuePolicy")
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_failed_asynchronous_invocations_land_in_the_dead_letter_queue(template):
    queue_id = next(iter(resources(template, "AWS::SQS::Queue")))
    configs = [p for _, p in props(template, "AWS::Lambda::EventInvokeConfig") if "DestinationConfig" in p]
    assert [ref_id(c["DestinationConfig"]["OnFailure"]["Destination"]) for c in configs] == [queue_id]


def test_both_functions_run_on_python_3_14(template):
    assert {p["Runtime"] for p in _functions(template).values()} == {"python3.14"}
    assert set(_functions(template)) == {"index.handler", "sweeper.handler"}


def test_the_function_environment_carries_the_multus_subnets_in_device_order_per_zone(template, synthesized):
    env = _functions(template)["index.handler"]["Environment"]["Variables"]
    stack = synthesized["stack"]
    expected = {az: [s.subnet_id for s in ss] for az, ss in synthesized["subnets"].items()}
    assert env["MULTUS_SUBNETS"] == stack.resolve(stack.to_json_string(expected))
    assert [ref_id(p) for p in env["MULTUS_SUBNETS"]["Fn::Join"][1] if isinstance(p, dict)] == [
        ref_id(stack.resolve(s.subnet_id)) for ss in synthesized["subnets"].values() for s in ss]
    assert env["CLUSTER_NAME"] == "mycluster"
    assert ref_id(env["MULTUS_SECURITY_GROUP_IDS"]) == ref_id(stack.resolve(synthesized["sg"].security_group_id))
    assert (env["MULTUS_IPV4_PREFIX_COUNT"], env["MULTUS_IPV6_PREFIX_COUNT"]) == ("0", "1")


def test_each_function_logs_to_its_own_group_with_a_retention(template):
    groups = dict(props(template, "AWS::Logs::LogGroup"))
    used = {ref_id(p["LoggingConfig"]["LogGroup"]) for p in _functions(template).values()}
    assert len(used) == 2 and used <= set(groups)
    assert all(groups[g]["RetentionInDays"] == 30 for g in used)


def test_the_sweeper_runs_on_a_schedule(template):
    sweeper_id = next(lid for lid, r in resources(template, "AWS::Lambda::Function").items()
                      if r["Properties"]["Handler"] == "sweeper.handler")
    (rule,) = [p for _, p in props(template, "AWS::Events::Rule") if "ScheduleExpression" in p]
    assert rule["ScheduleExpression"] == "rate(30 minutes)"
    assert [ref_id(t["Arn"]) for t in rule["Targets"]] == [sweeper_id]


def test_the_asset_leaves_bytecode_out(synthesized):
    asset_dirs = [p for p in synthesized["outdir"].glob("asset.*") if (p / "index.py").exists()]
    assert asset_dirs, "the Lambda asset is missing"
    for d in asset_dirs:
        assert {p.name for p in d.iterdir()} >= {"index.py", "sweeper.py", "multus_eni_ops.py"}
        assert not list(d.rglob("__pycache__")) and not list(d.rglob("*.pyc"))


# --- IAM ---------------------------------------------------------------------------------------------------------

MUTATING = {"ec2:CreateNetworkInterface", "ec2:CreateTags", "ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface",
            "ec2:ModifyNetworkInterfaceAttribute", "ec2:DeleteNetworkInterface"}


@pytest.mark.parametrize("role", ["MultusEnisRole", "MultusEnisSweeperRole"])
def test_no_statement_grants_a_service_wildcard(template, role):
    for s in _statements(template, role):
        assert not any(a.endswith(":*") or a == "*" for a in _actions(s)), s


@pytest.mark.parametrize("role", ["MultusEnisRole", "MultusEnisSweeperRole"])
def test_only_describe_calls_get_every_resource(template, role):
    for s in _statements(template, role):
        if "*" in _resources(s):
            assert all(a.startswith(("ec2:Describe", "autoscaling:Describe")) for a in _actions(s)), s


def test_every_mutating_ec2_statement_is_bound_by_a_tag_condition_or_named_resources(template):
    for s in _statements(template, "MultusEnisRole"):
        mutating = MUTATING & set(_actions(s))
        if not mutating:
            continue
        named = all("/*" not in json.dumps(r) for r in _resources(s))
        assert "Condition" in s or named, s


def test_enis_are_created_only_with_our_tags(template):
    (s,) = [s for s in _statements(template, "MultusEnisRole")
            if _actions(s) == ["ec2:CreateNetworkInterface"] and "Condition" in s]
    assert s["Condition"]["StringEquals"] == {
        "aws:RequestTag/cluster": "mycluster", "aws:RequestTag/multus": "true",
        "aws:RequestTag/node.k8s.amazonaws.com/no_manage": "true"}
    assert all(json.dumps(r).endswith(':network-interface/*"]]}') for r in _resources(s))


def test_enis_are_created_only_in_the_multus_subnets_with_the_multus_group(template, synthesized):
    (s,) = [s for s in _statements(template, "MultusEnisRole")
            if _actions(s) == ["ec2:CreateNetworkInterface"] and "Condition" not in s]
    refs = {ref_id(part) for r in _resources(s) for part in r["Fn::Join"][1] if isinstance(part, dict)} - {
        "AWS::Partition"}
    stack = synthesized["stack"]
    subnet_ids = {ref_id(stack.resolve(x.subnet_id)) for ss in synthesized["subnets"].values() for x in ss}
    assert refs == subnet_ids | {ref_id(stack.resolve(synthesized["sg"].security_group_id))}


def test_tags_may_only_be_written_by_the_create_call(template):
    (s,) = [s for s in _statements(template, "MultusEnisRole") if "ec2:CreateTags" in _actions(s)]
    assert s["Condition"] == {"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}}


def test_attach_detach_modify_and_delete_need_an_eni_of_this_cluster(template):
    (s,) = [s for s in _statements(template, "MultusEnisRole") if "ec2:DeleteNetworkInterface" in _actions(s)]
    assert set(_actions(s)) == {"ec2:AttachNetworkInterface", "ec2:DetachNetworkInterface",
                                "ec2:ModifyNetworkInterfaceAttribute", "ec2:DeleteNetworkInterface"}
    assert s["Condition"] == {"StringEquals": {"ec2:ResourceTag/cluster": "mycluster",
                                               "ec2:ResourceTag/multus": "true"}}


def test_instances_are_touched_only_in_our_auto_scaling_groups(template):
    (s,) = [s for s in _statements(template, "MultusEnisRole")
            if any(":instance/" in json.dumps(r) for r in _resources(s))]
    names = s["Condition"]["StringEquals"]["ec2:ResourceTag/aws:autoscaling:groupName"]
    assert len(names) == 2


def test_lifecycle_actions_may_be_completed_on_our_groups_only(template):
    (s,) = [s for s in _statements(template, "MultusEnisRole")
            if "autoscaling:CompleteLifecycleAction" in _actions(s)]
    assert _actions(s) == ["autoscaling:CompleteLifecycleAction", "autoscaling:SetInstanceHealth"]
    rendered = json.dumps(_resources(s))
    asg_id = next(iter(resources(template, "AWS::AutoScaling::AutoScalingGroup")))
    assert len(_resources(s)) == 2 and asg_id in rendered and "autoScalingGroupName/" in rendered


def test_the_sweeper_may_only_describe_and_delete_enis_of_this_cluster(template):
    actions = {a for s in _statements(template, "MultusEnisSweeperRole") for a in _actions(s)}
    assert actions == {"ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
                       "logs:CreateLogStream", "logs:PutLogEvents"}
    (logs,) = [s for s in _statements(template, "MultusEnisSweeperRole") if "logs:PutLogEvents" in _actions(s)]
    assert ref_id(logs["Resource"]).startswith("MultusEnisSweeperLogGroup")
    (s,) = [s for s in _statements(template, "MultusEnisSweeperRole") if "ec2:DeleteNetworkInterface" in _actions(s)]
    assert s["Condition"]["StringEquals"]["ec2:ResourceTag/cluster"] == "mycluster"


# --- gates ---------------------------------------------------------------------------------------------------------

def test_cfn_lint_finds_no_error(synthesized):
    findings = cfn_lint([synthesized["path"]])
    assert [str(f) for f in findings if f.level == "Error"] == []


def test_the_cdk_nag_gate_ran_and_every_suppression_has_a_reason(synthesized):
    report = json.loads((synthesized["outdir"] / "validation-report.json").read_text())
    (nag_report,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag_report["conclusion"] == "success" and nag_report["violations"] == []
    suppressed = {v["ruleName"] for v in nag_report["suppressedViolations"]}
    assert any(r.startswith("AwsSolutions-IAM5[Resource::") for r in suppressed)
    assert "AwsSolutions-L1" not in " ".join(suppressed)  # python3.14 is the newest: nothing to excuse


# --- item 6: a Lambda that can be trusted ----------------------------------------------------------------------

def _budget():
    """The handler's own budget module, loaded from the asset (what Lambda runs)."""
    import importlib.util

    from eksnet.multus.eni import LAMBDA_ASSET
    spec = importlib.util.spec_from_file_location("multus_eni_budget_for_template", LAMBDA_ASSET / "multus_eni_budget.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _heartbeat(template) -> int:
    (_, asg), = props(template, "AWS::AutoScaling::AutoScalingGroup")
    (value,) = {h["HeartbeatTimeout"] for h in asg["LifecycleHookSpecificationList"]}
    return value


def test_the_function_knows_its_own_hooks_and_groups_from_its_environment(template):
    env = _functions(template)["index.handler"]["Environment"]["Variables"]
    assert (env["MULTUS_LAUNCH_HOOK"], env["MULTUS_TERMINATE_HOOK"]) == (
        "eksnet-multus-eni-launch", "eksnet-multus-eni-terminate")
    rendered = json.dumps(env["MULTUS_GROUP_NAMES"])
    asg_id = next(iter(resources(template, "AWS::AutoScaling::AutoScalingGroup")))
    resolver_id = next(iter(resources(template, "Custom::AWS")))
    assert asg_id in rendered and resolver_id in rendered


def test_both_functions_log_in_lambdas_json_format(template):
    for fn in _functions(template).values():
        assert fn["LoggingConfig"]["LogFormat"] == "JSON"
        assert fn["LoggingConfig"]["ApplicationLogLevel"] == "INFO"


def test_every_function_of_the_stack_logs_to_a_group_with_a_retention_it_may_write_to(template):
    groups = dict(props(template, "AWS::Logs::LogGroup"))
    roles = resources(template, "AWS::IAM::Role")
    functions = dict(props(template, "AWS::Lambda::Function"))
    assert len(functions) == 3  # the lifecycle function, the sweeper, AwsCustomResource's provider
    for lid, fn in functions.items():
        group = ref_id(fn["LoggingConfig"]["LogGroup"])
        assert "RetentionInDays" in groups[group], lid
        role = ref_id(fn["Role"])
        managed = json.dumps(roles[role]["Properties"].get("ManagedPolicyArns", []))
        writes = {a for s in _statements(template, role) for a in _actions(s)
                  if group in json.dumps(s["Resource"])}
        assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= writes or "AWSLambdaBasicExecutionRole" in managed, lid


def test_every_attempt_of_the_function_ends_within_the_heartbeat(template):
    heartbeat, timeout = _heartbeat(template), _functions(template)["index.handler"]["Timeout"]
    (config,) = [p for _, p in props(template, "AWS::Lambda::EventInvokeConfig")
                 if ref_id(p["FunctionName"]) == _function_id(template, "index.handler")]
    # An attempt starts only while the event is younger than its maximum age, and runs at most the timeout.
    assert config["MaximumEventAgeInSeconds"] + timeout <= heartbeat
    retries = config["MaximumRetryAttempts"]
    assert (retries + 1) * timeout + sum((60, 120)[:retries]) <= heartbeat
    (target,) = _lifecycle_rule(template)["Targets"]
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] + timeout <= heartbeat


def test_the_handlers_retry_budget_fits_in_its_timeout(template):
    budget = _budget()
    config = budget.BOTO_CONFIG
    assert config.retries["mode"] == "standard"  # adaptive mode's client-side rate limiter has no bound
    attempts = config.retries["total_max_attempts"]
    # Worst case of one call: every attempt times out; before retry i botocore waits at most
    # min(2 ** (i - 1), 20) s, plus up to 5 s more when the service sends x-amz-retry-after.
    worst_call = attempts * (config.connect_timeout + config.read_timeout) + sum(
        min(2 ** (i - 1), 20) + 5 for i in range(1, attempts))
    # The deadline refuses to start an EC2 call unless that call, a waiter pause and the final answer (one more call,
    # or the CloudFormation response) still fit: the reserve must cover them, and the timeout leave room for work.
    assert budget.LIFECYCLE_RESERVE >= worst_call + budget.WAITER_DELAY + worst_call
    assert budget.RECONCILE_RESERVE >= worst_call + budget.WAITER_DELAY + worst_call + budget.RESPONSE_TIMEOUT
    timeout = _functions(template)["index.handler"]["Timeout"]
    assert timeout >= budget.RECONCILE_RESERVE + 30


def test_an_alarm_fires_when_anything_lands_in_the_dead_letter_queue(template):
    queue_id = next(iter(resources(template, "AWS::SQS::Queue")))
    (_, alarm), = props(template, "AWS::CloudWatch::Alarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert [ref_id(d["Value"]) for d in alarm["Dimensions"] if d["Name"] == "QueueName"] == [queue_id]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_nodes_already_running_are_reconciled_by_the_function_after_hooks_rule_and_iam(template):
    (lid, cr), = resources(template, "Custom::MultusEniReconciliation").items()
    assert cr["Properties"]["ServiceToken"] == {"Fn::GetAtt": [_function_id(template, "index.handler"), "Arn"]}
    depends = set(cr.get("DependsOn", []))
    assert set(resources(template, "AWS::AutoScaling::LifecycleHook")) <= depends
    assert set(resources(template, "AWS::AutoScaling::AutoScalingGroup")) <= depends
    rule_id = next(lid for lid, p in props(template, "AWS::Events::Rule") if "EventPattern" in p)
    policy_ids = {lid for lid, p in props(template, "AWS::IAM::Policy")
                  if any(ref_id(r).startswith("MultusEnisRole") for r in p["Roles"])}
    assert rule_id in depends and policy_ids <= depends


def test_the_reconciliation_runs_again_when_groups_or_layout_change(template):
    (cr,) = [p for _, p in props(template, "Custom::MultusEniReconciliation")]
    assert {"Groups", "Subnets", "Layout"} <= set(cr)


def test_the_function_may_replace_a_running_node_and_list_group_instances_only(template):
    statements = _statements(template, "MultusEnisRole")
    (health,) = [s for s in statements if "autoscaling:SetInstanceHealth" in _actions(s)]
    assert "autoScalingGroupName/" in json.dumps(health["Resource"]) and len(_resources(health)) == 2
    (listing,) = [s for s in statements if "autoscaling:DescribeAutoScalingGroups" in _actions(s)]
    assert _actions(listing) == ["autoscaling:DescribeAutoScalingGroups"]
