"""EventBridge: Lambda and Step Functions targets, delivered as AWS delivers them."""

from ._shared import LOG, _json_or_text, dumps


def fix_eventbridge_lambda_and_states_targets(first_delay=1.0):
    """moto's EventBridge raises NotImplementedError (HTTP 500, which clients retry,
    duplicating deliveries to the other targets) for Lambda and Step Functions
    targets. Deliver to them as AWS does:

    - Step Functions: StartExecution with the event as input.
    - Lambda: an *asynchronous* invocation (Lambda docs, "Asynchronous invocation").
      Once Lambda has queued the event, delivery has succeeded: the rule target's
      RetryPolicy and dead-letter queue no longer apply. A function error gets
      Lambda's own retries (MaximumRetryAttempts of the function's EventInvokeConfig,
      2 by default, after about 1 and 2 minutes; here after `first_delay` and twice
      that), then goes to the EventInvokeConfig's OnFailure destination, or is
      dropped. Only a failure to invoke at all (no such function) is the rule's to
      retry and dead-letter.

    moto keeps an event's `time` as epoch seconds; targets get the ISO-8601 string
    AWS sends."""
    import copy
    import threading
    import time
    import uuid

    from moto.events.models import EventTemplateParser, Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets

    def dead_letter(target, event):
        arn = target.get("DeadLetterConfig", {}).get("Arn")
        if arn:
            _send_to_queue(arn, dumps(event))

    def invoke_async(function, event):
        config = function.event_invoke_config[-1].config if function.event_invoke_config else {}
        attempts = 1 + int(config.get("MaximumRetryAttempts", 2))
        delay = first_delay
        for attempt in range(1, attempts + 1):
            result, errored, _ = function._invoke_lambda(event=dumps(event))
            if not errored:
                return
            LOG.warning("async invocation of %s failed (attempt %d/%d): %s", function.function_name, attempt,
                        attempts, result)
            if attempt < attempts:
                time.sleep(delay)
                delay *= 2
        on_failure = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if on_failure:
            record = {"version": "1.0", "requestContext": {"functionArn": function.function_arn,
                                                          "condition": "RetriesExhausted",
                                                          "approximateInvokeCount": attempts},
                      "requestPayload": event, "responsePayload": _json_or_text(result)}
            _send_to_queue(on_failure, dumps(record))
        else:
            LOG.warning("async event for %s dropped after %d attempts (no OnFailure destination)",
                        function.function_name, attempts)

    def deliver(rule, target, event):
        arn = parse_arn(target["Arn"])
        if arn.service == "states":
            from moto.stepfunctions.responses import get_backend

            get_backend(arn.account, arn.region).start_execution(
                target["Arn"], name=f"event-{uuid.uuid4()}", execution_input=dumps(event)
            )
            return
        from moto.awslambda.models import lambda_backends

        try:
            function = lambda_backends[arn.account][arn.region].get_function(arn.resource_id)
        except Exception as error:  # noqa: BLE001 - any failure to invoke is the rule's
            LOG.warning("rule %s cannot invoke %s: %s", rule.name, arn.resource_id, error)
            dead_letter(target, event)
            return
        invoke_async(function, event)

    def send_to_targets(self, original_event, transform_input=True):
        if not self.event_pattern.matches_event(original_event):
            return
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("lambda", "states")]
        for target in ours:
            transformer = target.get("InputTransformer", {}) if transform_input else {}
            event = EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=original_event,
            )
            if isinstance(event.get("time"), (int, float)):
                from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp

                event["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(event["time"]))
            threading.Thread(target=deliver, args=(self, target, event), daemon=True).start()
        others = [t for t in self.targets if t not in ours]
        if others:
            rest = copy.copy(self)
            rest.targets = others
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def _send_to_queue(queue_arn, body):
    from moto.sqs.models import sqs_backends
    from moto.utilities.arns import parse_arn

    queue = parse_arn(queue_arn)
    sqs_backends[queue.account][queue.region].send_message(queue.resource_id, body)
