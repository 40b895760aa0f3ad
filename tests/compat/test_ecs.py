"""compat.ecs: each gap is still there in the pinned moto (when an upgrade closes it,
the test says which fix to delete) and the fix closes it. RunTask, its failures,
SubmitTaskStateChange, StopTask, reads racing RunTask, ListTasks's lone startedBy,
`.sync` exit codes."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from baton_local.testing import client
from compat_helpers import ROLE, ecs_setup, settle
from iam_host import iam_host  # noqa: F401 - a fixture


def sync_machine(endpoint, name, memory="512"):
    """A one-state machine running task1 with ecs:runTask.sync (or, with a memory the
    local cluster cannot place, any ecs:runTask)."""
    ecs, ec2 = client(endpoint, "ecs"), client(endpoint, "ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    ecs.create_cluster(clusterName="baton")
    definition = ecs.register_task_definition(
        family=f"{name}-def", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory=memory,
        containerDefinitions=[{"name": "worker", "image": "baton-worker", "memory": int(memory), "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
             "Parameters": {"LaunchType": "FARGATE", "Cluster": "baton", "TaskDefinition": definition,
                            "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": [subnet],
                                                                             "SecurityGroups": [group]}}},
             "End": True}
    sfn = client(endpoint, "stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=json.dumps({"StartAt": "Run", "States": {"Run": state}}),
                                   roleArn=ROLE)["stateMachineArn"]
    return sfn, ecs, arn, definition


def test_gap_submit_task_state_change_missing_in_plain_moto(moto):
    ecs = client(moto, "ecs")
    ecs.create_cluster(clusterName="gap")
    with pytest.raises(Exception) as raised:
        ecs.submit_task_state_change(cluster="gap", task="t", status="STOPPED")
    assert "not" in str(raised.value).lower() or "500" in str(raised.value) or isinstance(raised.value, ClientError), (
        "moto now implements SubmitTaskStateChange: delete compat.fix_ecs_submit_task_state_change_missing")


def test_gap_run_task_places_everything_in_plain_moto(moto):
    ecs, ec2 = client(moto, "ecs"), client(moto, "ec2")
    _, _, _, definition = sync_machine(moto, "gap-place", memory="61440")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    out = ecs.run_task(cluster="baton", taskDefinition=definition, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})
    assert out["tasks"] and not out["failures"], (
        "moto now reports RunTask failures: delete compat.fix_ecs_run_task_never_reports_failures")


def test_gap_sync_succeeds_on_any_stopped_task_in_plain_moto(monkeypatch):
    # Plain moto cannot run an ECS state at all (the normalisation gap above), so this
    # checks its .sync resolver directly: a STOPPED task with exit code 3 is returned
    # as the state's result instead of failing it.
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_ecs as ecs_module

    class StoppedWithExit3:
        def describe_tasks(self, **_):
            return {"tasks": [{"lastStatus": "STOPPED", "taskArn": "t", "clusterArn": "c",
                               "containers": [{"name": "worker", "exitCode": 3}]}]}

    class Env:
        stack = [{"Tasks": [{"TaskArn": "t", "ClusterArn": "c"}]}]

    class Part:
        region = "us-east-1"

    monkeypatch.setattr(ecs_module, "boto_client_for", lambda **_: StoppedWithExit3())
    state = ecs_module.StateTaskServiceEcs.__new__(ecs_module.StateTaskServiceEcs)
    state._normalise_response = lambda response, service_action_name: response.update(
        Tasks=[{"Containers": [{"ExitCode": c["exitCode"]} for c in response["tasks"][0]["containers"]]}])
    resolved = ecs_module.StateTaskServiceEcs._build_sync_resolver(state, Env(), Part(), {}, None)()
    assert resolved["Containers"][0]["ExitCode"] == 3, (
        "moto's .sync no longer succeeds on a non-zero exit: delete compat.fix_ecs_sync_succeeds_whatever_the_exit_code")


class GrowsWhileRead(dict):
    """A cluster's task dict that RunTask (another thread) adds to while it is read."""
    grow = 1

    def items(self):
        entries = iter(super().items())
        first = next(entries)
        if self.grow:
            self.grow -= 1
            self["arn:aws:ecs:us-east-1:123456789012:task/c/added-meanwhile"] = first[1]
        yield first
        yield from entries

    values = lambda self: (v for _, v in self.items())  # noqa: E731


def ecs_backend_with_a_task(backend_class):
    from types import SimpleNamespace

    backend = backend_class("us-east-1", "123456789012")
    backend.create_cluster("c")
    task = SimpleNamespace(task_arn="arn:aws:ecs:us-east-1:123456789012:task/c/t1", advance=lambda: None)
    backend.tasks["c"] = GrowsWhileRead({task.task_arn: task})
    return backend


def test_gap_ecs_task_reads_race_run_task_in_plain_moto():
    from moto.ecs.models import EC2ContainerServiceBackend

    backend = ecs_backend_with_a_task(EC2ContainerServiceBackend)
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        backend.describe_tasks("c", ["t1"])
        pytest.fail("moto's DescribeTasks now survives concurrent RunTask: delete compat.fix_ecs_task_reads_race_run_task")


def test_fixed_ecs_task_reads_survive_a_concurrent_run_task():
    from baton_local import compat
    from moto.ecs.models import EC2ContainerServiceBackend

    class Backend(EC2ContainerServiceBackend):
        pass

    compat.fix_ecs_task_reads_race_run_task(Backend)
    backend = ecs_backend_with_a_task(Backend)
    assert [t.task_arn for t in backend.describe_tasks("c", ["t1"])] == ["arn:aws:ecs:us-east-1:123456789012:task/c/t1"]


def test_fixed_submit_task_state_change_records_exit_codes_and_stop_code(host):
    ecs, definition, subnet, group = ecs_setup(host)
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    arns = []
    for _ in range(3):
        arns.append(ecs.run_task(cluster="baton", taskDefinition=definition, launchType="FARGATE",
                                 networkConfiguration=network)["tasks"][0]["taskArn"])
    exited, never_started, stopped = arns
    ecs.submit_task_state_change(cluster="baton", task=exited, status="STOPPED", reason="Essential container in task exited",
                                 containers=[{"containerName": "worker", "exitCode": 3, "status": "STOPPED"}])
    ecs.submit_task_state_change(cluster="baton", task=never_started, status="STOPPED",
                                 reason="CannotPullContainerError: no such image",
                                 containers=[{"containerName": "worker", "status": "STOPPED", "reason": "CannotPullContainerError"}])
    ecs.stop_task(cluster="baton", task=stopped, reason="Task stopped by user")
    ecs.submit_task_state_change(cluster="baton", task=stopped, status="STOPPED",
                                 containers=[{"containerName": "worker", "exitCode": 143, "status": "STOPPED"}])
    tasks = {t["taskArn"]: t for t in ecs.describe_tasks(cluster="baton", tasks=arns)["tasks"]}
    assert tasks[exited]["lastStatus"] == "STOPPED"
    assert tasks[exited]["stopCode"] == "EssentialContainerExited"
    assert tasks[exited]["containers"][0]["exitCode"] == 3
    assert tasks[never_started]["stopCode"] == "TaskFailedToStart"
    assert "exitCode" not in tasks[never_started]["containers"][0]
    assert tasks[never_started]["stoppedReason"].startswith("CannotPullContainerError")
    assert tasks[stopped]["stopCode"] == "UserInitiated"
    assert tasks[stopped]["containers"][0]["exitCode"] == 143


def test_fixed_run_task_failures_fail_the_state_with_amazon_ecs_unknown(host):
    # AWS: RunTask answering 200 with `failures` fails the state with AmazonECS.Unknown.
    sfn, ecs, arn, _ = sync_machine(host, "fixed-place", memory="61440")
    execution = sfn.start_execution(stateMachineArn=arn, name="fixed-place", input="{}")["executionArn"]
    d = settle(sfn, execution)
    assert (d["status"], d.get("error")) == ("FAILED", "AmazonECS.Unknown"), d
    assert json.loads(d["cause"])["Failures"][0]["reason"] == "RESOURCE:MEMORY"
    assert not ecs.list_tasks(cluster="baton", family="fixed-place-def")["taskArns"]


def test_fixed_sync_fails_on_a_non_zero_essential_exit_with_the_task_as_cause(host):
    # AWS: .sync on a task whose essential container exited non-zero fails the state
    # with States.TaskFailed, the cause holding the task description.
    for name, exit_code in (("fixed-sync-ok", 0), ("fixed-sync-exit", 3)):
        sfn, ecs, arn, _ = sync_machine(host, name)
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
        task = None
        for _ in range(100):
            arns = ecs.list_tasks(cluster="baton", family=f"{name}-def")["taskArns"]
            if arns:
                task = arns[0]
                break
            time.sleep(0.1)
        assert task, "no task started"
        ecs.submit_task_state_change(cluster="baton", task=task, status="STOPPED", reason="Essential container in task exited",
                                     containers=[{"containerName": "worker", "exitCode": exit_code, "status": "STOPPED"}])
        d = settle(sfn, execution, timeout=20)
        if exit_code == 0:
            assert d["status"] == "SUCCEEDED", d
        else:
            assert (d["status"], d.get("error")) == ("FAILED", "States.TaskFailed"), d
            cause = json.loads(d["cause"])
            assert cause["Containers"][0]["ExitCode"] == 3 and cause["StopCode"] == "EssentialContainerExited"


def stop_a_running_task(endpoint):
    """RunTask, report it RUNNING as the runner does, StopTask: (ecs, arn, the task as described)."""
    ecs, definition, subnet, group = ecs_setup(endpoint)
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    arn = ecs.run_task(cluster="baton", taskDefinition=definition, launchType="FARGATE",
                       networkConfiguration=network)["tasks"][0]["taskArn"]
    ecs.stop_task(cluster="baton", task=arn, reason="Baton: execution e-1 ended (ABORTED)")
    return ecs, arn, ecs.describe_tasks(cluster="baton", tasks=[arn])["tasks"][0]


def test_gap_stop_task_reports_stopped_at_once_in_plain_moto(moto):
    _, _, task = stop_a_running_task(moto)
    assert task["lastStatus"] == "STOPPED", (
        "moto now keeps a stopping task's last status: delete compat.fix_ecs_stop_task_reports_stopped_at_once")


def test_fixed_stop_task_asks_and_the_task_reports_stopped_when_it_has(host):
    # ECS: StopTask sets desiredStatus STOPPED and the reason; lastStatus follows once
    # the containers are gone (the runner's report), with stopCode UserInitiated.
    ecs, arn, task = stop_a_running_task(host)
    assert (task["desiredStatus"], task["stoppedReason"]) == ("STOPPED", "Baton: execution e-1 ended (ABORTED)")
    assert task["lastStatus"] != "STOPPED", task["lastStatus"]
    ecs.submit_task_state_change(cluster="baton", task=arn, status="STOPPED", reason="Baton: execution e-1 ended (ABORTED)",
                                 containers=[{"containerName": "worker", "exitCode": 137, "status": "STOPPED"}])
    task = ecs.describe_tasks(cluster="baton", tasks=[arn])["tasks"][0]
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "UserInitiated")


def list_tasks_answers(endpoint):
    """What ListTasks answers (task ARNs, or the error code and HTTP status) for
    startedBy alone, then with each of the filters ECS says it cannot be combined with."""
    ecs, definition, subnet, group = ecs_setup(endpoint)
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    arn = ecs.run_task(cluster="baton", taskDefinition=definition, launchType="FARGATE", startedBy="lone-filter",
                       networkConfiguration=network)["tasks"][0]["taskArn"]
    answers = {}
    for extra in ({}, {"desiredStatus": "RUNNING"}, {"family": "task1"}, {"launchType": "FARGATE"}):
        try:
            answers[tuple(extra)] = ecs.list_tasks(cluster="baton", startedBy="lone-filter", **extra)["taskArns"]
        except ClientError as e:
            answers[tuple(extra)] = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
    return arn, answers


def test_gap_list_tasks_combines_started_by_with_other_filters_in_plain_moto(moto):
    arn, answers = list_tasks_answers(moto)
    assert answers[("desiredStatus",)] == [arn], (
        "moto now refuses startedBy with another filter: delete "
        "compat.fix_ecs_list_tasks_combines_started_by_with_other_filters")


def test_fixed_list_tasks_refuses_started_by_with_another_filter(host):
    # ECS API reference, ListTasks, startedBy: "When you specify startedBy as the filter,
    # it must be the only filter that you use." The cluster is not a filter.
    arn, answers = list_tasks_answers(host)
    assert answers[()] == [arn]
    for extra in (("desiredStatus",), ("family",), ("launchType",)):
        assert answers[extra] == ("InvalidParameterException", 400), (extra, answers[extra])
    ecs = client(host, "ecs")
    assert arn in ecs.list_tasks(cluster="baton", desiredStatus="RUNNING", family="task1")["taskArns"], (
        "other filters still combine")


def _role(iam, name, service):
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


def _run_with_task_role(endpoint, name, service):
    iam, ecs, ec2 = client(endpoint, "iam"), client(endpoint, "ecs"), client(endpoint, "ec2")
    role = _role(iam, name, service)
    cluster = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    definition = ecs.register_task_definition(
        family=name, taskRoleArn=role, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
        memory="512", containerDefinitions=[{"name": "c", "image": "local:/bin/true", "memory": 64}],
    )["taskDefinition"]["taskDefinitionArn"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    return ecs.run_task(cluster=cluster, taskDefinition=definition, launchType="FARGATE", networkConfiguration={
        "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})


def test_gap_run_task_ignores_the_task_roles_trust_in_plain_moto(moto):
    answer = _run_with_task_role(moto, "trust-gap", "lambda.amazonaws.com")
    assert answer["tasks"], ("moto now refuses a task role ECS may not assume: "
                             "delete compat.fix_ecs_run_task_skips_the_task_roles_trust")


def test_fixed_run_task_needs_a_task_role_ecs_may_assume(iam_host):
    with pytest.raises(ClientError) as refused:
        _run_with_task_role(iam_host.endpoint, "trust-lambda", "lambda.amazonaws.com")
    assert refused.value.response["Error"]["Code"] == "ClientException"
    assert "ECS was unable to assume the role" in refused.value.response["Error"]["Message"]
    assert _run_with_task_role(iam_host.endpoint, "trust-ecs", "ecs-tasks.amazonaws.com")["tasks"]
