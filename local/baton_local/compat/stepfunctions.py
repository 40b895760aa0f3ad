"""Step Functions: SendTaskFailure's cause, executions without a name, the ASL
interpreter's ECS and nested-workflow integrations (`fix_asl_*`) and the parameters the
optimized integrations document, task tokens (their length, a new one per attempt,
closed ones), StopExecution, heartbeat timeouts, `.sync` children of a stopped parent,
the execution status change events, Map and Parallel errors, inline Map concurrency,
the API's length constraints, the payload quota and the errors States.ALL cannot
catch."""

import functools
import json
import threading

from ._shared import LOG


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


def _normalise_with_botocore(service_class, service=None, keep_original=False):
    """Give an ASL service integration botocore's shape conversion both ways
    (PascalCase in the state machine, what boto3 takes and answers), as the
    interpreter's upstream does. `service`: botocore's name for the service, or None
    for the one each state names (the AWS SDK integrations). `keep_original`: run the
    class's own normalisation first (the Step Functions integration turns `Input` into
    text there)."""
    import botocore.session

    session = botocore.session.get_session()

    def operation_model(self, service_action_name):
        model = session.get_service_model(service or self._get_boto_service_name())
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



def fix_asl_aws_sdk_parameter_normalisation():
    """The same stub for the AWS SDK integrations (`arn:aws:states:::aws-sdk:<service>:
    <action>`): their parameters go to boto3 as the state machine spells them, so a
    service whose API members are camelCase refuses them (`aws-sdk:sfn:describeExecution`
    with `ExecutionArn` fails with States.Runtime 'ExecutionArn'), and the answer keeps
    boto3's camelCase (`status`). AWS takes and answers PascalCase in every SDK
    integration, as the interpreter's upstream converts them (its base StateTaskService
    normalises both ways with botocore's shapes; the moto copy stubs that out); Step
    Functions guide, "AWS SDK service integrations" (parameters in PascalCase) and the
    pipelines' own `$.Error`/`$.Status`/`$.ExecutionArn` reads. S3's members are
    PascalCase already, so `aws-sdk:s3:listObjectsV2` is unchanged."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    _normalise_with_botocore(StateTaskServiceAwsSdk)


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
    """moto's ASL interpreter silently drops every RunTask parameter outside its list
    of the integration's documented ones, and its list lacks `CapacityProviderStrategy`,
    so a task meant for FARGATE_SPOT lands on the cluster's default. AWS accepts
    CapacityProviderStrategy in an `ecs:runTask` state: AWS CDK's EcsRunTask emits it
    there (aws/aws-cdk#35465; #20013: "This field can also be specified in a
    ecs:runTask.sync Step Function state"). Pass it through, and nothing else:
    undocumented parameters are refused when the state machine is created
    (fix_sfn_definitions_accept_undocumented_integration_parameters)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_ecs

    state_task_service_ecs._SUPPORTED_API_PARAM_BINDINGS["runtask"] |= {"CapacityProviderStrategy"}


# The parameters each optimized integration Baton uses documents, by the service and
# action of its Resource (arn:aws:states:::<service>:<action>[.sync|.sync:2|
# .waitForTaskToken]). Where the Step Functions guide and the interpreter moto embeds
# (whose tests are recorded against AWS) disagree, the stricter list:
# - ecs:runTask: the guide's "Supported parameters" (awsdocs/aws-step-functions-
#   developer-guide, doc_source/connect-ecs.md), EnableExecuteCommand (the emulator
#   and AWS CDK's EcsRunTask) and CapacityProviderStrategy (AWS CDK, see
#   fix_asl_ecs_drops_run_task_parameters). StartedBy, Tags, Count... are not there.
# - lambda:invoke: the guide lists five of Invoke's six request parameters (all but
#   LogType, which the emulator calls "outside the specification"); the emulator drops
#   InvocationType, so it cannot be reproduced locally: both refused.
# - states:startExecution: Input, Name, StateMachineArn (the guide and the emulator).
# `aws-sdk:*` integrations take their API's own parameters and are not checked here.
DOCUMENTED_INTEGRATION_PARAMETERS = {
    ("ecs", "runTask"): frozenset({
        "Cluster", "Group", "LaunchType", "NetworkConfiguration", "Overrides", "PlacementConstraints",
        "PlacementStrategy", "PlatformVersion", "PropagateTags", "TaskDefinition", "EnableExecuteCommand",
        "CapacityProviderStrategy"}),
    ("lambda", "invoke"): frozenset({"ClientContext", "FunctionName", "Payload", "Qualifier"}),
    ("states", "startExecution"): frozenset({"Input", "Name", "StateMachineArn"}),
}


def undocumented_integration_parameters(definition):
    """[(where, field)] for each parameter of an optimized integration state in the
    ASL `definition` (a dict) that DOCUMENTED_INTEGRATION_PARAMETERS does not list;
    `where` is the JSON pointer of the state's Parameters or Arguments."""
    import re

    resource_pattern = re.compile(r"^arn:[^:]+:states:::(?P<service>[^:.]+):(?P<action>[^.]+)(?:\..*)?$")
    found = []

    def walk(states, at):
        for name, state in (states or {}).items():
            if not isinstance(state, dict):
                continue
            match = resource_pattern.match(str(state.get("Resource", "")))
            documented = match and DOCUMENTED_INTEGRATION_PARAMETERS.get((match["service"], match["action"]))
            for field in ("Parameters", "Arguments"):
                if documented and isinstance(state.get(field), dict):
                    for key in state[field]:
                        if key.removesuffix(".$") not in documented:
                            found.append((f"{at}/{name}/{field}", key.removesuffix(".$")))
            for nested in ("ItemProcessor", "Iterator"):
                if isinstance(state.get(nested), dict):
                    walk(state[nested].get("States"), f"{at}/{name}/{nested}/States")
            for index, branch in enumerate(state.get("Branches") or []):
                walk(branch.get("States"), f"{at}/{name}/Branches[{index}]/States")

    walk(definition.get("States"), "/States")
    return found


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


def fix_sfn_definitions_accept_undocumented_integration_parameters():
    """moto creates a state machine whose optimized integration states (`ecs:runTask`,
    `lambda:invoke`, `states:startExecution`) carry parameters the integration does not
    document, then silently drops them when the state runs, so a definition that relies
    on one (`StartedBy` on `ecs:runTask`) passes every local test. AWS validates a
    definition when it is created or updated and answers InvalidDefinition ("The
    provided Amazon States Language definition is not valid", Step Functions API
    reference) for one it refuses; its documentation lists each optimized
    integration's supported parameters and is silent about the rest, so choose the
    stricter: refuse them on CreateStateMachine and UpdateStateMachine. Needs
    fix_sfn_parser_errors_have_no_code for the error's code."""
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend._validate_definition

    def validate_definition(definition):
        original(definition)
        try:
            parsed = json.loads(definition)
        except (TypeError, ValueError):
            return  # moto's own check has answered for definitions it cannot read
        problems = [f"SCHEMA_VALIDATION_FAILED: The field '{field}' is not supported by Step Functions at {where}"
                    for where, field in undocumented_integration_parameters(parsed)]
        if problems:
            raise InvalidDefinition(message="Invalid State Machine Definition: " + ", ".join(problems))

    StepFunctionsParserBackend._validate_definition = staticmethod(validate_definition)


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


def fix_sfn_map_and_parallel_turn_states_errors_into_runtime():
    """A Map iteration or a Parallel branch that fails with a `States.*` error
    (States.TaskFailed, States.Timeout, States.DataLimitExceeded...) fails the Map or
    Parallel state (Step Functions guide, Map: "If any iteration fails, entire Map state
    fails, and all iterations are terminated"; Parallel: "the entire Parallel state is
    considered to have failed ... If the error is not handled by the Parallel state
    itself, Step Functions stops the execution with an error") with the iteration's own
    error and cause, as moto's interpreter (tested against AWS) does for other names.
    For `States.*` names it wraps the error in a CustomErrorName, which refuses them
    ("Custom Error Names MUST NOT begin with the prefix 'States.'"), so the state fails
    with States.Runtime instead, and catchers and retriers of the real error never
    fire. Name the error as it was reported."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        ILLEGAL_CUSTOM_ERROR_PREFIX,
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    class ReportedStatesErrorName(ErrorName):
        """A States.* name the interpreter has no type for, kept as reported."""

    def error_name_as_reported(error_name):
        if error_name is None or not str(error_name).startswith(ILLEGAL_CUSTOM_ERROR_PREFIX):
            return CustomErrorName(error_name=error_name)
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            return ReportedStatesErrorName(error_name)

    # Both modules name the class at module level; only their failure paths call it.
    iteration_worker.CustomErrorName = error_name_as_reported
    branches_decl.CustomErrorName = error_name_as_reported


# Step Functions, "Map state" (Inline mode): "In this mode, the Map state supports up to
# 40 concurrent iterations."
INLINE_MAP_MAX_CONCURRENCY = 40


def fix_sfn_inline_map_runs_every_iteration_at_once():
    """An inline Map runs at most 40 iterations at once, whatever its MaxConcurrency
    (Step Functions, "Using Map state in Inline mode": "In this mode, the Map state
    supports up to 40 concurrent iterations"; MaxConcurrency 0, the default, means no
    limit of the state's own). moto starts one worker per item when MaxConcurrency is 0
    and as many as MaxConcurrency says otherwise, so a Map of 1,000 callback tasks runs
    1,000 ECS tasks at once locally and 40 on AWS. Cap the workers at 40."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component import (
        InlineIterationComponent,
    )

    original = InlineIterationComponent._eval_body

    def eval_body(self, env):
        eval_input = env.stack[-1]
        if not 0 < eval_input.max_concurrency <= INLINE_MAP_MAX_CONCURRENCY:
            eval_input.max_concurrency = INLINE_MAP_MAX_CONCURRENCY
        return original(self, env)

    InlineIterationComponent._eval_body = eval_body


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


def _data_limit_exceeded(state, env, cause):
    """The FailureEventException of a task state's States.DataLimitExceeded."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    typ = StatesErrorNameType.StatesStatesDataLimitExceeded
    return FailureEventException(FailureEvent(
        env=env, error_name=StatesErrorName(typ=typ), event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(error=typ.to_name(), cause=cause))))


def fix_sfn_task_input_skips_the_payload_quota():
    """A state whose input, after Parameters processing, is larger than the 256 KiB
    payload quota fails with States.DataLimitExceeded (Step Functions, "Handling errors":
    States.DataLimitExceeded is reported when "After Parameters processing, the input of
    a state is larger than the payload size quota"; quotas: "Maximum input or output size
    for a task, state, or execution: 256 KiB of data as a UTF-8 encoded string"). moto
    checks a task's result and a state's output but hands any Parameters to the
    integration, so a 400 KB request passes locally. Check the evaluated Parameters (or
    Arguments) of Task states."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
    from moto.stepfunctions.parser.quotas import is_within_size_quota

    original = StateTask._eval_parameters

    def eval_parameters(self, env):
        parameters = original(self, env)
        if not is_within_size_quota(parameters):
            raise _data_limit_exceeded(self, env, f"The state/task '{self.name}' has an input with a size exceeding "
                                                  "the maximum number of bytes service limit.")
        return parameters

    StateTask._eval_parameters = eval_parameters


def fix_sfn_states_all_catches_terminal_errors():
    """`States.ALL` in a Retry or Catch matches any error name except two: it "can't
    catch the States.DataLimitExceeded terminal error or Runtime error types" (Step
    Functions, "Handling errors in Step Functions workflows", States.ALL), so an
    execution whose payload outgrows the quota fails even under a catch-all. moto's
    States.ALL matches everything, so a local catch-all hides them. Make States.ALL
    pass over States.DataLimitExceeded and States.Runtime (an ErrorEquals that names
    them still matches, as moto does)."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl

    terminal = {"States.DataLimitExceeded", "States.Runtime"}
    original = ErrorEqualsDecl._eval_body

    def eval_body(self, env):
        error = getattr(env.stack[-1], "error_name", None) if env.stack else None
        named = {getattr(name, "error_name", None) for name in self.error_names}
        if error in terminal and error not in named:
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    ErrorEqualsDecl._eval_body = eval_body


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


@functools.lru_cache(maxsize=1)
def _sfn_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("stepfunctions")


def _snake(name):
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    return camel_to_snake_case(name)
