"""compat.sqs: the gap is still there in the pinned moto (when an upgrade closes it, the
test says which fix to delete) and the fix closes it. SQS event source mappings that
retry, dead-letter and run batches side by side as Lambda does, and, under the IAM
hook, poll with the function's execution role."""

import json
import time

from baton_local.testing import client
from compat_helpers import FakeWatch, lambda_role, receive_all, wait_for
from iam_host import iam_host  # noqa: F401 - a fixture


def esm_queue(host, name, visibility=1, max_receives=2):
    """mapped_queue for a function of the compat tests' Lambda role: (sqs, queue, DLQ)."""
    sqs, queue, _, dlq, _ = mapped_queue(host, name, lambda_role(host), visibility, max_receives)
    return sqs, queue, dlq


def test_gap_sqs_event_sources_never_retry_or_redrive_in_plain_moto(moto):
    # plain moto invokes once inside SendMessage (here without Docker, so it fails) and
    # never polls again: a failed message neither comes back nor reaches the DLQ.
    sqs, queue, dlq = esm_queue(moto, "gap-esm")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": 1}))
    assert not receive_all(sqs, dlq, 4), (
        "moto now retries SQS event sources into the DLQ: delete compat.fix_sqs_event_source_mappings_ignore_batch_failures")


def test_fixed_sqs_event_sources_retry_failed_items_then_dead_letter_them(host):
    sqs, queue, dlq = esm_queue(host, "fixed-esm")
    before = len(FakeWatch.calls)
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "ok"}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "fail-item"}))
    dead = receive_all(sqs, dlq, 6)
    bodies = [r["body"] for _, e in FakeWatch.calls[before:] if "Records" in e for r in e["Records"]]
    assert bodies.count(json.dumps({"n": "ok"})) == 1, "a handled message is deleted"
    assert bodies.count(json.dumps({"n": "fail-item"})) == 2, "a failed item comes back until maxReceiveCount"
    assert [json.loads(m["Body"]) for m in dead] == [{"n": "fail-item"}]


def test_fixed_sqs_event_sources_run_batches_side_by_side(host):
    # Lambda processes five batches at once: a slow batch does not hold the next.
    sqs, queue, _ = esm_queue(host, "fixed-esm-parallel", visibility=30)
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "please-be-slow"}))
    time.sleep(0.5)  # the slow batch is under way
    sent = time.monotonic()
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "quick"}))
    while not any("quick" in r["body"] for _, e in list(FakeWatch.calls) if "Records" in e for r in e["Records"]):
        assert time.monotonic() - sent < 3, "the second batch waited for the slow one"
        time.sleep(0.05)


# --------------------------------------------------- polling authorised under the IAM hook
def function_role(endpoint, name, *statements):
    """A Lambda execution role with one inline policy (or none): its ARN."""
    iam = client(endpoint, "iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if statements:
        grant(endpoint, arn, *statements)
    return arn


def grant(endpoint, role, *statements):
    client(endpoint, "iam").put_role_policy(
        RoleName=role.rsplit("/", 1)[1], PolicyName="sqs",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))


def mapped_queue(endpoint, name, role, visibility=1, max_receives=2):
    """A queue (with a dead-letter queue) that a function of this role reads through an
    event source mapping: (sqs client, queue URL, queue ARN, DLQ URL, function name)."""
    lam, sqs = client(endpoint, "lambda"), client(endpoint, "sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    function = f"stack-EchoFunction-{name}"
    fn = lam.create_function(FunctionName=function, Runtime="provided.al2023", Role=role, Handler="bootstrap",
                             Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=fn, BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    return sqs, queue, queue_arn, dlq, function


def depth(sqs, queue):
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def invoked_with(body):
    return [e for _, e in list(FakeWatch.calls) if "Records" in e for r in e["Records"] if r["body"] == body]


def test_gap_sqs_event_sources_receive_whatever_the_role_in_plain_moto(moto):
    # plain moto receives the message for the function (inside SendMessage) though the
    # function's role has no SQS permission: the first receive of ours is the second.
    role = function_role(moto, "gap-esm-no-sqs")
    sqs, queue, _, _, _ = mapped_queue(moto, "gap-esm-role", role, visibility=30)
    sqs.send_message(QueueUrl=queue, MessageBody="hello")
    got = sqs.receive_message(QueueUrl=queue, AttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=1)
    assert got["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "2", (
        "moto no longer receives for event source mappings inside SendMessage: see "
        "compat.fix_sqs_event_source_mappings_ignore_batch_failures")


def test_fixed_sqs_event_sources_poll_with_the_function_role_under_the_iam_hook(iam_host):
    role = function_role(iam_host.endpoint, "iam-esm-reader")
    sqs, queue, queue_arn, _, function = mapped_queue(iam_host.endpoint, "iam-esm", role)
    session = f"arn:aws:sts::123456789012:assumed-role/iam-esm-reader/{function}"
    body = json.dumps({"n": "needs-permission"})
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    refused = wait_for(lambda: iam_host.decisions("sqs:ReceiveMessage"), what="ReceiveMessage decision")
    assert [(r.allowed, r.request.principal, r.request.role_arn, r.request.resources) for r in refused] == [
        (False, session, role, (queue_arn,))]
    time.sleep(1)
    assert depth(sqs, queue) == (1, 0), "the message stays in the queue, unreceived"
    assert not invoked_with(body)
    assert len(iam_host.decisions("sqs:ReceiveMessage")) == 1, "one decision per retry period, not one per poll"

    grant(iam_host.endpoint, role, {"Sid": "ReadQueue", "Effect": "Allow",
                                    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                                    "Resource": queue_arn})
    wait_for(lambda: invoked_with(body), what="invocation once the role may receive")
    wait_for(lambda: depth(sqs, queue) == (0, 0), what="deletion")
    allowed = [(r.request.action, r.sid) for r in iam_host.decisions() if r.allowed and r.request.principal == session]
    assert ("sqs:ReceiveMessage", "ReadQueue") in allowed and ("sqs:DeleteMessage", "ReadQueue") in allowed
    assert len(invoked_with(body)) == 1


def test_fixed_sqs_event_sources_need_delete_message_too(iam_host):
    # Received and handled, but not deleted: the message comes back after the
    # visibility timeout and, after maxReceiveCount receives, goes to the DLQ.
    role = function_role(iam_host.endpoint, "iam-esm-no-delete", {
        "Sid": "ReceiveOnly", "Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"})
    sqs, queue, queue_arn, dlq, _ = mapped_queue(iam_host.endpoint, "iam-esm-no-delete", role)
    body = json.dumps({"n": "not-deleted"})
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    dead = receive_all(sqs, dlq, 8)
    assert [m["Body"] for m in dead] == [body]
    assert len(invoked_with(body)) == 2, "handled twice (maxReceiveCount=2), never deleted"
    deletes = [r for r in iam_host.decisions("sqs:DeleteMessage") if r.request.resources == (queue_arn,)]
    assert deletes and not any(r.allowed for r in deletes)


def test_fixed_sqs_event_sources_honour_the_queue_policy_under_the_iam_hook(iam_host):
    # Baton's watchdog queue denies ReceiveMessage to every principal but the
    # watchdog's role: the deny applies to the mapping's polling too.
    role = function_role(iam_host.endpoint, "iam-esm-denied", {
        "Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"], "Resource": "*"})
    sqs, queue, queue_arn, _, _ = mapped_queue(iam_host.endpoint, "iam-esm-denied", role)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyOperatorsReadLiveTokens", "Effect": "Deny", "Principal": "*", "Action": "sqs:ReceiveMessage",
        "Resource": queue_arn,
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/watchdog"}}}]})})
    body = json.dumps({"n": "denied-by-the-queue"})
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    denied = wait_for(lambda: [r for r in iam_host.decisions("sqs:ReceiveMessage")
                               if r.request.resources == (queue_arn,)], what="ReceiveMessage decision")
    assert [(r.allowed, r.reason, r.resource_policy) for r in denied] == [
        (False, "explicit deny by OnlyOperatorsReadLiveTokens", queue_arn)]
    time.sleep(1)
    assert depth(sqs, queue) == (1, 0) and not invoked_with(body)
