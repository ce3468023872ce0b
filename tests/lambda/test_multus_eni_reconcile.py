"""Deploy-time reconciliation: nodes that were running before the hooks existed get their Multus ENIs.

In these tests the node's instance is created by its Auto Scaling group BEFORE the
lifecycle hooks are put on the group (``build_node``), as a managed node group's
first nodes are: no launch event ever comes for them. CloudFormation then sends the
construct's custom resource request to the function, which answers at ResponseURL.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


class CloudFormation:
    """Stands in for CloudFormation's pre-signed S3 URL: records each PUT response (loopback only)."""

    def __init__(self) -> None:
        self.responses: list[dict] = []
        self.content_types: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.responses.append(json.loads(body))
                outer.content_types.append(self.headers.get("Content-Type"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def request(self, request_type: str = "Create") -> dict:
        """A custom resource request as CloudFormation sends it to a Lambda service token."""
        return {
            "RequestType": request_type,
            "ServiceToken": "arn:aws:lambda:eu-central-1:123456789012:function:multus-eni",
            "ResponseURL": f"http://127.0.0.1:{self.server.server_port}/cfn-response?X-Amz-Signature=x",
            "StackId": "arn:aws:cloudformation:eu-central-1:123456789012:stack/EksnetMultus/1",
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "MultusEnisReconciliation",
            "ResourceType": "Custom::MultusEniReconciliation",
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:eu-central-1:123456789012:function:multus-eni",
                                   "Groups": ["g"]},
            **({"PhysicalResourceId": "mycluster-multus-eni-reconciliation"} if request_type != "Create" else {}),
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cloudformation():
    cfn = CloudFormation()
    yield cfn
    cfn.close()


@pytest.fixture
def reconcile_request(reconcile, ops, node, settings_of, clients, cloudformation):
    """Send one request to the function's custom resource path; returns CloudFormation's copy of the answer."""

    def send(request_type: str = "Create", refuse: tuple[str, ...] = (), **settings_overrides) -> dict:
        ec2, autoscaling = clients(refuse)
        reconcile.handle_request(cloudformation.request(request_type), ec2, autoscaling,
                                 settings_of(node, **settings_overrides), ops.logger())
        return cloudformation.responses[-1]

    return send


def _health(node) -> str:
    (group,) = node.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[node.group])["AutoScalingGroups"]
    return group["Instances"][0]["HealthStatus"]


def test_a_node_running_before_the_hooks_gets_its_enis_at_deploy_time(node, reconcile_request):
    assert node.our_enis() == []
    answer = reconcile_request()
    enis = node.our_enis()
    assert sorted(e["SubnetId"] for e in enis) == sorted(node.multus_subnets[node.zone])
    assert all(e["Attachment"]["InstanceId"] == node.instance_id and e["Attachment"]["DeleteOnTermination"]
               and e["SourceDestCheck"] is False for e in enis)
    assert answer["Status"] == "SUCCESS" and answer["Data"]["reconciled"] == 1


def test_the_answer_is_what_cloudformation_expects_at_its_presigned_url(reconcile_request, cloudformation):
    answer = reconcile_request()
    assert set(answer) == {"Status", "Reason", "PhysicalResourceId", "StackId", "RequestId", "LogicalResourceId",
                           "Data"}
    assert cloudformation.content_types == [""]  # the URL is signed for an empty content type


def test_reconciling_again_changes_nothing_and_creates_nothing(node, reconcile_request):
    reconcile_request()
    before = sorted(e["NetworkInterfaceId"] for e in node.our_enis())
    node.calls.calls.clear()
    answer = reconcile_request("Update")
    assert sorted(e["NetworkInterfaceId"] for e in node.our_enis()) == before
    assert [n for n in node.calls.names() if n.startswith(("Create", "Attach", "Modify"))] == []
    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] == "mycluster-multus-eni-reconciliation"


def test_every_running_node_of_every_group_is_reconciled(node, reconcile_request):
    (first,) = node.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[node.group])["AutoScalingGroups"]
    second = f"{node.group}-b"
    node.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=second, LaunchTemplate={"LaunchTemplateName": first["LaunchTemplate"]["LaunchTemplateName"]},
        MinSize=2, MaxSize=2, DesiredCapacity=2, VPCZoneIdentifier=first["VPCZoneIdentifier"])
    answer = reconcile_request(group_names=frozenset({node.group, second}))
    assert answer["Data"]["reconciled"] == 3
    for group in node.autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[node.group, second])["AutoScalingGroups"]:
        for member in group["Instances"]:
            attached = node.ec2.describe_network_interfaces(Filters=[
                {"Name": "attachment.instance-id", "Values": [member["InstanceId"]]},
                {"Name": "tag:cluster", "Values": [node.cluster]}])["NetworkInterfaces"]
            assert sorted(e["Attachment"]["DeviceIndex"] for e in attached) == [1, 2]


def test_a_running_node_that_cannot_get_its_enis_is_cleaned_up_and_replaced(node, reconcile_request):
    subnet = node.ec2.describe_instances(InstanceIds=[node.instance_id])["Reservations"][0]["Instances"][0]["SubnetId"]
    foreign = node.ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    node.ec2.attach_network_interface(NetworkInterfaceId=foreign, InstanceId=node.instance_id, DeviceIndex=2)
    answer = reconcile_request()
    assert node.our_enis() == []
    assert _health(node) == "Unhealthy"  # the group replaces it; the replacement comes through the launch hook
    assert answer["Status"] == "SUCCESS" and answer["Data"]["replaced"] == 1
    assert node.instance_id in answer["Reason"]


def test_a_node_waiting_on_the_launch_hook_is_handled_as_a_launch_completed_by_instance_id(node, reconcile_request):
    node.start(node.launch_hook)
    answer = reconcile_request()
    assert len(node.our_enis()) == 2
    assert node.results() == ["CONTINUE"]
    assert [p for p in node.calls.of("CompleteLifecycleAction")] == [{
        "AutoScalingGroupName": node.group, "LifecycleHookName": node.launch_hook, "LifecycleActionResult": "CONTINUE",
        "InstanceId": node.instance_id}]
    assert answer["Data"]["completed"] == 1


def test_a_terminating_node_is_left_to_its_hook(node, reconcile_request):
    node.start(node.terminate_hook)
    answer = reconcile_request()
    assert node.our_enis() == [] and answer["Data"]["skipped"] == 1


def test_delete_undoes_nothing_and_makes_no_call(node, reconcile_request):
    reconcile_request()
    node.calls.calls.clear()
    answer = reconcile_request("Delete")
    assert answer["Status"] == "SUCCESS" and node.calls.names() == []
    assert len(node.our_enis()) == 2


def test_a_reconciliation_that_cannot_list_the_groups_answers_failed_with_the_reason(node, reconcile_request,
                                                                                      clients, reconcile, ops,
                                                                                      settings_of, cloudformation):
    ec2, autoscaling = clients()
    autoscaling.meta.events.register("before-call.autoscaling.DescribeAutoScalingGroups",
                                     lambda **_: (_ for _ in ()).throw(RuntimeError("no answer")))
    reconcile.handle_request(cloudformation.request(), ec2, autoscaling, settings_of(node), ops.logger())
    answer = cloudformation.responses[-1]
    assert answer["Status"] == "FAILED" and "no answer" in answer["Reason"]


def test_a_reconciliation_out_of_time_answers_failed_and_replaces_nobody(node, reconcile, ops, settings_of, clients,
                                                                         cloudformation):
    ec2, autoscaling = clients(seconds_left=60)
    reconcile.handle_request(cloudformation.request(), ec2, autoscaling, settings_of(node), ops.logger())
    answer = cloudformation.responses[-1]
    assert answer["Status"] == "FAILED" and "deploy again to continue" in answer["Reason"]
    assert answer["Data"]["unfinished"] == 1 and _health(node) == "Healthy"
