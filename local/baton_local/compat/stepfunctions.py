"""Step Functions' API: SendTaskFailure's cause, executions without a name, task
tokens (their length, a new one per attempt, closed ones), StopExecution, heartbeat
timeouts, `.sync` children of a stopped parent, the execution status change events and
the API's length constraints. The interpreter's own fixes are in `asl`."""

import functools
import json
import threading

from ._shared import LOG, _sfn_model, _snake


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


def fix_sfn_parser_errors_have_no_code():
    """The errors of moto's Step Functions interpreter backend (InvalidDefinition,
    TaskDoesNotExist, InvalidExecutionInput...) name their code in a `code` attribute
    that moto's error serialiser does not read: CreateStateMachine answers a definition
    it refuses with an empty error code (`x-amzn-ErrorType: UnknownError`), where Step
    Functions answers InvalidDefinition (API reference, CreateStateMachine "Errors").
    Give each of them its code and HTTP status."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser import api

    for error in vars(api).values():
        if isinstance(error, type) and issubclass(error, AWSError) and error.TYPE is None:
            code = error.__dict__.get("code")
            if isinstance(code, str):
                error.TYPE = code
                error.STATUS = getattr(error, "status_code", 400)


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
            # Since RedriveExecution (which keeps the ARN): which attempt ended.
            "redriveCount": getattr(execution, "redrive_count", 0),
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


# Local infrastructure: how many DescribeExecution calls a second the states waiting
# for `.sync` children make together, at most (limit_sync_polling).
SYNC_POLLS_PER_SECOND = 40
SYNC_POLL_SECONDS = 0.5  # moto's own period (_DELAY_SECONDS_SYNC_CONDITION_CHECK)


def sync_poll_period(waiting, per_second=SYNC_POLLS_PER_SECOND):
    """Seconds between one waiting state's polls when `waiting` states wait: moto's half
    second while that keeps all of them within `per_second`, longer beyond."""
    return max(SYNC_POLL_SECONDS, waiting / per_second)


def limit_sync_polling():
    """Local infrastructure, not a behaviour of AWS (so not a `fix_`, and in no
    conformance row). moto's interpreter waits for a
    `startExecution.sync` / `.sync:2` child by calling DescribeExecution on its own
    server every half second, for each waiting state. A Distributed Map with 1,000
    items in flight, each a `.sync:2` run of Baton's reusable task, asked 2,000 calls a
    second of one Python process, which then answered everything else late: about one
    item's ECS task started a second, fewer as more waited (observed 2026-12-08, 400 of
    1,000 after 13 minutes; AWS learns of a child's end from the child, with no such
    cost). The waiting states together poll at most SYNC_POLLS_PER_SECOND times a
    second: each checks its child every sync_poll_period(waiting) seconds, moto's half
    second up to 20 waiting, so every smaller run is as before."""
    import time
    import weakref

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    waiting = [0]
    lock = threading.Lock()

    def release():
        with lock:
            waiting[0] -= 1

    for name in ("_build_sync_resolver", "_build_sync2_resolver"):
        original = getattr(StateTaskServiceSfn, name)

        def build(self, *args, _original=original, **kwargs):
            resolver = _original(self, *args, **kwargs)
            with lock:
                waiting[0] += 1
            due = [0.0]

            def resolve():
                now = time.monotonic()
                if now < due[0]:
                    return None
                with lock:
                    period = sync_poll_period(waiting[0])
                # The loop calls every half second: poll at the call nearest the period.
                due[0] = now + period - SYNC_POLL_SECONDS / 2
                return resolver()

            # The loop drops its resolver when the state stops waiting, however it ends.
            weakref.finalize(resolve, release)
            return resolve

        setattr(StateTaskServiceSfn, name, build)


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


def sfn_length_violations(operation, value_of):
    """AWS's validation messages for the top-level string members of a Step Functions
    `operation` (botocore's model) whose value, from `value_of(member)`, is outside the
    member's length constraints. Lengths are characters, or UTF-8 bytes where the model
    says so ("Length constraints apply to the payload size, and are expressed as bytes
    in UTF-8 encoding": input, output)."""
    shape = _sfn_model().operation_model(operation).input_shape
    violations = []
    for name, member in (shape.members if shape is not None else {}).items():
        value = value_of(name)
        if member.type_name != "string" or not isinstance(value, str):
            continue
        in_bytes = "bytes in UTF-8" in (member.documentation or "")
        length = len(value.encode("utf-8")) if in_bytes else len(value)
        limits = member.metadata
        if "max" in limits and length > limits["max"]:
            violations.append(f"Value at '{name}' failed to satisfy constraint: "
                              f"Member must have length less than or equal to {limits['max']}")
        elif "min" in limits and length < limits["min"]:
            violations.append(f"Value at '{name}' failed to satisfy constraint: "
                              f"Member must have length greater than or equal to {limits['min']}")
    return violations


def fix_sfn_requests_skip_length_constraints():
    """Step Functions refuses a request whose members break the length constraints of
    its API (the SDK service model: SendTaskFailure `cause` ≤ 32,768 and `error` ≤ 256
    characters, SendTaskSuccess `output` and StartExecution `input` ≤ 262,144 bytes of
    UTF-8, task tokens 1 to 2,048) with ValidationException ("The input does not satisfy
    the constraints specified by an Amazon Web Services service"). moto checks none of
    them: an oversized cause is stored whole, and an oversized callback output is taken.
    Check every Step Functions request's string members against botocore's model
    before moto reads it. Apply after the fixes that replace response methods."""
    from moto.stepfunctions.exceptions import ValidationException
    from moto.stepfunctions.responses import StepFunctionResponse

    for operation in _sfn_model().operation_names:
        method = getattr(StepFunctionResponse, _snake(operation), None)
        if method is None:
            continue

        @functools.wraps(method)
        def checked(self, *args, _method=method, _operation=operation, **kwargs):
            violations = sfn_length_violations(_operation, self._get_param)
            if violations:
                count = len(violations)
                raise ValidationException(f"{count} validation error{'s' if count > 1 else ''} detected: "
                                          + "; ".join(violations))
            return _method(self, *args, **kwargs)

        setattr(StepFunctionResponse, _snake(operation), checked)


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


# RedriveExecution's limits (Step Functions developer guide, "Restarting state machine
# executions with redrive": executions that closed within the last 14 days; API
# reference, RedriveExecution and ExecutionRedrivenEventDetails).
REDRIVE_WINDOW_DAYS = 14
MAX_REDRIVES = 1000


def redrive_start(definition, events, execution_input):
    """Where a redrive resumes: the top-level state of `definition` that was entered
    and never exited (no `<stateType>Exited` for its `<stateType>Entered`: the
    developer guide's rule, "Redriving Map Runs"), with the input it was entered
    with. The last such state wins; an execution that failed before entering any state
    resumes at StartAt with its input. Pure: tests call it on recorded histories."""
    top = definition.get("States", {})
    open_states = {}
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered and entered.get("name") in top:
            open_states[entered["name"]] = (event["id"], entered.get("input"))
        elif exited and exited.get("name") in top:
            open_states.pop(exited["name"], None)
    if not open_states:
        return definition["StartAt"], execution_input
    name, (_, state_input) = max(open_states.items(), key=lambda item: item[1][0])
    return name, json.loads(state_input) if isinstance(state_input, str) else state_input


def fix_sfn_has_no_redrive_execution():
    """RedriveExecution restarts a FAILED, TIMED_OUT or ABORTED STANDARD execution that
    closed within the last 14 days "from the unsuccessful step" with the input that
    step had, keeps the execution's ARN, history and the results of the steps that
    succeeded (they are not run again), adds an `ExecutionRedriven` event, counts the
    redrive in `$$.Execution.RedriveCount` and DescribeExecution's `redriveCount` /
    `redriveDate`, and refuses a RUNNING or SUCCEEDED execution with
    ExecutionNotRedrivable (API reference, RedriveExecution, DescribeExecution and
    ExecutionRedrivenEventDetails; developer guide, "Restarting state machine executions
    with redrive" and "Redriving Map Runs": a state is redriven when its
    `<stateType>Entered` event has no `<stateType>Exited`; the context object,
    `Execution.RedriveCount`). moto answers RedriveExecution with an error (no such
    operation). Run the same definition again from the unsuccessful top-level state,
    in the same execution, history continued. Not reproduced: an Inline Map or
    Parallel state is run again whole (AWS reruns only its failed iterations or
    branches), and a Distributed Map's Map Run is not redriven."""
    import copy
    import datetime

    from moto.stepfunctions.parser import api
    from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    original_environment = ExecutionWorker._get_evaluation_environment

    def environment(self):
        env = original_environment(self)
        redrive = getattr(self, "_baton_redrive", None)
        execution = env.states.context_object.context_object_data["Execution"]
        execution["RedriveCount"] = redrive["count"] if redrive else 0
        if redrive:
            execution["RedriveTime"] = redrive["date"].isoformat()
            # The history goes on where the last attempt's ended.
            manager = env.event_manager
            manager._history_event_list.extend(redrive["events"])
            manager._event_id_gen._next_id = len(redrive["events"]) + 1
            env.event_history_context.source_event_id = len(redrive["events"])
            env.event_history_context.last_published_event_id = len(redrive["events"])
            env.states.reset(input_value=redrive["input"])
        return env

    ExecutionWorker._get_evaluation_environment = environment

    original_entrypoint = ExecutionWorker._get_evaluation_entrypoint

    def entrypoint(self):
        redrive = getattr(self, "_baton_redrive", None)
        if redrive is None:
            return original_entrypoint(self)
        definition = json.loads(self._evaluation_details.state_machine_details.definition)
        definition["StartAt"] = redrive["start"]
        return AmazonStateLanguageParser.parse(json.dumps(definition))[0]

    ExecutionWorker._get_evaluation_entrypoint = entrypoint

    original_logic = ExecutionWorker._execution_logic

    def logic(self):
        redrive = getattr(self, "_baton_redrive", None)
        if redrive is None:
            return original_logic(self)
        program = self._get_evaluation_entrypoint()
        self.env = self._get_evaluation_environment()
        self.env.event_manager.add_event(
            context=self.env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=EventDetails(executionRedrivenEventDetails={"redriveCount": redrive["count"]}),
            update_source_event_id=False,
        )
        program.eval(self.env)
        self._execution_communication.terminated()

    ExecutionWorker._execution_logic = logic

    def not_redrivable(reason):
        return api.ExecutionNotRedrivable(reason)

    def redrive_execution(self, execution_arn, client_token=None):
        execution = self.describe_execution(execution_arn)
        if getattr(execution, "sm_type", None) == api.StateMachineType.EXPRESS:
            raise not_redrivable("Execution is of type EXPRESS and cannot be redriven.")
        status = execution.exec_status
        if status == ExecutionStatus.RUNNING:
            raise not_redrivable("Execution is RUNNING and cannot be redriven.")
        if status == ExecutionStatus.SUCCEEDED:
            raise not_redrivable("Execution is SUCCEEDED and cannot be redriven.")
        now = datetime.datetime.now(tz=datetime.timezone.utc)
        if execution.stop_date and now - execution.stop_date > datetime.timedelta(days=REDRIVE_WINDOW_DAYS):
            raise not_redrivable("Execution redrivable period exceeded.")
        count = getattr(execution, "redrive_count", 0)
        if count >= MAX_REDRIVES:
            raise not_redrivable("Execution has reached the maximum number of redrives.")
        old_worker = execution.exec_worker
        events = copy.deepcopy(old_worker.env.event_manager.get_event_history()) if old_worker.env else []
        definition = json.loads(execution.state_machine.definition)
        start, state_input = redrive_start(definition, events, execution.input_data)
        execution.redrive_count = count + 1
        execution.redrive_date = now
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = None
        execution.error = None
        execution.cause = None
        execution.output = None
        execution._baton_ended = False  # fix_sfn_stop_execution_waits_for_the_callback's marker
        worker = execution._get_start_execution_worker()
        worker._baton_redrive = {"count": execution.redrive_count, "date": now, "events": events,
                                 "start": start, "input": state_input}
        execution.exec_worker = worker
        worker.start()
        return execution

    StepFunctionsParserBackend.redrive_execution = redrive_execution

    def redrive_response(self):
        execution = self.stepfunction_backend.redrive_execution(
            self._get_param("executionArn"), self._get_param("clientToken"))
        return ActionResult({"redriveDate": execution.redrive_date})

    from moto.core.responses import ActionResult

    StepFunctionResponse.redrive_execution = redrive_response

    original_describe = StepFunctionResponse.describe_execution

    def describe_execution(self):
        result = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        body = getattr(result, "result", None)
        if isinstance(body, dict):
            body["redriveCount"] = getattr(execution, "redrive_count", 0)
            if getattr(execution, "redrive_date", None):
                body["redriveDate"] = execution.redrive_date
            redrivable = execution.status in ("FAILED", "TIMED_OUT", "ABORTED")
            body["redriveStatus"] = "REDRIVABLE" if redrivable else "NOT_REDRIVABLE"
            if not redrivable:
                body["redriveStatusReason"] = f"Execution is {execution.status} and cannot be redriven."
        return result

    StepFunctionResponse.describe_execution = describe_execution


# GetExecutionHistory's pages (API reference, GetExecutionHistory: maxResults "The
# default is 100 and the maximum allowed page size is 1000. A value of 0 uses the
# default"; nextToken "expires after 24 hours").
HISTORY_PAGE_DEFAULT = 100
HISTORY_PAGE_MAX = 1000


def history_page(events, max_results=0, next_token=None, reverse_order=False):
    """One page of an execution's history as GetExecutionHistory answers it: at most
    `max_results` events (0 or none: 100; over 1000 is a ValidationException), newest
    first with `reverse_order`, and a `nextToken` while more remain. A token is the
    offset it resumes at; one that does not parse is an InvalidToken. Pure."""
    import base64

    size = max_results or HISTORY_PAGE_DEFAULT
    if not 0 < size <= HISTORY_PAGE_MAX:
        raise ValueError(f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
                         f"constraint: Member must have value less than or equal to {HISTORY_PAGE_MAX}")
    offset = 0
    if next_token:
        try:
            offset = int(json.loads(base64.b64decode(next_token))["offset"])
        except (ValueError, KeyError, TypeError) as e:
            raise LookupError(f"Invalid Token: {e}") from None
    ordered = list(reversed(events)) if reverse_order else list(events)
    page = ordered[offset:offset + size]
    token = None
    if offset + size < len(ordered):
        token = base64.b64encode(json.dumps({"offset": offset + size}).encode()).decode()
    return page, token


def paged_answer(key, items, max_results, next_token, reverse_order=False):
    """A paged list answer as Step Functions gives it (`{key: [...], "nextToken"}`,
    [`history_page`]), its refusals as AWS names them: ValidationException for a bad
    `maxResults`, InvalidToken for a token it did not issue. For moto's response
    methods (GetExecutionHistory, and ListExecutions of a Map Run's children)."""
    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult

    def refused(code, message):
        return type(code, (AWSError,), {"TYPE": code, "STATUS": 400})(message)

    try:
        page, token = history_page(items, max_results or 0, next_token, reverse_order)
    except ValueError as e:
        raise refused("ValidationException", str(e)) from None
    except LookupError as e:
        raise refused("InvalidToken", str(e)) from None
    body = {key: page}
    if token:
        body["nextToken"] = token
    return ActionResult(body)


def fix_sfn_execution_history_is_never_paged():
    """GetExecutionHistory answers at most `maxResults` events a call (100 by default,
    1000 at most) with a `nextToken` for the rest, in `reverseOrder` if asked (API
    reference, GetExecutionHistory). moto answers the whole history at once whatever
    is asked, so a client that reads only the first page, or pages wrongly, passes
    here and misses events on AWS once a history passes 100 events (a pipeline with
    a few retries does). Page it as AWS does."""
    from moto.stepfunctions.responses import StepFunctionResponse

    def get_execution_history(self):
        history = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))
        return paged_answer("events", history["events"], self._get_int_param("maxResults"),
                            self._get_param("nextToken"), bool(self._get_param("reverseOrder")))

    StepFunctionResponse.get_execution_history = get_execution_history
