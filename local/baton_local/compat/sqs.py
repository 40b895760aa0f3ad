"""SQS: Lambda event source mappings that poll, delete, retry and dead-letter as
Lambda does."""

from ._shared import LOG, _json_or_text, dumps


def fix_sqs_event_source_mappings_ignore_batch_failures(poll_seconds=0.1, pollers=5):
    """moto invokes an SQS-triggered function once, synchronously, inside SendMessage,
    and ignores the function's answer beyond "error or not": a failed batch is made
    visible again and never polled until the next send, `ReportBatchItemFailures` is
    ignored, nothing waits for the visibility timeout and nothing reaches the
    redrive policy's dead-letter queue. Lambda polls the queue (Lambda docs, "Using
    Lambda with Amazon SQS"): receive up to BatchSize messages with the queue's
    visibility timeout, invoke, delete what succeeded (everything but the
    batchItemFailures, when the mapping reports them; nothing after a function
    error), and leave the rest to come back after the visibility timeout, where SQS
    moves a message to the dead-letter queue after maxReceiveCount receives."""
    import threading
    import time

    from moto.awslambda.utils import get_backend
    from moto.sqs.models import Queue, sqs_backends

    original_add = Queue.add_message

    def add_message(self, message):
        mappings, self.lambda_event_source_mappings = self.lambda_event_source_mappings, {}
        try:
            original_add(self, message)
        finally:
            self.lambda_event_source_mappings = mappings

    Queue.add_message = add_message

    def deliver(backend, queue, mapping):
        messages = backend.receive_message(queue.name, mapping.batch_size or 10, 0, queue.visibility_timeout)
        if not messages:
            return
        event = {"Records": [{
            "messageId": m.id, "receiptHandle": m.receipt_handle, "body": m.body,
            "attributes": {"ApproximateReceiveCount": str(m.approximate_receive_count)},
            "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": queue.queue_arn,
            "awsRegion": queue.region,
        } for m in messages]}
        headers = {}
        try:
            answer = get_backend(queue.account_id, queue.region).invoke(
                function_name=mapping.function_arn, qualifier=None, body=dumps(event), headers={},
                response_headers=headers)
        except Exception as error:  # noqa: BLE001 - an invocation that fails retries the batch
            LOG.warning("SQS batch to %s not invoked: %s", mapping.function_arn, error)
            return
        if "x-amz-function-error" in headers:
            LOG.warning("SQS batch of %d to %s failed; back after the visibility timeout", len(messages),
                        mapping.function_arn)
            return
        failed = set()
        if "ReportBatchItemFailures" in (mapping.function_response_types or []):
            reply = _json_or_text(answer.decode() if isinstance(answer, bytes) else answer)
            if isinstance(reply, dict):
                failed = {f.get("itemIdentifier") for f in reply.get("batchItemFailures") or []}
        for m in messages:
            if m.id not in failed:
                backend.delete_message(queue.name, m.receipt_handle)

    # "When messages are available, Lambda starts processing five batches at a time
    # with five concurrent invocations of your function" (Lambda docs, "Configuring
    # scaling behavior for SQS event source mappings"): five pollers per mapping, so
    # one slow batch does not hold the others (the fault soak found a watchdog
    # invocation slowed by retries delaying every failure behind it).
    def poller(backend, queue, mapping):
        while mapping.enabled:
            try:
                deliver(backend, queue, mapping)
            except Exception:  # noqa: BLE001 - the poller must outlive one bad round
                LOG.exception("SQS event source poller")
            time.sleep(poll_seconds)

    started = set()

    def poll():
        while True:
            try:
                for _, account in list(sqs_backends.items()):
                    for _, backend in list(account.items()):
                        for queue in list(backend.queues.values()):
                            for key, mapping in list(queue.lambda_event_source_mappings.items()):
                                if mapping.enabled and (queue.queue_arn, key) not in started:
                                    started.add((queue.queue_arn, key))
                                    for n in range(pollers):
                                        threading.Thread(target=poller, args=(backend, queue, mapping),
                                                         name=f"sqs-event-source-{n}", daemon=True).start()
            except Exception:  # noqa: BLE001 - the poller must outlive one bad round
                LOG.exception("SQS event source poller")
            time.sleep(poll_seconds)

    threading.Thread(target=poll, name="sqs-event-sources", daemon=True).start()
