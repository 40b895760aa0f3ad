"""Fixes for the gaps of moto that stop Baton's pipeline from running locally.

Each fix is one function named for the moto behaviour it corrects, applied in the
process that hosts moto (moto_host.py), and covered by tests/test_compat.py, which
also checks that the gap is still there in the pinned moto: when an upgrade closes
it, that test fails and says which fix to delete.
"""

import json
import logging
import threading
import time

LOG = logging.getLogger("baton.compat")


def fix_send_task_failure_drops_cause():
    """moto's SendTaskFailure handler reads `error` but not `cause`: the execution
    fails without its cause. Pass the cause on."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self):
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def _normalise_with_botocore(service_class, service, keep_original=False):
    """Give an ASL service integration botocore's shape conversion both ways
    (PascalCase in the state machine, what boto3 takes and answers), as the
    interpreter's upstream does. `keep_original`: run the class's own normalisation
    first (the Step Functions integration turns `Input` into text there)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)

    def operation_model(self, service_action_name):
        action = self._get_boto_service_action(service_action_name)
        return model.operation_model(next(op for op in model.operation_names if _snake(op) == action))

    original = service_class._normalise_parameters

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        if keep_original:
            original(self, parameters, boto_service_name=boto_service_name, service_action_name=service_action_name)
        shape = operation_model(self, service_action_name).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):
        shape = operation_model(self, service_action_name).output_shape
        if shape is not None:
            self._from_boto_response(response, shape)

    service_class._normalise_parameters = normalise_parameters
    service_class._normalise_response = normalise_response


def fix_asl_ecs_parameter_normalisation():
    """The ASL interpreter's parameter and response normalisation is stubbed out, so
    ECS tasks get PascalCase parameters (`Cluster`) that boto3 rejects and every
    `ecs:runTask*` state fails with States.Runtime. Convert with botocore's own shapes
    of the ECS operations, as the interpreter's upstream does."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )

    _normalise_with_botocore(StateTaskServiceEcs, "ecs")


def fix_asl_states_parameter_normalisation():
    """The same stub for Step Functions' own integration
    (`arn:aws:states:::states:startExecution[.sync[:2]]`, a nested workflow): boto3
    gets `StateMachineArn` and the state fails with States.Runtime ('StateMachineArn'),
    and the `.sync` wait reads `ExecutionArn` from a camelCase answer. Convert both
    ways with botocore's shapes of the stepfunctions operations."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    _normalise_with_botocore(StateTaskServiceSfn, "stepfunctions", keep_original=True)


def fix_sfn_start_execution_without_a_name():
    """StartExecution without a name gets a UUID (StartExecution API reference: "If you
    don't provide a name for the execution, Step Functions automatically generates a
    universally unique identifier (UUID) as the execution name"). moto's interpreter
    backend names it None: the second such execution of a state machine is refused
    with ExecutionAlreadyExists, and a nested workflow's child (started without a
    name) with it."""
    import uuid

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, execution_input=None, *args, **kwargs):
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, *args, **kwargs)

    StepFunctionsParserBackend.start_execution = start_execution


def fix_asl_ecs_drops_run_task_parameters():
    """moto's ASL interpreter silently drops every RunTask parameter outside an old
    fixed list, so `CapacityProviderStrategy` (Fargate Spot), `StartedBy` and `Tags`
    never reach ECS, and a task meant for FARGATE_SPOT lands on the cluster's default
    or fails. Step Functions passes RunTask's parameters through (Step Functions,
    "Run Amazon ECS or Fargate tasks": the optimized integration calls RunTask).
    Pass these through too."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_ecs

    state_task_service_ecs._SUPPORTED_API_PARAM_BINDINGS["runtask"] |= {
        "CapacityProviderStrategy", "StartedBy", "Tags", "EnableECSManagedTags", "ReferenceId",
    }


def fix_ecs_run_task_needs_container_memory():
    """moto's RunTask adds up each container's `memory`, and crashes (HTTP 500) on a
    Fargate task definition whose containers leave memory to the task, as Baton's
    do. Fall back to the task's own cpu and memory."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def calculate(task_definition):
        try:
            return original(task_definition)
        except TypeError:
            return {
                "CPU": int(task_definition.cpu or 0),
                "MEMORY": int(task_definition.memory or 0),
                "PORTS": [],
                "PORTS_UDP": [],
            }

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(calculate)


def fix_lambda_invoke_needs_docker(endpoint, binaries):
    """moto runs Lambda functions only in Docker, which this machine does not have.
    Forward each invocation to the Lambda Invoke API of `cargo lambda watch` at
    `endpoint`, naming the binary: `binaries` maps a function's logical id (a part of
    its generated name) or its name to the binary (`BuildProperties.Binary`).

    cargo lambda watch answers a function error with HTTP 500 and
    `{"errorType", "errorMessage"}`; moto's caller gets that body flagged as a
    function error, as real Lambda would flag it with X-Amz-Function-Error."""
    import urllib.error
    import urllib.request

    from moto.awslambda.models import LambdaFunction

    def binary_for(function_name):
        if function_name in binaries.values():
            return function_name
        for key, binary in binaries.items():
            if key in function_name:
                return binary
        return None

    def invoke_lambda(self, event=None):
        binary = binary_for(self.function_name)
        if binary is None:
            message = f"no local binary for Lambda function {self.function_name}"
            return dumps({"errorType": "Baton.LocalStack", "errorMessage": message}), True, message
        body = event if isinstance(event, (str, bytes)) else dumps(event)
        if isinstance(body, str):
            body = body.encode()
        request = urllib.request.Request(
            f"{endpoint}/2015-03-31/functions/{binary}/invocations",
            data=body, method="POST", headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=900) as response:
                return response.read().decode(), False, ""
        except urllib.error.HTTPError as error:
            payload = error.read().decode()
            return payload, True, payload

    LambdaFunction._invoke_lambda = invoke_lambda


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


def _json_or_text(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


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


def fix_ecs_submit_task_state_change_missing():
    """moto's ECS has no SubmitTaskStateChange, so whoever plays the container agent
    cannot report exit codes and STOPPED (moto shows exit code 0 for every
    container). Implement it for STOPPED reports: container exit codes and reasons,
    the stopped reason, and a stop code (ECS sets that itself; the API has no field
    for it): UserInitiated after StopTask, TaskFailedToStart when no container has an
    exit code, EssentialContainerExited otherwise."""
    from datetime import datetime, timezone

    from moto.core.responses import ActionResult
    from moto.ecs.responses import EC2ContainerServiceResponse

    def submit_task_state_change(self):
        backend = self.ecs_backend
        cluster = backend._get_cluster(self._get_param("cluster", "default"))
        task_id = self._get_param("task").split("/")[-1]
        task = next(t for arn, t in backend.tasks.get(cluster.name, {}).items() if arn.endswith(task_id))
        status = self._get_param("status")
        reports = {c.get("containerName"): c for c in self._get_param("containers") or []}
        for container in task.containers:
            report = reports.get(container.name)
            if report is None:
                continue
            container.last_status = report.get("status", container.last_status)
            container.exitCode = report.get("exitCode")
            container.reason = report.get("reason")
        if status == "STOPPED":
            # Only StopTask sets the desired status to STOPPED before the task stops.
            stopped_by_user = task.desired_status == "STOPPED"
            no_exit_codes = all(getattr(c, "exitCode", None) is None for c in task.containers)
            if stopped_by_user:
                task.stop_code = "UserInitiated"
            elif no_exit_codes:
                task.stop_code = "TaskFailedToStart"
            else:
                task.stop_code = "EssentialContainerExited"
            task.stopped_reason = self._get_param("reason") or task.stopped_reason
            task.stopped_at = datetime.now(timezone.utc)
            task.desired_status = "STOPPED"
        task.last_status = status
        return ActionResult({"acknowledgment": "ACK"})

    EC2ContainerServiceResponse.submit_task_state_change = submit_task_state_change


def fix_ecs_stop_task_reports_stopped_at_once():
    """StopTask only asks: ECS sets the desired status to STOPPED at once, and the
    last status follows when the containers have stopped (SIGTERM, then SIGKILL after
    stopTimeout; ECS docs, "Amazon ECS task lifecycle"). moto sets the last status to
    STOPPED at once, so a task still running (a frozen process waiting for its
    SIGKILL) looks stopped, and a test that waits for STOPPED proves nothing. Keep the
    last status until whoever runs the task reports it STOPPED
    (fix_ecs_submit_task_state_change_missing)."""
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.stop_task

    def stop_task(self, cluster_str, task_str, reason):
        cluster = self._get_cluster(cluster_str)
        task_id = task_str.split("/")[-1]
        before = {arn: t.last_status for arn, t in (self.tasks.get(cluster.name) or {}).items() if arn.endswith(task_id)}
        task = original(self, cluster_str, task_str, reason)
        last = before.get(task.task_arn)
        if last is not None and last != "STOPPED":
            task.last_status = last
        return task

    EC2ContainerServiceBackend.stop_task = stop_task


def fix_cloudformation_ignores_sam_transform():
    """moto's CloudFormation ignores `Transform: AWS::Serverless-2016-10-31` and skips
    every AWS::Serverless::* resource. Run aws-sam-translator (what CloudFormation
    runs on AWS) on such templates before moto reads them. Packaged templates only:
    CodeUri and DefinitionUri must already be S3 locations, as `sam package` leaves
    them."""
    from moto.cloudformation import models

    class NoManagedPolicies:
        """The template names no managed policies by name; nothing to look up."""

        def load(self):
            return {}

    original = models.Stack.parse_template

    def translated(template_dict):
        if template_dict.get("Transform") != "AWS::Serverless-2016-10-31":
            return template_dict
        from samtranslator.translator.transform import transform

        return transform(template_dict, {}, NoManagedPolicies())

    def parse_template(template):
        return translated(original(template))

    def changeset_parse_template(self):
        self.template_dict = translated(original(self.template))

    models.Stack.parse_template = staticmethod(parse_template)
    models.ChangeSet._parse_template = changeset_parse_template


def fix_cloudformation_state_machines_ignore_substitutions():
    """moto's CloudFormation creates state machines from DefinitionString only,
    ignores DefinitionS3Location and DefinitionSubstitutions, and puts them in the
    store that never executes. Read the definition where it is, substitute, and
    create the state machine where executions run."""
    from moto.s3.models import s3_backends
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        name = properties.get("StateMachineName", resource_name)
        definition = properties.get("DefinitionString") or properties.get("Definition") or ""
        location = properties.get("DefinitionS3Location")
        if location:
            backend = s3_backends[account_id]["aws"]
            definition = backend.get_object(location["Bucket"], location["Key"]).value.decode()
        if isinstance(definition, dict):
            definition = dumps(definition)
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        tags = [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])]
        return get_backend(account_id, region_name).create_state_machine(
            name, definition, properties.get("RoleArn", ""), tags=tags, sm_type=properties.get("StateMachineType")
        )

    StateMachine.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


# Length of the task tokens the local stack issues: real ones run to 2,048 characters
# (SFN API reference, TaskToken), so budgets and logs see tokens of that size here too.
LOCAL_TASK_TOKEN_CHARS = 2040


def fix_task_tokens_are_short_uuids():
    """moto issues task tokens that are 36-character UUIDs; AWS's are opaque strings of
    several hundred to 2,048 characters, and the ECS override budget, the worker and
    the watchdog must cope with the longest. Issue tokens of LOCAL_TASK_TOKEN_CHARS
    characters, shaped like AWS's (base64, starting AQ)."""
    import base64
    import secrets

    from moto.stepfunctions.parser.asl.eval import states

    def update_task_token(self):
        raw = base64.b64encode(secrets.token_bytes(LOCAL_TASK_TOKEN_CHARS)).decode()
        token = ("AQ" + raw)[:LOCAL_TASK_TOKEN_CHARS]
        self.context_object_data["Task"] = states.TaskData(Token=token)
        _ISSUED_TOKENS.add(token)
        return token

    states.ContextObject.update_task_token = update_task_token


_ISSUED_TOKENS = set()


def fix_retried_callback_states_reuse_their_token():
    """moto issues a `.waitForTaskToken` state's token once, before its retry loop,
    so every attempt of a retried state runs with the first attempt's token; once
    the first attempt's token is closed (the watchdog failed it), a second task's
    failure can no longer be reported and the execution hangs. On AWS each attempt
    is scheduled anew with its own `$$.Task.Token`, and the earlier attempt's token
    answers TaskTimedOut. Issue a fresh token for every attempt after the first."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    original = StateTaskServiceCallback._evaluate_with_timeout

    def evaluate_with_timeout(self, env):
        retrying = env.states.context_object.context_object_data.get("State", {}).get("RetryCount", 0) > 0
        if retrying and self.resource.condition == ResourceCondition.WaitForTaskToken:
            token = env.states.context_object.update_task_token()
            env.callback_pool_manager.add(token)
        return original(self, env)

    StateTaskServiceCallback._evaluate_with_timeout = evaluate_with_timeout


def fix_closed_tokens_answer_invalid_token():
    """A callback on a token whose task is over (called back, timed out, execution
    stopped) answers TaskTimedOut on AWS ("the task token has either expired or the
    task ... has already been closed"), and InvalidToken only when the token is not
    one Step Functions issued. moto answers InvalidToken for closed tokens on
    SendTaskSuccess and SendTaskHeartbeat, and accepts SendTaskFailure on them.
    Answer as AWS does (tokens issued under fix_task_tokens_are_short_uuids)."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.exceptions import InvalidToken
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    # The parser's own TaskTimedOut has no TYPE, so moto serialises it as HTTP 500.
    class TaskTimedOut(AWSError):
        TYPE = "TaskTimedOut"
        STATUS = 400

        def __init__(self):
            super().__init__("Task Timed Out: the task token has expired or the task has already been closed")

    def check(backend, token):
        if token not in _ISSUED_TOKENS:
            raise InvalidToken("Invalid token")
        found = callback_endpoint(backend._get_executions(), token)
        if found is None:
            raise TaskTimedOut()
        execution, endpoint = found
        closed = endpoint._outcome is not None or endpoint.consumer_error is not None
        if closed or execution.status != ExecutionStatus.RUNNING:
            raise TaskTimedOut()
        return endpoint

    for name in ("send_task_success", "send_task_failure", "send_task_heartbeat"):
        original = getattr(StepFunctionsParserBackend, name)

        def checked(self, task_token, *args, _original=original, _name=name, **kwargs):
            endpoint = check(self, task_token)
            if _name == "send_task_heartbeat" and endpoint._heartbeat_endpoint is None:
                # moto hands the token out before it starts waiting for beats, and
                # answers a beat in between with InvalidToken; AWS accepts it.
                return None
            return _original(self, task_token, *args, **kwargs)

        setattr(StepFunctionsParserBackend, name, checked)


def fix_sfn_emits_no_execution_status_change_events():
    """Step Functions puts a "Step Functions Execution Status Change" event on the
    default bus when an execution's status changes (Step Functions docs,
    "Automating Step Functions event delivery with EventBridge"); moto puts none, so
    no rule on them ever fires. Put one, in AWS's shape, when an execution ends
    (SUCCEEDED, FAILED, TIMED_OUT, ABORTED)."""
    from moto.events.models import events_backends
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    def millis(at):
        return int(at.timestamp() * 1000) if at else None

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(self):
        original(self)
        execution = self.execution
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": str(getattr(execution.exec_status, "value", execution.exec_status)),
            "startDate": millis(execution.start_date),
            "stopDate": millis(execution.stop_date),
            "input": json.dumps(execution.input_data),
            "output": json.dumps(execution.output) if execution.output is not None else None,
            "error": getattr(execution, "error", None),
            "cause": getattr(execution, "cause", None),
        }
        try:
            events_backends[execution.account_id][execution.region_name].put_events([{
                "Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
                "Detail": json.dumps(detail), "Resources": [execution.exec_arn], "EventBusName": "default"}])
        except Exception:  # noqa: BLE001 - an event lost here must not break the execution
            LOG.exception("putting the status change event of %s", execution.exec_arn)

    BaseExecutionWorkerCommunication.terminated = terminated


def fix_sfn_stopped_parents_leave_sync_children_running():
    """A state that runs a child execution with `startExecution.sync[:2]` stops that
    child when its own execution stops: the Run a Job pattern cancels its job, and the
    IAM policy AWS documents for it grants `states:StopExecution` on the child state
    machine's executions for this (Step Functions, "IAM policies for Step Functions":
    Synchronous). moto leaves the child running, so its ECS task would run on. Record
    each `.sync` child as it starts; stop the children (and theirs) with the parent.
    Needs fix_sfn_stop_execution_waits_for_the_callback (applied before). Plain moto
    cannot show this gap while nested workflows fail there at all
    (test_gap_nested_workflows_fail_in_plain_moto says to re-check it)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    children = {}  # parent execution ARN → child execution ARNs started with .sync
    lock = threading.Lock()

    for name in ("_build_sync_resolver", "_build_sync2_resolver"):
        original = getattr(StateTaskServiceSfn, name)

        def build(self, env, *args, _original=original, **kwargs):
            submitted = env.stack[-1] if env.stack else {}
            child = submitted.get("ExecutionArn") if isinstance(submitted, dict) else None
            parent = env.states.context_object.context_object_data.get("Execution", {}).get("Id")
            if child and parent:
                with lock:
                    children.setdefault(parent, set()).add(child)
            return _original(self, env, *args, **kwargs)

        setattr(StateTaskServiceSfn, name, build)

    original_stop = Execution.stop

    def stop(self, stop_date, error, cause):
        original_stop(self, stop_date=stop_date, error=error, cause=cause)
        with lock:
            started = children.pop(self.exec_arn, set())
        backend = stepfunctions_parser_backends[self.account_id][self.region_name]
        for child in started:
            try:
                backend.stop_execution(child)  # harmless on one that has ended
            except Exception:  # noqa: BLE001 - a child already gone needs no stop
                LOG.exception("stopping %s, a child of %s", child, self.exec_arn)

    Execution.stop = stop


def fix_sfn_heartbeat_timeouts_never_match_states_heartbeat_timeout():
    """A callback state whose HeartbeatSeconds pass without a beat fails with an
    error that a `States.HeartbeatTimeout` catcher or retrier matches, as does a
    `States.Timeout` one (Step Functions docs, "Error handling": States.HeartbeatTimeout
    "is available inside the Catch and Retry fields"; States.Timeout covers heartbeats
    too). moto raises plain States.Timeout, so a States.HeartbeatTimeout catcher never
    fires and the pipeline could not tell a frozen worker from a slow one. Make the
    heartbeat timeout's error name (still reported as States.Timeout) match both."""
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

    matched = {"States.Timeout", "States.HeartbeatTimeout"}

    class HeartbeatTimeoutName(StatesErrorName):
        # A strict subclass: Python asks its __eq__ first when a catcher's
        # StatesErrorName is compared with it (ErrorEqualsDecl: `name in names`).
        def __eq__(self, other):
            return getattr(other, "error_name", None) in matched

        __hash__ = None

    original = StateTaskServiceCallback._from_error

    def from_error(self, env, ex):
        event = original(self, env, ex)
        if isinstance(ex, HeartbeatTimeoutError):
            event.error_name = HeartbeatTimeoutName(typ=StatesErrorNameType.StatesTimeout)
        return event

    StateTaskServiceCallback._from_error = from_error


def fix_sfn_stop_execution_waits_for_the_callback():
    """StopExecution ends an execution at once: it is ABORTED, and the token of the
    callback state it was waiting in is closed, so the worker's next heartbeat or
    callback gets TaskTimedOut (StopExecution API reference; "Wait for a Callback with
    Task Token"). moto marks the program stopped but leaves the execution RUNNING until
    the waiting state ends by itself: the next heartbeat is accepted, and the one after
    the heartbeat window turns it into FAILED States.Timeout. Make the stop take
    effect at once (status, stop date, the status change event), wake the waiting
    state, and let the execution report its end once."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    original_terminated = BaseExecutionWorkerCommunication.terminated

    def terminated_once(self):
        if getattr(self.execution, "_baton_ended", False):
            return
        self.execution._baton_ended = True
        original_terminated(self)

    BaseExecutionWorkerCommunication.terminated = terminated_once

    original_stop = Execution.stop

    def stop(self, stop_date, error, cause):
        original_stop(self, stop_date=stop_date, error=error, cause=cause)
        worker = self.exec_worker
        if worker is None or getattr(self, "_baton_ended", False):
            return
        # The program state is ProgramStopped now: report ABORTED (and put its event).
        worker._execution_communication.terminated()
        # Wake the state waiting for a callback; its outcome no longer matters.
        for endpoint in list(worker.env.callback_pool_manager._pool.values()):
            if endpoint.get_outcome() is None:
                endpoint.notify(CallbackOutcomeFailure(callback_id=endpoint.callback_id, error="States.Aborted",
                                                       cause="the execution was stopped"))
        assert self.exec_status == ExecutionStatus.ABORTED, self.exec_status

    Execution.stop = stop


def callback_endpoint(executions, token):
    """(execution, its callback endpoint for `token`), or None. An execution being
    started has no worker yet (`exec_worker` is None): skip it. Found by the fault
    soak: a burst of StartExecution made every callback of the moment HTTP 500."""
    for execution in list(executions):
        worker = execution.exec_worker
        if worker is None:
            continue
        endpoint = worker.env.callback_pool_manager.get(token)
        if endpoint is not None:
            return execution, endpoint
    return None


def fix_ecs_task_reads_race_run_task(backend_class=None):
    """moto's DescribeTasks and ListTasks iterate over the cluster's task dict while
    RunTask, in another request thread, adds to it: "dictionary changed size during
    iteration", HTTP 500, and a `.sync` state polling its task fails with
    States.Runtime (found by the fault soak, 16 executions at once). ECS answers
    whatever else runs. Read again when the read raced a write."""
    from moto.ecs.models import EC2ContainerServiceBackend

    backend_class = backend_class or EC2ContainerServiceBackend
    for name in ("describe_tasks", "list_tasks"):
        original = getattr(backend_class, name)

        def read(self, *args, _original=original, **kwargs):
            for attempt in range(50):
                try:
                    return _original(self, *args, **kwargs)
                except RuntimeError as e:
                    if "changed size during iteration" not in str(e) or attempt == 49:
                        raise
                    time.sleep(0.001)

        setattr(backend_class, name, read)


def _task_failure(state, env, error_name, error, cause):
    """A FailureEventException the ASL interpreter reports as the state's TaskFailed."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    return FailureEventException(FailureEvent(
        env=env, error_name=error_name, event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
            error=error, cause=cause, resource=state._get_sfn_resource(),
            resourceType=state._get_sfn_resource_type())),
    ))


def fix_ecs_run_task_never_reports_failures(max_memory_mib=None):
    """moto places every Fargate task it is asked for, and its ASL interpreter reads
    `Tasks[0]` of RunTask's answer blindly. AWS answers RunTask with HTTP 200, no task
    and a `failures` list when it cannot place one (capacity, ENI limits,
    RESOURCE:MEMORY), and Step Functions then fails the state with AmazonECS.Unknown
    (Step Functions, "Run Amazon ECS or Fargate tasks"). The local cluster has a
    memory capacity (BATON_LOCAL_FARGATE_MEMORY_MIB, by default 30,720 MiB, Fargate's
    largest task): a task that asks for more is not placed and reported as AWS reports
    it, and the interpreter fails the state as Step Functions does."""
    import os

    from moto.core.responses import ActionResult
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    limit = max_memory_mib or int(os.environ.get("BATON_LOCAL_FARGATE_MEMORY_MIB", "30720"))
    original_run_task = EC2ContainerServiceResponse.run_task

    def run_task(self):
        definition = self.ecs_backend.describe_task_definition(self._get_param("taskDefinition"))
        memory = int((self._get_param("overrides") or {}).get("memory") or definition.memory or 0)
        if memory > limit:
            return ActionResult({"tasks": [], "failures": [{
                "arn": definition.arn, "reason": "RESOURCE:MEMORY",
                "detail": f"the task asks for {memory} MiB; the local cluster places at most {limit} MiB"}]})
        return original_run_task(self)

    EC2ContainerServiceResponse.run_task = run_task
    original_eval = StateTaskServiceEcs._eval_service_task

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_action() != "run_task":
            return original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        ecs = boto_client_for(region=resource_runtime_part.region, service="ecs", state_credentials=state_credentials)
        response = ecs.run_task(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        if response.get("failures") and not response.get("tasks"):
            raise _task_failure(self, env, CustomErrorName("AmazonECS.Unknown"), "AmazonECS.Unknown",
                                dumps({"Failures": response["failures"]}))
        task = response["tasks"][0]
        description = ecs.describe_tasks(cluster=task["clusterArn"], tasks=[task["taskArn"]])
        description.pop("ResponseMetadata", None)
        self._normalise_response(response=description, service_action_name="describe_tasks")
        env.stack.append(description)

    StateTaskServiceEcs._eval_service_task = eval_service_task


def _epoch_times(value):
    import datetime

    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _epoch_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_epoch_times(v) for v in value]
    return value


def fix_ecs_sync_succeeds_whatever_the_exit_code():
    """moto's `ecs:runTask.sync` succeeds on any STOPPED task. On AWS a task whose
    essential container exited non-zero, or never ran, fails the state with
    States.TaskFailed and the task's description as the cause (aws/copilot-cli#3160,
    an AWS maintainer). Fail it the same way."""
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )

    original = StateTaskServiceEcs._build_sync_resolver

    def build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        resolve = original(self, env, resource_runtime_part, normalised_parameters, state_credentials)

        def checked():
            task = resolve()
            if task is None:
                return None
            # The state's output is the description as Step Functions returns it:
            # timestamps as epoch numbers (boto3 hands datetimes, which moto cannot
            # serialise into the execution's output).
            task = _epoch_times(task)
            containers = task.get("Containers") or []
            failed = not containers or any(c.get("ExitCode") != 0 for c in containers)
            if failed:
                raise _task_failure(self, env, StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                                    "States.TaskFailed", dumps(task))
            return task

        return checked

    StateTaskServiceEcs._build_sync_resolver = build_sync_resolver


_ACCESS_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Access Denied</Message><RequestId>baton-local</RequestId></Error>"
)


def fix_s3_missing_keys_are_404_to_everyone():
    """moto answers 404 NoSuchKey for a missing key whoever asks. S3 answers 404 only
    to a caller allowed s3:ListBucket on the bucket, and 403 AccessDenied to anyone
    else (GetObject and HeadObject, "Permissions"). For callers using a role's
    credentials (sts:AssumeRole, as ECS tasks and Lambdas do), answer as S3 does from
    the role's policies in the local IAM: 404 only when one of them allows
    s3:ListBucket on the bucket. Conditions are not evaluated; callers with plain
    keys (the test fixtures' `test`) keep moto's answer."""
    import fnmatch

    from moto.iam.models import iam_backends
    from moto.s3.exceptions import MissingKey
    from moto.s3.responses import S3Response
    from moto.sts.models import sts_backends

    def role_of(response):
        authorization = response.headers.get("Authorization") or ""
        if "Credential=" not in authorization:
            return None
        access_key = authorization.split("Credential=", 1)[1].split("/", 1)[0]
        for _, account in list(sts_backends.items()):
            for _, backend in list(account.items()):
                assumed = backend.get_assumed_role_from_access_key(access_key)
                if assumed is not None:
                    return assumed.role_arn
        return None

    def may_list(role_arn, bucket):
        account = role_arn.split(":")[4]
        iam = iam_backends[account]["global"]
        role = next((r for r in iam.roles.values() if r.arn == role_arn), None)
        if role is None:
            return False
        documents = list(role.policies.values()) + [p.document for p in role.managed_policies.values()]
        for document in documents:
            document = json.loads(document) if isinstance(document, str) else document
            statements = document.get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                actions = statement.get("Action", [])
                resources = statement.get("Resource", [])
                actions = actions if isinstance(actions, list) else [actions]
                resources = resources if isinstance(resources, list) else [resources]
                if statement.get("Effect") == "Allow" and any(
                    fnmatch.fnmatch("s3:ListBucket", a) for a in actions
                ) and any(fnmatch.fnmatch(f"arn:aws:s3:::{bucket}", r) for r in resources):
                    return True
        return False

    def forbidden(response, bucket):
        role = role_of(response)
        return role is not None and not may_list(role, bucket)

    original_get = S3Response.get_object
    original_head = S3Response.head_object

    def get_object(self):
        try:
            return original_get(self)
        except MissingKey:
            if forbidden(self, self.bucket_name):
                return 403, {"Content-Type": "application/xml"}, _ACCESS_DENIED
            raise

    def head_object(self, bucket_name, query, key_name, headers):
        status, response_headers, body = original_head(self, bucket_name, query, key_name, headers)
        if status == 404 and forbidden(self, bucket_name):
            return 403, response_headers, ""
        return status, response_headers, body

    S3Response.get_object = get_object
    S3Response.head_object = head_object


def fix_s3_multipart_uploads_all_begun_in_2010():
    """moto's ListMultipartUploads dates every upload 2010-11-10T20:48:33Z. S3 gives
    the time each was begun (`Initiated`), and the watchdog aborts only the uploads a
    stopped task began before its stop, never a retry's begun after. Record when each
    upload begins and answer that."""
    from datetime import datetime, timezone

    from moto.s3.models import FakeMultipart
    from moto.s3.responses import S3Response

    original_init = FakeMultipart.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.baton_initiated = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    original_list = S3Response.list_multipart_uploads

    def list_multipart_uploads(self):
        multiparts = self.backend.list_multipart_uploads(self.bucket_name)
        original_serialized = self.serialized

        def serialized(action_result):
            for upload in action_result.result.get("Uploads", []):
                begun = getattr(multiparts.get(upload["UploadId"]), "baton_initiated", None)
                if begun:
                    upload["Initiated"] = begun
            return original_serialized(action_result)

        self.serialized = serialized
        try:
            return original_list(self)
        finally:
            del self.serialized

    FakeMultipart.__init__ = init
    S3Response.list_multipart_uploads = list_multipart_uploads


def _snake(name):
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    return camel_to_snake_case(name)


def apply_all(lambda_endpoint=None, lambda_binaries=None):
    fixes = [
        fix_send_task_failure_drops_cause,
        fix_task_tokens_are_short_uuids,
        fix_closed_tokens_answer_invalid_token,
        fix_retried_callback_states_reuse_their_token,
        fix_asl_ecs_parameter_normalisation,
        fix_asl_states_parameter_normalisation,
        fix_sfn_start_execution_without_a_name,
        fix_asl_ecs_drops_run_task_parameters,
        fix_ecs_submit_task_state_change_missing,
        fix_ecs_stop_task_reports_stopped_at_once,
        fix_ecs_run_task_needs_container_memory,
        fix_ecs_run_task_never_reports_failures,
        fix_s3_missing_keys_are_404_to_everyone,
        fix_s3_multipart_uploads_all_begun_in_2010,
        fix_ecs_task_reads_race_run_task,
        fix_sfn_emits_no_execution_status_change_events,
        fix_sfn_stop_execution_waits_for_the_callback,
        fix_sfn_stopped_parents_leave_sync_children_running,
        fix_sfn_heartbeat_timeouts_never_match_states_heartbeat_timeout,
        fix_ecs_sync_succeeds_whatever_the_exit_code,
        fix_eventbridge_lambda_and_states_targets,
        fix_cloudformation_ignores_sam_transform,
        fix_cloudformation_state_machines_ignore_substitutions,
    ]
    for fix in fixes:
        fix()
        LOG.info("applied %s", fix.__name__)
    if lambda_endpoint:
        fix_lambda_invoke_needs_docker(lambda_endpoint, lambda_binaries or {})
        LOG.info("applied fix_lambda_invoke_needs_docker → %s", lambda_endpoint)
    fix_sqs_event_source_mappings_ignore_batch_failures()
    LOG.info("applied fix_sqs_event_source_mappings_ignore_batch_failures")


def dumps(value, **kwargs):
    return json.dumps(value, separators=(",", ":"), **kwargs)
