"""compat.sqs: the gap is still there in the pinned moto (when an upgrade closes it, the
test says which fix to delete) and the fix closes it. SQS event source mappings that
retry, dead-letter and run batches side by side as Lambda does."""

import json
import time

from baton_local.testing import client
from compat_helpers import FakeWatch, lambda_role, receive_all


def esm_queue(host, name, visibility=1, max_receives=2):
    lam, sqs = client(host, "lambda"), client(host, "sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fn = lam.create_function(FunctionName=f"stack-EchoFunction-{name}", Runtime="provided.al2023",
                             Role=lambda_role(host), Handler="bootstrap",
                             Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=fn, BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
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
