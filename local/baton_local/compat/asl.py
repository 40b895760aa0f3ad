"""The ASL interpreter moto embeds: its ECS, nested-workflow and AWS SDK integrations
(`fix_asl_*`), the parameters the optimized integrations document, Map and Parallel
errors, inline Map concurrency, the payload quota and the errors States.ALL cannot
catch."""

import json

from ._shared import _snake


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
