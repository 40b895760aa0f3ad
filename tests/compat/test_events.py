"""compat.events: the gap is still there in the pinned moto (when an upgrade closes it,
the test says which fix to delete) and the fix closes it. EventBridge's Lambda
targets, invoked asynchronously as AWS does; and, under the IAM hook, its deliveries
to queues and state machines authorised as AWS authorises them."""

import json
import time

import pytest

from baton_local.testing import client
from compat_helpers import FakeWatch, lambda_role, receive_all, wait_for
from iam_host import iam_host  # noqa: F401 - a fixture


def test_gap_eventbridge_lambda_targets_fail_in_plain_moto(moto):
    events = client(moto, "events")
    events.put_rule(Name="gap-rule", EventPattern=json.dumps({"source": ["baton.gap"]}))
    events.put_targets(Rule="gap-rule", Targets=[
        {"Id": "fn", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:nothing"}])
    plain = client(moto, "events")
    plain.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(Exception):
        plain.put_events(Entries=[{"Source": "baton.gap", "DetailType": "x", "Detail": "{}"}])


def test_fixed_eventbridge_invokes_lambda_asynchronously_as_aws_does(host):
    # AWS: a Lambda target is an asynchronous invocation. Once Lambda accepted the
    # event, the rule's RetryPolicy and DLQ do not apply: a function error gets the
    # function's async retries, then its OnFailure destination, or is dropped.
    lam, events, sqs = client(host, "lambda"), client(host, "events"), client(host, "sqs")
    fn = lam.create_function(FunctionName="stack-EchoFunction-rule", Runtime="provided.al2023", Role=lambda_role(host),
                             Handler="bootstrap", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    rule_dlq = sqs.create_queue(QueueName="rule-dead-letters")["QueueUrl"]
    on_failure = sqs.create_queue(QueueName="async-on-failure")["QueueUrl"]
    arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=1,
                                         DestinationConfig={"OnFailure": {"Destination": arn(on_failure)}})
    events.put_rule(Name="to-lambda", EventPattern=json.dumps({"source": ["aws.ecs"], "detail": {"lastStatus": ["STOPPED"]}}))
    events.put_targets(Rule="to-lambda", Targets=[{"Id": "fn", "Arn": fn, "DeadLetterConfig": {"Arn": arn(rule_dlq)},
                                                   "RetryPolicy": {"MaximumRetryAttempts": 185}}])
    before = len(FakeWatch.calls)
    for detail in ({"lastStatus": "STOPPED", "n": 1}, {"lastStatus": "RUNNING", "n": 2},
                   {"lastStatus": "STOPPED", "please-fail": 1}):
        events.put_events(Entries=[{"Source": "aws.ecs", "DetailType": "ECS Task State Change",
                                    "Detail": json.dumps(detail)}])
    failed = receive_all(sqs, on_failure, 5)
    delivered = [body for _, body in FakeWatch.calls[before:]]
    assert any(b["detail"].get("n") == 1 for b in delivered), delivered
    assert all(isinstance(b["time"], str) and b["time"].endswith("Z") for b in delivered), "ISO-8601 times, as AWS sends"
    assert not any(b["detail"].get("n") == 2 for b in delivered), "a RUNNING event does not match the rule"
    assert sum("please-fail" in b["detail"] for b in delivered) == 2, "one attempt and MaximumRetryAttempts=1 retry"
    assert failed and json.loads(failed[0]["Body"])["requestPayload"]["detail"]["please-fail"] == 1
    assert not receive_all(sqs, rule_dlq, 1), "the rule's DLQ is only for events Lambda never accepted"


# ------------------------------------------------- deliveries authorised under the IAM hook
def queue_with_arn(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def events_may_send(sqs, url, queue_arn, *rule_arns):
    """The queue policy EventBridge needs: events.amazonaws.com may SendMessage for these
    rules only (EventBridge user guide, "Using resource-based policies", Amazon SQS)."""
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "EventBridgeDelivers", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": list(rule_arns)}}}]})})


def test_gap_eventbridge_sqs_targets_ignore_the_queue_policy_in_plain_moto(moto):
    events, sqs = client(moto, "events"), client(moto, "sqs")
    url, queue_arn = queue_with_arn(sqs, "gap-policy-target")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn}]})})
    events.put_rule(Name="gap-policy-rule", EventPattern=json.dumps({"source": ["baton.gap-policy"]}))
    events.put_targets(Rule="gap-policy-rule", Targets=[{"Id": "q", "Arn": queue_arn}])
    events.put_events(Entries=[{"Source": "baton.gap-policy", "DetailType": "x", "Detail": "{}"}])
    assert receive_all(sqs, url, 1), (
        "moto now authorises EventBridge's deliveries to SQS by the queue policy: delete "
        "compat.fix_eventbridge_sqs_targets_skip_the_queue_policy")


def test_fixed_eventbridge_sqs_targets_need_the_queue_policy_under_the_iam_hook(iam_host):
    events, sqs = client(iam_host.endpoint, "events"), client(iam_host.endpoint, "sqs")
    url, queue_arn = queue_with_arn(sqs, "iam-target")
    dlq, dlq_arn = queue_with_arn(sqs, "iam-target-dlq")
    rule = events.put_rule(Name="iam-to-queue", EventPattern=json.dumps({"source": ["baton.iam"]}))["RuleArn"]
    other_rule = rule.replace("iam-to-queue", "some-other-rule")
    events_may_send(sqs, url, queue_arn, other_rule)
    events_may_send(sqs, dlq, dlq_arn, rule)
    events.put_targets(Rule="iam-to-queue", Targets=[{"Id": "q", "Arn": queue_arn,
                                                      "DeadLetterConfig": {"Arn": dlq_arn}}])
    send = lambda n: events.put_events(Entries=[{"Source": "baton.iam", "DetailType": "x",  # noqa: E731
                                                 "Detail": json.dumps({"n": n})}])
    send(1)
    assert not receive_all(sqs, url, 1), "the queue policy does not let this rule send"
    dead = receive_all(sqs, dlq, 1)
    assert [json.loads(m["Body"])["detail"] for m in dead] == [{"n": 1}], "a permissions failure goes to the DLQ"
    refused = [r for r in iam_host.decisions("sqs:SendMessage") if r.request.resources == (queue_arn,)]
    assert [(r.allowed, r.request.principal, r.request.context["aws:SourceArn"], r.resource_policy)
            for r in refused] == [(False, "events.amazonaws.com", rule, queue_arn)]

    events_may_send(sqs, url, queue_arn, other_rule, rule)
    send(2)
    assert [json.loads(m["Body"])["detail"] for m in receive_all(sqs, url, 1)] == [{"n": 2}]
    assert not receive_all(sqs, dlq, 1)
    last = [r for r in iam_host.decisions("sqs:SendMessage") if r.request.resources == (queue_arn,)][-1]
    assert (last.allowed, last.sid, last.request.context["aws:SourceAccount"]) == (True, "EventBridgeDelivers",
                                                                                   rule.split(":")[4])


def test_fixed_eventbridge_dead_letter_queues_need_their_policy_too(iam_host):
    events, sqs = client(iam_host.endpoint, "events"), client(iam_host.endpoint, "sqs")
    url, queue_arn = queue_with_arn(sqs, "iam-target-closed")
    dlq, dlq_arn = queue_with_arn(sqs, "iam-target-closed-dlq")  # no policy: EventBridge may not send
    events.put_rule(Name="iam-to-closed-queue", EventPattern=json.dumps({"source": ["baton.iam-closed"]}))
    events.put_targets(Rule="iam-to-closed-queue", Targets=[{"Id": "q", "Arn": queue_arn,
                                                             "DeadLetterConfig": {"Arn": dlq_arn}}])
    events.put_events(Entries=[{"Source": "baton.iam-closed", "DetailType": "x", "Detail": "{}"}])
    assert not receive_all(sqs, url, 1) and not receive_all(sqs, dlq, 1)
    assert [(r.request.resources, r.allowed) for r in iam_host.decisions("sqs:SendMessage")
            if r.request.context["aws:SourceArn"].endswith("/iam-to-closed-queue")] == [
        ((queue_arn,), False), ((dlq_arn,), False)]


def state_machine_and_role(iam_host, name, trusted="events.amazonaws.com"):
    sfn, iam = client(iam_host.endpoint, "stepfunctions"), client(iam_host.endpoint, "iam")
    machine = sfn.create_state_machine(name=name, roleArn="arn:aws:iam::123456789012:role/sfn",
                                       definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                                               "End": True}}})
                                       )["stateMachineArn"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": trusted},
                                                     "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=f"{name}-rule", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return sfn, iam, machine, role


def allow_start(iam, role, machine):
    iam.put_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyName="start", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "StartPipeline", "Effect": "Allow",
                                                "Action": "states:StartExecution", "Resource": machine}]}))


def test_fixed_eventbridge_starts_executions_with_the_target_role_under_the_iam_hook(iam_host):
    events, sqs = client(iam_host.endpoint, "events"), client(iam_host.endpoint, "sqs")
    sfn, iam, machine, role = state_machine_and_role(iam_host, "iam-inbox")
    dlq, dlq_arn = queue_with_arn(sqs, "iam-inbox-dlq")
    rule = events.put_rule(Name="iam-inbox", EventPattern=json.dumps({"source": ["baton.inbox"]}))["RuleArn"]
    events_may_send(sqs, dlq, dlq_arn, rule)
    allow_start(iam, role, machine.replace("iam-inbox", "another-machine"))
    events.put_targets(Rule="iam-inbox", Targets=[{"Id": "sfn", "Arn": machine, "RoleArn": role,
                                                   "DeadLetterConfig": {"Arn": dlq_arn}}])
    send = lambda n: events.put_events(Entries=[{"Source": "baton.inbox", "DetailType": "x",  # noqa: E731
                                                 "Detail": json.dumps({"n": n})}])
    session = f"arn:aws:sts::123456789012:assumed-role/{role.rsplit('/', 1)[1]}/events"
    send(1)
    refused = wait_for(lambda: iam_host.decisions("states:StartExecution"), what="StartExecution decision")
    assert [(r.allowed, r.request.principal, r.request.role_arn, r.request.resources) for r in refused] == [
        (False, session, role, (machine,))]
    assert [json.loads(m["Body"])["detail"] for m in receive_all(sqs, dlq, 2)] == [{"n": 1}]
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == [], "a refused target starts nothing"

    allow_start(iam, role, machine)
    send(2)
    started = wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], what="execution")
    assert len(started) == 1
    assert json.loads(sfn.describe_execution(executionArn=started[0]["executionArn"])["input"])["detail"] == {"n": 2}
    assert [(r.allowed, r.sid) for r in iam_host.decisions("states:StartExecution")][-1] == (True, "StartPipeline")


def test_fixed_eventbridge_needs_a_trusted_role_for_step_functions_targets(iam_host):
    events = client(iam_host.endpoint, "events")
    sfn, iam, machine, untrusted = state_machine_and_role(iam_host, "iam-untrusted", trusted="lambda.amazonaws.com")
    allow_start(iam, untrusted, machine)
    other = client(iam_host.endpoint, "stepfunctions").create_state_machine(
        name="iam-no-role", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    events.put_rule(Name="iam-untrusted", EventPattern=json.dumps({"source": ["baton.untrusted"]}))
    events.put_targets(Rule="iam-untrusted", Targets=[{"Id": "untrusted", "Arn": machine, "RoleArn": untrusted},
                                                      {"Id": "no-role", "Arn": other}])
    before = len(iam_host.decisions("states:StartExecution"))
    events.put_events(Entries=[{"Source": "baton.untrusted", "DetailType": "x", "Detail": "{}"}])
    time.sleep(2)
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == [], \
        "events.amazonaws.com may not assume a role that trusts only Lambda"
    assert sfn.list_executions(stateMachineArn=other)["executions"] == [], "a target without RoleArn starts nothing"
    assert len(iam_host.decisions("states:StartExecution")) == before, "refused before the role's policies are asked"
    assert "may not assume" in iam_host.log.read_text() and "has no RoleArn" in iam_host.log.read_text()
