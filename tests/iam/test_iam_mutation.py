"""baton_local.iam.record, .template and .mutation: recording decisions, resolving a
template's policies, and the offline mutation check of its Allow statements."""

import json
from pathlib import Path

import pytest

from baton_local import cfn_yaml
from baton_local.iam.evaluate import Decision, Request, evaluate
from baton_local.iam.mutation import Grant, mutation_check, resource_policy_key
from baton_local.iam.record import UNMAPPED, Recorder, from_line, read, to_line
from baton_local.iam.template import SyntheticValues, aws_managed_policies, resource_policies, role_policies

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"

TEMPLATE = """
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  BucketPolicy:
    Type: AWS::S3::BucketPolicy
    Properties:
      Bucket: !Ref Bucket
      PolicyDocument:
        Statement:
          - Sid: DenyInsecureTransport
            Effect: Deny
            Principal: '*'
            Action: 's3:*'
            Resource: [!GetAtt Bucket.Arn, !Sub '${Bucket.Arn}/*']
            Condition: { Bool: { 'aws:SecureTransport': 'false' } }
  Queue:
    Type: AWS::SQS::Queue
  Rule:
    Type: AWS::Events::Rule
  QueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Queue]
      PolicyDocument:
        Statement:
          - Sid: RuleDelivers
            Effect: Allow
            Principal: { Service: events.amazonaws.com }
            Action: sqs:SendMessage
            Resource: !GetAtt Queue.Arn
            Condition: { ArnEquals: { 'aws:SourceArn': !GetAtt Rule.Arn } }
  WorkerRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: work
          PolicyDocument:
            Statement:
              - Sid: ReadInputs
                Effect: Allow
                Action: s3:GetObject
                Resource: !Sub '${Bucket.Arn}/inbox/*'
              - Sid: WriteOutputs
                Effect: Allow
                Action: s3:PutObject
                Resource: !Sub '${Bucket.Arn}/out/*'
              - Sid: NeverUsed
                Effect: Allow
                Action: s3:DeleteObject
                Resource: !Sub '${Bucket.Arn}/*'
  Watchdog:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Stopped: { Type: SQS, Properties: { Queue: !GetAtt Queue.Arn } }
      Policies:
        - Statement:
            - Sid: FailTokens
              Effect: Allow
              Action: states:SendTaskFailure
              Resource: '*'
"""


@pytest.fixture
def stack():
    template = cfn_yaml.load(TEMPLATE)
    values = SyntheticValues(template, stack="demo")
    roles = role_policies(template, values, managed=aws_managed_policies())
    identity = {arn: role.policies for arn, role in roles.items()}
    return values, identity, resource_policies(template, values)


def session(role_arn):
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_arn.rsplit('/', 1)[1]}/s"


def record_suite(path, identity, resources, requests):
    """What the hook does for each request: evaluate with the full policies, record."""
    recorder = Recorder(path)
    for request in requests:
        key = resource_policy_key(request.resources[0])
        role = request.role_arn
        recorder.record(request, evaluate(request, identity.get(role, {}), resources.get(key)), "op", key)


def test_template_resolution(stack):
    values, identity, resources = stack
    worker = values["WorkerRole.Arn"]
    assert worker == f"arn:aws:iam::{ACCOUNT}:role/demo-WorkerRole"
    assert identity[worker]["work"]["Statement"][0]["Resource"] == "arn:aws:s3:::demo-bucket/inbox/*"
    watchdog = identity[values["WatchdogRole.Arn"]]
    assert set(watchdog) == {"WatchdogRolePolicy0", "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                             "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"}
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:demo-Queue"
    assert set(resources) == {"arn:aws:s3:::demo-bucket", queue}
    assert resources[queue]["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == \
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/demo-Rule"
    with pytest.raises(KeyError, match="Missing"):
        role_policies({"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [
            {"PolicyName": "p", "PolicyDocument": {"Statement": [{"Resource": {"Ref": "Missing"}}]}}]}}}},
            {"R.Arn": "arn:aws:iam::1:role/r"})


def test_records_round_trip(tmp_path):
    request = Request("events.amazonaws.com", "sqs:SendMessage", ("arn:aws:sqs:us-east-1:1:q",),
                      {"aws:SourceArn": "arn:aws:events:us-east-1:1:rule/r", "aws:TagKeys": ("a", "b")})
    decision = Decision(True, "allowed by RuleDelivers", "RuleDelivers")
    line = to_line(request, decision, "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q")
    back = from_line(line)
    assert back.request.action == "sqs:SendMessage" and back.allowed and back.sid == "RuleDelivers"
    assert back.request.context["aws:TagKeys"] == ["a", "b"] and back.resource_policy == "arn:aws:sqs:us-east-1:1:q"
    Recorder(tmp_path / "r.jsonl").record(request, decision)
    Recorder(tmp_path / "r.jsonl").record(request, Decision(False, "no statement allows"))
    assert [r.allowed for r in read(tmp_path / "r.jsonl")] == [True, False]
    assert json.loads((tmp_path / "r.jsonl").read_text().splitlines()[1])["decision"] == "deny"


def test_mutation_finds_the_statement_no_request_needs(stack, tmp_path):
    values, identity, resources = stack
    worker, watchdog = values["WorkerRole.Arn"], values["WatchdogRole.Arn"]
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:demo-Queue"
    tls = {"aws:SecureTransport": True}
    requests = [
        Request(session(worker), "s3:GetObject", ("arn:aws:s3:::demo-bucket/inbox/in.txt",), tls, worker),
        Request(session(worker), "s3:PutObject", ("arn:aws:s3:::demo-bucket/out/result",), tls, worker),
        Request(session(worker), "s3:PutObject", ("arn:aws:s3:::demo-bucket/inbox/x",), tls, worker),  # denied
        Request(session(watchdog), "states:SendTaskFailure", ("*",), tls, watchdog),
        Request(session(watchdog), "sqs:ReceiveMessage", (queue,), tls, watchdog),
        Request("events.amazonaws.com", "sqs:SendMessage", (queue,),
                {"aws:SourceArn": values["Rule.Arn"], "aws:SourceAccount": ACCOUNT}),
        Request(session(worker), "ecs:DeleteCluster", ("*",), {}, worker),
    ]
    path = tmp_path / "iam.jsonl"
    record_suite(path, identity, resources, requests[:-1])
    Recorder(path).record(requests[-1], Decision(False, f"{UNMAPPED}: ecs:DeleteCluster"), "ecs:DeleteCluster")
    report = mutation_check(read(path), identity, resources)
    assert report.unneeded == [Grant(worker, "work", "NeverUsed", "identity")]
    needed = {(g.owner, g.sid): r.request.action for g, r in report.needed.items()}
    assert needed == {(worker, "ReadInputs"): "s3:GetObject", (worker, "WriteOutputs"): "s3:PutObject",
                      (watchdog, "FailTokens"): "states:SendTaskFailure", (queue, "RuleDelivers"): "sqs:SendMessage"}
    assert not report.mismatches and not report.ok
    assert any(line.startswith("UNNEEDED") and "NeverUsed" in line for line in report.lines())


def test_mutation_reports_records_the_policies_no_longer_explain(stack, tmp_path):
    values, identity, resources = stack
    worker = values["WorkerRole.Arn"]
    request = Request(session(worker), "s3:GetObject", ("arn:aws:s3:::demo-bucket/secret",),
                      {"aws:SecureTransport": True}, worker)
    Recorder(tmp_path / "iam.jsonl").record(request, Decision(True, "allowed by an older grant", "Old"))
    report = mutation_check(read(tmp_path / "iam.jsonl"), identity, resources)
    assert [r.request.resources for r, _ in report.mismatches] == [("arn:aws:s3:::demo-bucket/secret",)]


# -------------------------------------------------------------- template.yaml
@pytest.fixture(scope="module")
def baton():
    template = cfn_yaml.load((ROOT / "template.yaml").read_text())
    values = SyntheticValues(template, stack="baton")
    conditions = {name: False for name in template.get("Conditions", {})}
    roles = role_policies(template, values, conditions, managed=aws_managed_policies())
    assert all(not r.missing_managed for r in roles.values())
    return values, {arn: role.policies for arn, role in roles.items()}, resource_policies(template, values, conditions)


def ask(baton, role_id, action, resource="*", **context):
    values, identity, resources = baton
    role = values[f"{role_id}.Arn"]
    context = {"aws:SecureTransport": True, **{k.replace("__", ":"): v for k, v in context.items()}}
    request = Request(session(role), action, (resource,), context, role)
    return evaluate(request, identity[role], resources.get(resource_policy_key(resource) or ""))


@pytest.mark.parametrize("role_id,action,resource", [
    # each role is refused what its component never calls
    ("TaskRole", "ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/baton-task1:1"),
    ("TaskRole", "ecs:StopTask", "arn:aws:ecs:us-east-1:123456789012:task/baton-Cluster/1"),
    ("TaskRole", "s3:DeleteObject", "arn:aws:s3:::baton-databucket/executions/x"),
    ("TaskRole", "s3:PutObject", "arn:aws:s3:::baton-databucket/inbox/x"),
    ("TaskWatchdogFunctionRole", "states:SendTaskSuccess", "*"),
    ("TaskWatchdogFunctionRole", "ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/baton-task1:1"),
    ("TaskWatchdogFunctionRole", "s3:PutObject", "arn:aws:s3:::baton-databucket/executions/x"),
    ("PrepareInputFunctionRole", "states:SendTaskFailure", "*"),
    ("OffloadOutputFunctionRole", "s3:GetObject", "arn:aws:s3:::baton-databucket/inbox/x"),
    ("PipelineStateMachineRole", "ecs:RunTask", "arn:aws:ecs:us-east-1:123456789012:task-definition/baton-task1:1"),
    ("TaskStateMachineRole", "states:SendTaskSuccess", "*"),
    ("SyncStateMachineRole", "s3:GetObject", "arn:aws:s3:::baton-databucket/inbox/x"),
    ("TaskExecutionRole", "s3:GetObject", "arn:aws:s3:::baton-databucket/inbox/x"),
])
def test_template_roles_are_refused_what_they_never_call(baton, role_id, action, resource):
    assert not ask(baton, role_id, action, resource).allowed


def test_template_roles_are_granted_what_they_call(baton):
    assert ask(baton, "TaskRole", "states:SendTaskSuccess").allowed
    assert ask(baton, "TaskRole", "s3:GetObject", "arn:aws:s3:::baton-databucket/inbox/input.txt").allowed
    assert ask(baton, "TaskWatchdogFunctionRole", "states:SendTaskFailure").allowed
    cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/baton-Cluster"
    assert ask(baton, "TaskStateMachineRole", "ecs:RunTask",
               "arn:aws:ecs:us-east-1:123456789012:task-definition/baton-task1:3", ecs__cluster=cluster).allowed
    # and nobody over plain http: the bucket's DenyInsecureTransport
    refused = ask(baton, "TaskRole", "s3:GetObject", "arn:aws:s3:::baton-databucket/inbox/input.txt",
                  aws__SecureTransport=False)
    assert refused.reason == "explicit deny by DenyInsecureTransport"


def test_the_watchdog_may_list_its_clusters_tasks(baton):
    cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/baton-Cluster"
    assert ask(baton, "TaskWatchdogFunctionRole", "ecs:ListTasks", "*", ecs__cluster=cluster).allowed


def test_aws_own_requests_are_exempt_by_name_and_everything_else_must_be_needed():
    from baton_local.iam.mutation import Grant, Report, _note, exemption

    sync_rule = Grant("arn:aws:iam::123456789012:role/baton-local-SyncStateMachineRole-X", "p", "SyncIntegrationRule",
                      "identity")
    same_sid_elsewhere = Grant("arn:aws:iam::123456789012:role/baton-local-TaskRole-X", "p", "SyncIntegrationRule",
                               "identity")
    assert "ecs-iam.html" in exemption(sync_rule) and exemption(same_sid_elsewhere) is None
    report = Report()
    _note(report, sync_rule, None)
    assert report.ok and report.exempt == [sync_rule]
    _note(report, same_sid_elsewhere, None)
    assert not report.ok and report.unneeded == [same_sid_elsewhere]
