"""The ASL interpreter moto embeds: its ECS, nested-workflow and AWS SDK integrations
(`fix_asl_*`), the parameters the optimized integrations document, Map and Parallel
errors, inline Map concurrency, the payload quota, the errors States.ALL cannot
catch and the credentials its integrations call with (the execution's role)."""

import re

from ._shared import _snake, refuse_definitions


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


def epoch_millis(value):
    """`value` with every date in it (at any depth) as a number of milliseconds since
    the epoch (UTC when it names no zone); everything else unchanged."""
    import datetime

    if isinstance(value, datetime.datetime):
        at = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        return (at - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(milliseconds=1)
    if isinstance(value, dict):
        return {key: epoch_millis(item) for key, item in value.items()}
    if isinstance(value, list):
        return [epoch_millis(item) for item in value]
    return value


def fix_sfn_nested_workflow_answers_hold_datetimes():
    """The answer of Step Functions' own integration is JSON with its dates as numbers,
    milliseconds since the epoch: `startExecution` gives {"ExecutionArn", "StartDate":
    <number>}, `.sync` and `.sync:2` the child's description, {"ExecutionArn", "Input",
    "InputDetails", "Name", "Output", "OutputDetails", "StartDate": <number>,
    "StateMachineArn", "Status", "StopDate": <number>} (`.sync:2` with Input and Output as
    JSON, `.sync` as text), and that is what the state's result, its history events and
    the execution's output hold (Step Functions guide, "Start a new AWS Step Functions
    state machine from a running execution", https://docs.aws.amazon.com/step-functions/
    latest/dg/connect-stepfunctions.html, response syntax of the integration; the API's
    own JSON gives `startDate`/`stopDate` as numbers too, API reference, DescribeExecution
    "Response Syntax"). moto's interpreter hands boto3's answer on as it is, its dates
    Python datetimes: the history writes them as ISO text, and an execution whose output
    holds them answers DescribeExecution with HTTP 500 (TypeError: datetime is not JSON
    serializable), as does the Execution Status Change event of
    fix_sfn_emits_no_execution_status_change_events (the execution's worker thread dies
    there). Turn the dates of the integration's answers (the request's, the `.sync`
    waits' and the cause of a failed child, which is that answer as JSON text) into
    epoch milliseconds. Apply after fix_asl_states_parameter_normalisation (this wraps the
    response normalisation it gives the integration)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    original = StateTaskServiceSfn._normalise_response

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):
        original(self, response, boto_service_name=boto_service_name, service_action_name=service_action_name)
        if isinstance(response, dict):  # in place, as the interpreter reads it afterwards
            response.update(epoch_millis(response))

    StateTaskServiceSfn._normalise_response = normalise_response


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
    refuse_definitions(lambda parsed: [
        f"SCHEMA_VALIDATION_FAILED: The field '{field}' is not supported by Step Functions at {where}"
        for where, field in undocumented_integration_parameters(parsed)])


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


# Every module of moto's interpreter that imports `boto_client_for` by name (so that
# replacing it in its defining module alone changes nothing), and that module.
# tests/compat/test_role_sessions.py checks this list against moto's source.
INTERPRETER_CLIENT_MODULES = tuple("moto.stepfunctions.parser.asl." + name for name in (
    "utils.boto_client",
    "component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    "component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    "component.state.exec.state_task.lambda_eval_utils",
    "component.state.exec.state_task.service.state_task_service_aws_sdk",
    "component.state.exec.state_task.service.state_task_service_batch",
    "component.state.exec.state_task.service.state_task_service_dynamodb",
    "component.state.exec.state_task.service.state_task_service_ecs",
    "component.state.exec.state_task.service.state_task_service_events",
    "component.state.exec.state_task.service.state_task_service_glue",
    "component.state.exec.state_task.service.state_task_service_sfn",
    "component.state.exec.state_task.service.state_task_service_sns",
    "component.state.exec.state_task.service.state_task_service_sqs",
    "component.state.exec.state_task.service.state_task_service_unsupported",
))

# A role's session is used for at most this long, then assumed again (AssumeRole
# grants it for an hour).
ROLE_SESSION_REFRESH_SECONDS = 15 * 60
ROLE_SESSION_SECONDS = 3600
ROLE_SESSION_NAME = "StepFunctions"


class _RoleSessions:
    """Credentials of role sessions assumed through moto's own STS, in this process,
    one per role ARN, renewed after ROLE_SESSION_REFRESH_SECONDS."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._sessions = {}  # role ARN -> (moto's AssumedRole, time.monotonic() when assumed)

    def get(self, role_arn, region):
        """moto's AssumedRole for `role_arn`, or None when it is not an IAM role ARN."""
        import re
        import time

        match = re.fullmatch(r"arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/.+", role_arn or "")
        if match is None:
            return None
        with self._lock:
            cached = self._sessions.get(role_arn)
            if cached is not None and time.monotonic() - cached[1] < ROLE_SESSION_REFRESH_SECONDS:
                return cached[0]
            from moto.sts.models import sts_backends

            session = sts_backends[match["account"]][match["partition"]].assume_role(
                region_name=region, role_session_name=ROLE_SESSION_NAME, role_arn=role_arn, policy=None,
                duration=ROLE_SESSION_SECONDS, external_id=None)
            self._sessions[role_arn] = (session, time.monotonic())
            return session


role_sessions = _RoleSessions()


def _retrying_connections(client, attempts=5):
    """`client`, its calls made again (up to `attempts` in all, 0.2 s, 0.4 s, ... apart)
    when the connection to this process's own server failed before an answer: a pooled
    keep-alive connection the server had closed, or a connect refused while its listen
    queue (128) was full. moto's interpreter calls its own server with no retries at
    all, so with 1,000 child executions of a Distributed Map polling at once, one
    closed connection failed a nested StartExecution with States.Runtime, the Map Run
    with it, and aborted the 999 others. Step Functions' integrations reach AWS's
    services from within AWS; a dropped local connection is the local stack's, not a
    behaviour of AWS. Only connection failures are retried: every answer the server
    gives, an error included, is the state's as before."""
    import time

    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    make_api_call = client._make_api_call

    def retried(operation_name, api_params):
        for attempt in range(attempts):
            try:
                return make_api_call(operation_name, api_params)
            except (ConnectionClosedError, EndpointConnectionError):
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2 * 2 ** attempt)

    client._make_api_call = retried
    return client


def fix_asl_integrations_call_with_fixed_keys():
    """moto's ASL interpreter calls every service integration (optimized ones and their
    `.sync` polling, `aws-sdk:*`, Lambda function resources, a Distributed Map's
    ItemReader and ResultWriter) through one boto3 client factory,
    `boto_client_for(region, service, state_credentials)`, with the fixed keys `ak` /
    `sk`, whatever role the state machine has or a state's `Credentials.RoleArn`
    names: every call is the account's administrator's, so a state machine role that
    lacks a permission works locally. On AWS each integration call is made with the
    state machine's execution role (Step Functions developer guide, "Set up execution
    roles with Workflow Studio in Step Functions", https://docs.aws.amazon.com/step-
    functions/latest/dg/manage-state-machine-permissions.html: "Every Step Functions
    state machine requires an AWS Identity and Access Management (IAM) role which grants
    the state machine permission to perform actions on AWS services and resources ...
    This role is called an execution role"), or with the role a Task state's
    `Credentials` names, which Step Functions assumes ("Accessing resources in other
    AWS accounts in Step Functions", https://docs.aws.amazon.com/step-functions/latest/
    dg/concepts-access-cross-acct-resources.html), `.sync` polling included ("Cross-
    account access for .sync integration pattern": "The target IAM role needs the
    required permissions for a .sync invocation to complete this polling loop").

    Replace the factory, in its module and in every interpreter module that imported
    it by name (INTERPRETER_CLIENT_MODULES), with one that calls with the credentials
    of a session of `state_credentials.role_arn` assumed through moto's STS in this
    process (cached per role, renewed after 15 minutes), with the original's endpoint
    and client configuration (no retries, its timeouts; but see _retrying_connections).
    Without a role ARN (or with
    one that is not an IAM role's) it keeps the fixed keys. What moto's STS issues is
    what baton_local.iam.moto_hook maps to the role, so with the hook installed the
    role's policies decide each call, with the service's own AccessDenied error.

    One call is not the role's: after RunTask, the interpreter describes the task it
    started to build the state's output (moto's StateTaskServiceEcs, and compat.ecs's
    fix_ecs_run_task_never_reports_failures), which AWS does not ask the role for: an
    `ecs:runTask` or `ecs:runTask.waitForTaskToken` state needs ecs:RunTask (and
    iam:PassRole) only, ecs:DescribeTasks only for `.sync`, whose polling it is
    ("IAM policies for Amazon ECS/AWS Fargate", https://docs.aws.amazon.com/step-
    functions/latest/dg/ecs-iam.html). That DescribeTasks keeps the fixed keys; the
    `.sync` resolver's (built in StateTaskServiceEcs._build_sync_resolver) is the role's.

    Fixes that take `boto_client_for` from its module when they are applied
    (compat.ecs's fix_ecs_run_task_never_reports_failures) must come after this one,
    and so must those wrapping StateTaskServiceEcs._build_sync_resolver."""
    import importlib
    import sys
    import threading

    from botocore.config import Config

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client as defining

    original = defining.boto_client_for
    if getattr(original, "baton_role_sessions", False):
        return
    polling = threading.local()  # .active: building an ECS .sync resolver in this thread

    def in_the_ecs_integration():
        """Is the client for an optimized ECS integration's evaluation (RunTask, then
        the DescribeTasks moto adds), whichever fix now holds that method? An
        aws-sdk:ecs:describeTasks state goes with the role."""
        frame = sys._getframe(2)
        for _ in range(4):
            if frame is None:
                return False
            if "eval_service_task" in frame.f_code.co_name and isinstance(frame.f_locals.get("self"),
                                                                          StateTaskServiceEcs):
                return True
            frame = frame.f_back
        return False

    class DescribesAsTheService:
        """The role's ECS client, but for DescribeTasks, made with the fixed keys."""

        def __init__(self, role_client, own_client):
            self._role_client, self._own_client = role_client, own_client

        def describe_tasks(self, **kwargs):
            return self._own_client().describe_tasks(**kwargs)

        def __getattr__(self, name):
            return getattr(self._role_client, name)

    def boto_client_for(region, service, state_credentials=None):
        session = role_sessions.get(getattr(state_credentials, "role_arn", None), region)
        if session is None:
            return _retrying_connections(original(region, service, state_credentials))
        client = _retrying_connections(role_client(region, service, session))
        if service == "ecs" and not getattr(polling, "active", False) and in_the_ecs_integration():
            own = lambda: _retrying_connections(original(region, service, state_credentials))  # noqa: E731
            return DescribesAsTheService(client, own)
        return client

    def role_client(region, service, session):
        import boto3

        kwargs = {}
        if not defining.botocore_stubber.enabled:
            kwargs["endpoint_url"] = f"http://localhost:{defining.moto_server_port()}"
        return boto3.client(
            aws_access_key_id=session.access_key_id,
            aws_secret_access_key=session.secret_access_key,
            aws_session_token=session.session_token,
            region_name=region,
            service_name=service,
            config=Config(
                parameter_validation=False,
                retries={"max_attempts": 0, "total_max_attempts": 1},
                connect_timeout=defining.TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                read_timeout=defining.TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            ),
            **kwargs,
        )

    original_build = StateTaskServiceEcs._build_sync_resolver

    def build_sync_resolver(self, *args, **kwargs):
        polling.active = True
        try:
            return original_build(self, *args, **kwargs)
        finally:
            polling.active = False

    StateTaskServiceEcs._build_sync_resolver = build_sync_resolver
    boto_client_for.baton_role_sessions = True
    for name in INTERPRETER_CLIENT_MODULES:
        setattr(importlib.import_module(name), "boto_client_for", boto_client_for)
    # Any other module of the interpreter that has imported it meanwhile.
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.") and getattr(module, "boto_client_for", None) is original:
            setattr(module, "boto_client_for", boto_client_for)


# A definite JSONPath: `$` or `$$`, then only `.name`, `['name']` or `[n]` steps (no
# wildcard, slice, filter, union or recursive descent).
_DEFINITE_PATH = re.compile(r"^\$\$?(?:\.[^.\[\]*?@,:()]+|\['[^']*'\]|\[\d+\])*$")


def fix_sfn_indexed_reference_paths_answer_a_list():
    """A reference path identifies a single node: `$.Items[0].index` is the number at
    `index` of the first item, as `$.foo` is 123 (Step Functions guide, "Using JSONPath
    paths", https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-
    paths.html, "Reference paths": "a path whose syntax is limited in such a way that it
    can identify only a single node in a JSON structure", with `[ ]` notation among
    what it may use; localstack/localstack#11321 compares AWS's scalar with an emulator's
    list). moto's interpreter answers a list, `[3]`, for any path whose match sits under
    an array index (`$.Items[0].index`, `$.b.c[0].d`), a rule it added for filter queries
    (getmoto/moto#7825), in Parameters, ItemSelector, intrinsic functions' arguments and
    Choice rules alike; `States.Format('items-{}', $.Items[0].index)` gave `items-[3]`.
    A definite path (only `.name`, `['name']` and `[n]` steps) with one match answers
    that match's value; wildcards, slices and filters keep moto's answer."""
    import sys

    from moto.stepfunctions.parser.asl.utils import json_path
    from jsonpath_ng.ext import parse

    original = json_path.extract_json

    def extract_json(path, data):
        if isinstance(path, str) and _DEFINITE_PATH.match(path.strip()):
            matches = parse(path).find(data)
            if len(matches) == 1:
                return matches[0].value
        return original(path, data)

    # Each interpreter module imported the function by name: import them all first.
    import importlib
    import pkgutil

    import moto.stepfunctions.parser.asl as asl_package

    for info in pkgutil.walk_packages(asl_package.__path__, asl_package.__name__ + "."):
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional part (JSONata's engine) may be missing
            pass
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json
