"""baton_local.iam.evaluate: AWS's evaluation logic (IAM user guide, "Policy
evaluation logic"), and each statement shape template.yaml uses."""

import pytest

from baton_local.iam.conditions import UnsupportedPolicy
from baton_local.iam.evaluate import Principal, Request, evaluate

ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/baton"
OTHER_CLUSTER = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/other"
WATCHDOG_ROLE = f"arn:aws:iam::{ACCOUNT}:role/baton-TaskWatchdogFunctionRole"
WATCHDOG = f"arn:aws:sts::{ACCOUNT}:assumed-role/baton-TaskWatchdogFunctionRole/watchdog"
TASK_ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/baton-TaskRole/task"
BUCKET = "arn:aws:s3:::baton-data"


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, condition=None, sid=None, **extra):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition:
        statement["Condition"] = condition
    if sid:
        statement["Sid"] = sid
    return statement


def test_principals():
    session = Principal.parse(WATCHDOG)
    assert session.role_arn == WATCHDOG_ROLE and session.account == ACCOUNT and session.service is None
    with_path = Principal.parse(WATCHDOG, role_arn=f"arn:aws:iam::{ACCOUNT}:role/service/x")
    assert with_path.principal_arn == f"arn:aws:iam::{ACCOUNT}:role/service/x"
    assert Principal.parse("events.amazonaws.com").service == "events.amazonaws.com"


def test_implicit_deny_and_the_aws_message():
    decision = evaluate(Request(WATCHDOG, "ecs:ListTasks", ("*",)), [policy()])
    assert not decision.allowed and decision.reason == "no statement allows" and decision.statement is None
    assert decision.message(WATCHDOG, "ecs:ListTasks") == (
        f"User: {WATCHDOG} is not authorized to perform: ecs:ListTasks on resource: * "
        "because no identity-based policy allows the ecs:ListTasks action")


def test_explicit_deny_wins_over_any_allow():
    policies = {"p": policy(allow("s3:*", "*", sid="All"),
                            {"Sid": "NoLogs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"})}
    decision = evaluate(Request(WATCHDOG, "s3:PutObject", ("arn:aws:s3:::my-logs/x",)), policies)
    assert not decision.allowed and decision.reason == "explicit deny by NoLogs"
    assert decision.explicit_deny and decision.policy == "p" and decision.policy_type == "identity-based"
    assert decision.message(WATCHDOG, "s3:PutObject").endswith("with an explicit deny in an identity-based policy")
    assert evaluate(Request(WATCHDOG, "s3:PutObject", ("arn:aws:s3:::data/x",)), policies).reason == "allowed by All"


def test_the_guides_carlos_example():
    # "Policy evaluation for requests within a single account", "Example identity-based
    # and resource-based policy evaluation": Carlos's identity policy denies s3:* on
    # *log*; the logs bucket's policy allows him s3:*: the explicit deny wins.
    carlos = f"arn:aws:iam::{ACCOUNT}:user/carlossalazar"
    identity = policy(
        allow(["s3:GetBucketLocation", "s3:ListAllMyBuckets"], "*", sid="AllowS3ListRead"),
        allow("s3:*", ["arn:aws:s3:::carlossalazar", "arn:aws:s3:::carlossalazar/*"], sid="AllowS3Self"),
        {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"})
    bucket = policy({"Effect": "Allow", "Principal": {"AWS": carlos}, "Action": "s3:*",
                     "Resource": ["arn:aws:s3:::carlossalazar-logs", "arn:aws:s3:::carlossalazar-logs/*"]})
    logs = Request(carlos, "s3:PutObject", ("arn:aws:s3:::carlossalazar-logs/app.log",))
    assert evaluate(logs, [identity], bucket).reason == "explicit deny by DenyS3Logs"
    own = Request(carlos, "s3:PutObject", ("arn:aws:s3:::carlossalazar/notes.txt",))
    assert evaluate(own, [identity], bucket).allowed
    # without the deny, the bucket policy alone allows within the account
    assert evaluate(logs, [policy()], bucket).allowed


def test_resource_policy_alone_allows_in_the_same_account_not_across():
    bucket = policy({"Effect": "Allow", "Principal": {"AWS": WATCHDOG_ROLE}, "Action": "s3:GetObject",
                     "Resource": f"{BUCKET}/*"})
    request = Request(WATCHDOG, "s3:GetObject", (f"{BUCKET}/k",))
    assert evaluate(request, None, bucket).allowed
    assert not evaluate(request, None, bucket, resource_account="999999999999").allowed
    assert evaluate(request, [policy(allow("s3:GetObject", "*"))], bucket, resource_account="999999999999").allowed


def test_an_account_principal_delegates_to_iam_and_does_not_grant():
    bucket = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                     "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"})
    assert not evaluate(Request(WATCHDOG, "s3:GetObject", (f"{BUCKET}/k",)), None, bucket).allowed


def test_not_action_and_not_resource():
    policies = [policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
                       {"Effect": "Deny", "Action": "s3:*", "NotResource": f"{BUCKET}/*"})]
    assert evaluate(Request(WATCHDOG, "s3:GetObject", (f"{BUCKET}/k",)), policies).allowed
    assert not evaluate(Request(WATCHDOG, "s3:GetObject", ("arn:aws:s3:::other/k",)), policies).allowed
    assert not evaluate(Request(WATCHDOG, "iam:PassRole", (WATCHDOG_ROLE,)), policies).allowed


def test_every_resource_of_a_request_must_be_allowed():
    policies = [policy(allow("ecs:DescribeTasks", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/*"))]
    mine = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/1"
    theirs = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/other/2"
    assert evaluate(Request(WATCHDOG, "ecs:DescribeTasks", (mine,)), policies).allowed
    decision = evaluate(Request(WATCHDOG, "ecs:DescribeTasks", (mine, theirs)), policies)
    assert not decision.allowed and decision.resource == theirs


def test_statements_without_a_sid_are_named_by_policy_and_index():
    decision = evaluate(Request(WATCHDOG, "states:SendTaskFailure"), {"fail": policy(allow("states:*", "*"))})
    assert decision.reason == "allowed by fail[0]" and decision.sid == "fail[0]"


def test_policy_variables_are_refused_loudly():
    with pytest.raises(UnsupportedPolicy):
        evaluate(Request(WATCHDOG, "s3:GetObject", (f"{BUCKET}/k",)),
                 [policy(allow("s3:GetObject", f"{BUCKET}/${{aws:username}}/*"))])


def test_policies_as_json_text():
    text = '{"Statement": [{"Effect": "Allow", "Action": "states:SendTaskFailure", "Resource": "*"}]}'
    assert evaluate(Request(WATCHDOG, "states:SendTaskFailure"), {"p": text}).allowed


# ------------------------------------------------ the template's statement shapes
FIND_TASKS_AS_IT_IS = allow("ecs:ListTasks", f"arn:aws:ecs:us-east-1:{ACCOUNT}:container-instance/baton/*",
                            {"ArnEquals": {"ecs:cluster": CLUSTER}}, sid="FindTasksOfEndedExecutions")
FIND_TASKS_ON_STAR = allow("ecs:ListTasks", "*", {"ArnEquals": {"ecs:cluster": CLUSTER}}, sid="FindTasks")


def list_tasks(cluster):
    return Request(WATCHDOG, "ecs:ListTasks", ("*",), {"ecs:cluster": cluster})


def test_list_tasks_on_star_with_arn_equals_cluster():
    assert evaluate(list_tasks(CLUSTER), [policy(FIND_TASKS_ON_STAR)]).allowed
    assert not evaluate(list_tasks(OTHER_CLUSTER), [policy(FIND_TASKS_ON_STAR)]).allowed
    assert not evaluate(Request(WATCHDOG, "ecs:ListTasks", ("*",)), [policy(FIND_TASKS_ON_STAR)]).allowed


def test_list_tasks_granted_on_container_instances_is_refused():
    # issue 26, item 1: a ListTasks without a container instance is authorised on "*"
    decision = evaluate(list_tasks(CLUSTER), [policy(FIND_TASKS_AS_IT_IS)])
    assert not decision.allowed and decision.reason == "no statement allows"


def test_list_bucket_with_string_like_prefix():
    grant = allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["inbox/*", "executions/*"]}},
                  sid="MissingInputsAre404")

    def listing(**context):
        return evaluate(Request(TASK_ROLE_SESSION, "s3:ListBucket", (BUCKET,), context), [policy(grant)])

    assert listing(**{"s3:prefix": "executions/run-1/out"}).allowed
    assert listing(**{"s3:prefix": "inbox/input.txt"}).allowed
    assert not listing(**{"s3:prefix": "secrets/"}).allowed
    assert not listing().allowed  # no prefix in the request: the key is missing


DENY_INSECURE = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [BUCKET, f"{BUCKET}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def test_bucket_policy_denies_insecure_transport_to_everyone():
    identity = [policy(allow("s3:GetObject", f"{BUCKET}/inbox/*"))]
    bucket = policy(DENY_INSECURE)

    def get(secure):
        request = Request(TASK_ROLE_SESSION, "s3:GetObject", (f"{BUCKET}/inbox/x",), {"aws:SecureTransport": secure})
        return evaluate(request, identity, bucket)

    assert get(True).allowed
    refused = get(False)
    assert refused.reason == "explicit deny by DenyInsecureTransport" and refused.policy_type == "resource-based"
    assert refused.message(TASK_ROLE_SESSION, "s3:GetObject").endswith("with an explicit deny in a resource-based policy")
    # the deny names no Allow: without an identity grant the request is still refused
    assert not evaluate(Request(TASK_ROLE_SESSION, "s3:GetObject", (f"{BUCKET}/inbox/x",),
                                {"aws:SecureTransport": True}), [policy()], bucket).allowed


QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:baton-WatchdogQueue"
RULES = [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/baton-TaskStoppedRule",
         f"arn:aws:events:us-east-1:{ACCOUNT}:rule/baton-ExecutionEndedRule"]
QUEUE_POLICY = policy(
    {"Sid": "EventBridgeDelivers", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
     "Action": "sqs:SendMessage", "Resource": QUEUE, "Condition": {"ArnEquals": {"aws:SourceArn": RULES}}},
    {"Sid": "OnlyOperatorsReadLiveTokens", "Effect": "Deny", "Principal": "*",
     "Action": ["sqs:ReceiveMessage", "sqs:PurgeQueue"], "Resource": QUEUE,
     "Condition": {"ArnNotLike": {"aws:PrincipalArn": [WATCHDOG_ROLE]}}})


def test_queue_policy_lets_only_the_rules_send():
    def send(principal, source):
        return evaluate(Request(principal, "sqs:SendMessage", (QUEUE,), {"aws:SourceArn": source}), None, QUEUE_POLICY)

    assert send("events.amazonaws.com", RULES[1]).reason == "allowed by EventBridgeDelivers"
    assert not send("events.amazonaws.com", f"arn:aws:events:us-east-1:{ACCOUNT}:rule/someone-else").allowed
    assert not send("sns.amazonaws.com", RULES[0]).allowed
    assert not evaluate(Request("events.amazonaws.com", "sqs:SendMessage", (QUEUE,)), None, QUEUE_POLICY).allowed
    assert not send(TASK_ROLE_SESSION, RULES[0]).allowed


def test_queue_policy_denies_receive_to_all_but_the_watchdog():
    grant = [policy(allow(["sqs:ReceiveMessage", "sqs:DeleteMessage"], QUEUE))]
    assert evaluate(Request(WATCHDOG, "sqs:ReceiveMessage", (QUEUE,)), grant, QUEUE_POLICY).allowed
    other = f"arn:aws:sts::{ACCOUNT}:assumed-role/operator/me"
    decision = evaluate(Request(other, "sqs:ReceiveMessage", (QUEUE,)), grant, QUEUE_POLICY)
    assert decision.reason == "explicit deny by OnlyOperatorsReadLiveTokens"
    assert evaluate(Request(other, "sqs:DeleteMessage", (QUEUE,)), grant, QUEUE_POLICY).allowed


def test_pass_role_only_to_ecs_tasks():
    role = f"arn:aws:iam::{ACCOUNT}:role/baton-TaskRole"
    grant = [policy(allow("iam:PassRole", [role], {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}))]
    machine = f"arn:aws:sts::{ACCOUNT}:assumed-role/baton-TaskStateMachineRole/sfn"

    def pass_to(service):
        return evaluate(Request(machine, "iam:PassRole", (role,), {"iam:PassedToService": service}), grant)

    assert pass_to("ecs-tasks.amazonaws.com").allowed
    assert not pass_to("lambda.amazonaws.com").allowed
    assert not evaluate(Request(machine, "iam:PassRole", (f"arn:aws:iam::{ACCOUNT}:role/admin",),
                                {"iam:PassedToService": "ecs-tasks.amazonaws.com"}), grant).allowed


def test_tag_resource_only_at_run_task():
    task = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/0123"
    grant = [policy(allow("ecs:TagResource", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/baton/*",
                          {"StringEquals": {"ecs:CreateAction": "RunTask"}}))]
    machine = f"arn:aws:sts::{ACCOUNT}:assumed-role/baton-SyncStateMachineRole/sfn"
    assert evaluate(Request(machine, "ecs:TagResource", (task,), {"ecs:CreateAction": "RunTask"}), grant).allowed
    assert not evaluate(Request(machine, "ecs:TagResource", (task,)), grant).allowed  # a direct TagResource


def test_run_task_with_arn_equals_cluster():
    grant = [policy(allow("ecs:RunTask", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/baton-*:*",
                          {"ArnEquals": {"ecs:cluster": CLUSTER}}))]
    machine = f"arn:aws:sts::{ACCOUNT}:assumed-role/baton-TaskStateMachineRole/sfn"
    definition = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/baton-task1:7"
    assert evaluate(Request(machine, "ecs:RunTask", (definition,), {"ecs:cluster": CLUSTER}), grant).allowed
    assert not evaluate(Request(machine, "ecs:RunTask", (definition,), {"ecs:cluster": OTHER_CLUSTER}), grant).allowed
    other_family = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/evil-task:1"
    assert not evaluate(Request(machine, "ecs:RunTask", (other_family,), {"ecs:cluster": CLUSTER}), grant).allowed
