"""compat.events: the gap is still there in the pinned moto (when an upgrade closes it,
the test says which fix to delete) and the fix closes it. EventBridge's Lambda
targets, invoked asynchronously as AWS does."""

import json

import pytest

from baton_local.testing import client
from compat_helpers import FakeWatch, lambda_role, receive_all


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
