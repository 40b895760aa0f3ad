"""SQS: Lambda event source mappings that poll, delete, retry and dead-letter as
Lambda does."""

from ._shared import LOG, _json_or_text, dumps


def fix_sqs_event_source_mappings_ignore_batch_failures(poll_seconds=0.1, pollers=5, refused_retry_seconds=2.0):
    """moto invokes an SQS-triggered function once, synchronously, inside SendMessage,
    and ignores the function's answer beyond "error or not": a failed batch is made
    visible again and never polled until the next send, `ReportBatchItemFailures` is
    ignored, nothing waits for the visibility timeout and nothing reaches the
    redrive policy's dead-letter queue. Lambda polls the queue (Lambda docs, "Using
    Lambda with Amazon SQS"): receive up to BatchSize messages with the queue's
    visibility timeout, invoke, delete what succeeded (everything but the
    batchItemFailures, when the mapping reports them; nothing after a function
    error), and leave the rest to come back after the visibility timeout, where SQS
    moves a message to the dead-letter queue after maxReceiveCount receives.

    While the IAM hook is installed (baton_local.iam.moto_hook, BATON_LOCAL_IAM=enforce),
    the polling is authorised as AWS authorises it; moto receives and deletes through
    its backend, unchecked. Lambda reads the queue with the function's execution role
    (Lambda docs, "Using Lambda with Amazon SQS", execution role permissions:
    sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes): sqs:ReceiveMessage
    is decided (and recorded) before a receive and sqs:DeleteMessage before the
    batch's deletes, for a session of the function's role named after the function,
    by the role's policies and the queue's policy. A refused receive delivers nothing:
    the messages stay in the queue (on AWS the mapping reports the problem and stops
    delivering; the stricter of the two), and the mapping's pollers ask again only
    after `refused_retry_seconds`, with one warning each time, not one per poll. A
    refused delete leaves the batch to come back after the visibility timeout. An
    empty queue is not polled under the hook: a receive that can return nothing
    decides nothing, and would flood the record."""
    import threading
    import time

    from moto.awslambda.utils import get_backend
    from moto.sqs.models import Queue, sqs_backends

    from ..iam import moto_hook

    original_add = Queue.add_message

    def add_message(self, message):
        mappings, self.lambda_event_source_mappings = self.lambda_event_source_mappings, {}
        try:
            original_add(self, message)
        finally:
            self.lambda_event_source_mappings = mappings

    Queue.add_message = add_message

    refused_until = {}  # (mapping uuid, operation) → monotonic time of the next decision
    decisions = threading.Lock()

    def authorised(queue, mapping, operation):
        """Does the function's execution role get this SQS operation on the queue?
        Refusals are remembered for refused_retry_seconds (one decision, one record
        and one warning per period, for all the mapping's pollers)."""
        from ..iam.actions import Call

        key = (mapping.uuid, operation)
        with decisions:
            if refused_until.get(key, 0) > time.monotonic():
                return False
            try:
                function = get_backend(queue.account_id, queue.region).get_function(mapping.function_arn)
            except Exception as error:  # noqa: BLE001 - no function, no role: nothing is delivered
                refusal = f"no function {mapping.function_arn}: {error}"
            else:
                caller = moto_hook.role_session(function.role, function.function_name)
                call = Call("sqs", operation,
                            {"QueueUrl": f"https://sqs.{queue.region}.amazonaws.com/{queue.account_id}/{queue.name}"},
                            queue.region, queue.account_id, queue.queue_arn.split(":")[1])
                decision, action = moto_hook.authorize(call, caller, function.role)
                if decision.allowed:
                    refused_until.pop(key, None)
                    return True
                refusal = decision.message(caller, action)
            refused_until[key] = time.monotonic() + refused_retry_seconds
        LOG.warning("SQS event source %s → %s: %s; nothing %s, asking again in %gs", queue.queue_arn,
                    mapping.function_arn, refusal, "received" if operation == "ReceiveMessage" else "deleted",
                    refused_retry_seconds)
        return False

    def deliver(backend, queue, mapping):
        enforced = moto_hook.installed()
        if enforced and (not queue.messages or not authorised(queue, mapping, "ReceiveMessage")):
            return
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
        done = [m for m in messages if m.id not in failed]
        if done and enforced and not authorised(queue, mapping, "DeleteMessage"):
            return  # back after the visibility timeout
        for m in done:
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
