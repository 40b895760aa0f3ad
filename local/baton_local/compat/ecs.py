"""ECS: RunTask (container memory, placement failures), SubmitTaskStateChange,
StopTask, task reads racing RunTask, ListTasks's lone startedBy, and what a Step
Functions ECS state makes of a task (RunTask's failures, a `.sync` task's exit
codes)."""

import time

from ._shared import dumps


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


# ListTasks's filters other than startedBy (its request members but cluster and paging).
LIST_TASKS_OTHER_FILTERS = ("containerInstance", "family", "serviceName", "desiredStatus", "launchType", "daemonName")


def fix_ecs_list_tasks_combines_started_by_with_other_filters():
    """ListTasks's `startedBy`: "When you specify startedBy as the filter, it must be
    the only filter that you use" (ECS API reference, ListTasks; SDK model
    ListTasksRequest.startedBy). moto applies every filter given, so a call that ECS
    refuses (startedBy with desiredStatus) works locally. Answer it as ECS answers an
    invalid parameter: InvalidParameterException, HTTP 400."""
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.responses import EC2ContainerServiceResponse

    original = EC2ContainerServiceResponse.list_tasks

    def list_tasks(self):
        others = [name for name in LIST_TASKS_OTHER_FILTERS if self._get_param(name) is not None]
        if self._get_param("startedBy") is not None and others:
            raise InvalidParameterException(
                "startedBy must be the only filter of ListTasks; it was combined with " + ", ".join(others))
        return original(self)

    EC2ContainerServiceResponse.list_tasks = list_tasks


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


def fix_ecs_run_task_skips_the_task_roles_trust():
    """moto's RunTask starts a task whatever its task role's trust policy says (and its
    STS hands out a session of any role). ECS assumes the task role for the task, so
    a role whose trust policy does not let ecs-tasks.amazonaws.com assume it makes
    RunTask fail with ClientException "ECS was unable to assume the role '<arn>' that
    was provided for this task. Please verify that the role being passed has the
    proper trust relationship and permissions and that your IAM user has permissions
    to pass this role." (ECS guide, "Amazon ECS task IAM role": the trust
    relationship; the error as users report it, e.g.
    aws-samples/aws-modern-application-workshop#149). While the IAM hook enforces,
    RunTask checks the trust policy of the task role (RunTask's override, else the
    definition's) and of the execution role, with aws:SourceAccount, as ECS's
    confused-deputy guidance lets a trust policy require."""
    from moto.ecs.exceptions import EcsClientException
    from moto.ecs.responses import EC2ContainerServiceResponse

    from ..iam import moto_hook
    from ..iam.evaluate import Request, evaluate

    original_run_task = EC2ContainerServiceResponse.run_task

    def run_task(self):
        if moto_hook.installed():
            definition = self.ecs_backend.describe_task_definition(self._get_param("taskDefinition"))
            overrides = self._get_param("overrides") or {}
            roles = [overrides.get("taskRoleArn") or getattr(definition, "task_role_arn", None),
                     overrides.get("executionRoleArn") or getattr(definition, "execution_role_arn", None)]
            for role in filter(None, roles):
                trust = evaluate(Request("ecs-tasks.amazonaws.com", "sts:AssumeRole", (role,),
                                         {"aws:SourceAccount": self.current_account}),
                                 None, moto_hook.trust_policy(role))
                if not trust.allowed:
                    raise EcsClientException(
                        f"ECS was unable to assume the role '{role}' that was provided for this task. Please "
                        "verify that the role being passed has the proper trust relationship and permissions "
                        "and that your IAM user has permissions to pass this role.")
        return original_run_task(self)

    EC2ContainerServiceResponse.run_task = run_task
