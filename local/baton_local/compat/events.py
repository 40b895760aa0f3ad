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
    AWS sends.

    While the IAM hook is installed (baton_local.iam.moto_hook, BATON_LOCAL_IAM=enforce),
    a Step Functions target is authorised as AWS authorises it; moto, which cannot
    deliver to it at all, checks nothing. Step Functions is not among the targets
    authorised by a resource-based policy (EventBridge user guide, "Using
    resource-based policies for Amazon EventBridge"): EventBridge assumes the target's
    RoleArn ("IAM roles for sending events to targets"; "Step Functions state machine
    target", delivery role: "The role needs states:StartExecution on the state
    machine"). So the role's trust policy must let events.amazonaws.com assume it
    (aws:SourceArn = the rule, aws:SourceAccount), and the role must allow
    states:StartExecution on the state machine, decided and recorded by the hook; a
    target without RoleArn is not delivered to. A refused delivery is not retried: it
    goes to the target's dead-letter queue, if any ("Event retry policy and using
    dead-letter queues": for missing permissions to a target, "Rather than retrying,
    EventBridge sends these events directly to the DLQ"). Lambda targets are not
    authorised: Baton's template has no EventBridge → Lambda target."""
    import copy
    import threading
    import time
    import uuid

    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    original = Rule.send_to_targets

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
            refusal = _states_target_refusal(rule, target, event)
            if refusal:
                LOG.warning("rule %s cannot start %s: %s", rule.arn, target["Arn"], refusal)
                _dead_letter(rule, target, event)
                return
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
            _dead_letter(rule, target, event)
            return
        invoke_async(function, event)

    def send_to_targets(self, original_event, transform_input=True):
        if not self.event_pattern.matches_event(original_event):
            return
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("lambda", "states")]
        for target in ours:
            event = _target_event(target, original_event, transform_input)
            threading.Thread(target=deliver, args=(self, target, event), daemon=True).start()
        others = [t for t in self.targets if t not in ours]
        if others:
            rest = copy.copy(self)
            rest.targets = others
            original(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def fix_eventbridge_sqs_targets_skip_the_queue_policy():
    """moto's EventBridge sends to an SQS target whatever the queue's policy says (its
    Rule._send_to_sqs_queue calls the SQS backend directly), even while the IAM hook
    (baton_local.iam.moto_hook) enforces IAM for every client. On AWS, EventBridge's
    delivery to a queue is authorised by the queue's resource-based policy alone:
    principal events.amazonaws.com, sqs:SendMessage, with aws:SourceArn = the rule's
    ARN (EventBridge user guide, "Using resource-based policies for Amazon
    EventBridge", Amazon SQS permissions). A refused delivery is not sent and, as a
    permissions error, not retried: it goes to the target's dead-letter queue if it
    has one (EventBridge user guide, "Event retry policy and using dead-letter
    queues"), itself authorised by that queue's policy ("Granting permissions to the
    dead-letter queue"). Only while the hook is installed: without it, moto's
    delivery is unchanged. Wraps Rule.send_to_targets, so it comes after
    fix_eventbridge_lambda_and_states_targets."""
    import copy

    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    inner = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):
        from ..iam import moto_hook

        queues = [t for t in self.targets if parse_arn(t["Arn"]).service == "sqs"]
        if not queues or not moto_hook.installed() or not self.event_pattern.matches_event(original_event):
            return inner(self, original_event, transform_input)
        refused = []
        for target in queues:
            decision = _queue_delivery(self, target["Arn"])
            if not decision.allowed:
                refused.append(target)
                LOG.warning("rule %s: delivery to %s refused (%s); not retried, to the dead-letter queue if any",
                            self.arn, target["Arn"], decision.reason)
                _dead_letter(self, target, _target_event(target, original_event, transform_input))
        rest = self
        if refused:
            rest = copy.copy(self)
            rest.targets = [t for t in self.targets if not any(t is r for r in refused)]
        return inner(rest, original_event, transform_input)

    Rule.send_to_targets = send_to_targets


def _target_event(target, original_event, transform_input=True):
    """The event as the target gets it: its InputTransformer applied, `time` as the
    ISO-8601 string AWS sends (moto keeps epoch seconds)."""
    from moto.events.models import EventTemplateParser

    transformer = target.get("InputTransformer", {}) if transform_input else {}
    event = EventTemplateParser.parse(
        input_template=transformer.get("InputTemplate"),
        input_paths_map=transformer.get("InputPathsMap", {}),
        event=original_event,
    )
    if isinstance(event.get("time"), (int, float)):
        from moto.core.utils import iso_8601_datetime_without_milliseconds, utcfromtimestamp

        event["time"] = iso_8601_datetime_without_milliseconds(utcfromtimestamp(event["time"]))
    return event


def _partition(rule):
    return rule.arn.split(":", 2)[1]


def _queue_delivery(rule, queue_arn):
    """EventBridge's sqs:SendMessage to the queue for the rule, decided (and recorded)
    by baton_local.iam.moto_hook: by the queue's policy, principal
    events.amazonaws.com, aws:SourceArn = the rule's ARN."""
    from ..iam import moto_hook

    return moto_hook.authorize_delivery("events.amazonaws.com", "sqs:SendMessage", queue_arn, rule.arn,
                                        rule.account_id, rule.region_name, _partition(rule))


def _states_target_refusal(rule, target, event):
    """Why EventBridge may not start the target's state machine, or None (always None
    while the IAM hook is not installed)."""
    from ..iam import moto_hook
    from ..iam.actions import Call
    from ..iam.evaluate import Request, evaluate

    if not moto_hook.installed():
        return None
    role = target.get("RoleArn")
    if not role:
        return "the target has no RoleArn (EventBridge needs a role to call states:StartExecution)"
    # The trust policy decides whether EventBridge may assume the role at all. It is
    # evaluated here but not recorded: the record is replayed against the stack's
    # role and queue policies (baton_local.iam.mutation), which hold no trust policies.
    context = {"aws:SourceArn": rule.arn, "aws:SourceAccount": rule.account_id}
    trust = evaluate(Request("events.amazonaws.com", "sts:AssumeRole", (role,), context), None,
                     moto_hook.trust_policy(role))
    if not trust.allowed:
        return f"events.amazonaws.com may not assume {role} ({trust.reason} in its trust policy)"
    caller = moto_hook.role_session(role, "events")
    call = Call("states", "StartExecution", {"stateMachineArn": target["Arn"], "input": dumps(event)},
                rule.region_name, rule.account_id, _partition(rule))
    decision, action = moto_hook.authorize(call, caller, role)
    return None if decision.allowed else decision.message(caller, action)


def _dead_letter(rule, target, event):
    """Send the event to the target's dead-letter queue, if it has one; while the IAM
    hook is installed, only when the queue's policy lets the rule send to it
    (EventBridge user guide, "Granting permissions to the dead-letter queue")."""
    from ..iam import moto_hook

    arn = target.get("DeadLetterConfig", {}).get("Arn")
    if not arn:
        return
    if moto_hook.installed():
        decision = _queue_delivery(rule, arn)
        if not decision.allowed:
            LOG.warning("rule %s: dead-letter queue %s refuses the event (%s); dropped", rule.arn, arn,
                        decision.reason)
            return
    _send_to_queue(arn, dumps(event))


def _send_to_queue(queue_arn, body):
    from moto.sqs.models import sqs_backends
    from moto.utilities.arns import parse_arn

    queue = parse_arn(queue_arn)
    sqs_backends[queue.account][queue.region].send_message(queue.resource_id, body)
