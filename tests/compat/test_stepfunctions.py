"""compat.stepfunctions: each gap is still there in the pinned moto (when an upgrade
closes it, the test says which fix to delete) and the fix closes it. Step Functions'
API, the ASL interpreter's ECS and nested-workflow integrations, task tokens,
StopExecution, heartbeat timeouts and the execution status change events."""

import json
import os
import subprocess
import time
from pathlib import Path

from botocore.exceptions import ClientError

from baton_local.testing import REGION, ROOT, aws_env, client
from compat_helpers import ROLE, ecs_setup, receive_all, settle


def callback_machine(endpoint, name):
    ecs, definition, subnet, group = ecs_setup(endpoint)
    state = {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.waitForTaskToken",
        "Parameters": {
            "LaunchType": "FARGATE", "Cluster": "baton", "TaskDefinition": definition,
            "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": [subnet], "SecurityGroups": [group]}},
            "Overrides": {"ContainerOverrides": [{"Name": "worker", "Environment": [
                {"Name": "TASK_TOKEN", "Value.$": "$$.Task.Token"}]}]}},
        "End": True}
    sfn = client(endpoint, "stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=json.dumps({"StartAt": "Run", "States": {"Run": state}}),
                                   roleArn=ROLE)["stateMachineArn"]
    return sfn, ecs, arn


def wait_for_task(ecs):
    for _ in range(100):
        arns = ecs.list_tasks(cluster="baton")["taskArns"]
        if arns:
            return ecs.describe_tasks(cluster="baton", tasks=arns)["tasks"][0]
        time.sleep(0.1)
    raise AssertionError("no ECS task was started")


def sqs_callback(endpoint, name, heartbeat=None, catch=None):
    """An execution waiting in an SQS .waitForTaskToken state: (sfn, execution, token).
    `catch`: its catchers, each going to a Pass state that ends the execution."""
    sfn, sqs = client(endpoint, "stepfunctions"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
             "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": True}
    states = {"W": state}
    if heartbeat:
        state["HeartbeatSeconds"] = heartbeat
    if catch:
        state["Catch"] = [{"ErrorEquals": [error], "ResultPath": "$.caught", "Next": "Caught"} for error in catch]
        states["Caught"] = {"Type": "Pass", "End": True}
    arn = sfn.create_state_machine(name=name, roleArn=ROLE,
                                   definition=json.dumps({"StartAt": "W", "States": states}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    message = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"][0]
    return sfn, execution, json.loads(message["Body"])["token"]


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def test_gap_ecs_run_task_states_fail_in_plain_moto(moto):
    sfn, _, arn = callback_machine(moto, "gap-ecs")
    execution = sfn.start_execution(stateMachineArn=arn, name="gap-ecs", input="{}")["executionArn"]
    d = settle(sfn, execution)
    assert d["status"] == "FAILED" and d.get("error") == "States.Runtime", (
        f"moto now runs ecs:runTask states ({d['status']}): delete compat.fix_asl_ecs_parameter_normalisation")


def test_gap_send_task_failure_drops_the_cause_in_plain_moto(moto):
    sfn = client(moto, "stepfunctions")
    sqs = client(moto, "sqs")
    queue = sqs.create_queue(QueueName="gap-cause")["QueueUrl"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
             "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": True}
    arn = sfn.create_state_machine(name="gap-cause", roleArn=ROLE,
                                   definition=json.dumps({"StartAt": "W", "States": {"W": state}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="gap-cause", input="{}")["executionArn"]
    message = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"][0]
    sfn.send_task_failure(taskToken=json.loads(message["Body"])["token"], error="Baton.X", cause="why")
    d = settle(sfn, execution)
    assert d["status"] == "FAILED" and "cause" not in d, (
        "moto now keeps SendTaskFailure's cause: delete compat.fix_send_task_failure_drops_cause")


def test_gap_short_tokens_and_closed_tokens_answered_wrongly_in_plain_moto(moto):
    sfn, execution, token = sqs_callback(moto, "gap-tokens")
    assert len(token) < 100, "moto now issues long tokens: delete compat.fix_task_tokens_are_short_uuids"
    sfn.send_task_success(taskToken=token, output="{}")
    settle(sfn, execution)
    closed = (error_code(lambda: sfn.send_task_success(taskToken=token, output="{}")),
              error_code(lambda: sfn.send_task_failure(taskToken=token, error="Baton.X")))
    assert closed == ("InvalidToken", None), (
        f"moto now answers {closed} for a closed token: delete compat.fix_closed_tokens_answer_invalid_token")


def test_fixed_callbacks_skip_executions_still_starting():
    # An execution being started has no worker yet; a callback for another
    # execution's token must still find its endpoint (it was HTTP 500).
    from types import SimpleNamespace

    from baton_local import compat

    endpoint = object()
    starting = SimpleNamespace(exec_worker=None)
    running = SimpleNamespace(exec_worker=SimpleNamespace(env=SimpleNamespace(
        callback_pool_manager={"tok": endpoint})))
    assert compat.callback_endpoint([starting, running], "tok") == (running, endpoint)
    assert compat.callback_endpoint([starting], "tok") is None


def test_gap_asl_drops_run_task_parameters_in_plain_moto():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_ecs

    assert "CapacityProviderStrategy" not in state_task_service_ecs._SUPPORTED_API_PARAM_BINDINGS["runtask"], (
        "moto now passes CapacityProviderStrategy through: delete compat.fix_asl_ecs_drops_run_task_parameters")


def retried_callback(endpoint, name):
    """An SQS .waitForTaskToken state retried once on Baton.X: the tokens of both attempts."""
    sfn, sqs = client(endpoint, "stepfunctions"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
             "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
             "Retry": [{"ErrorEquals": ["Baton.X"], "IntervalSeconds": 1, "MaxAttempts": 1}], "End": True}
    arn = sfn.create_state_machine(name=name, roleArn=ROLE,
                                   definition=json.dumps({"StartAt": "W", "States": {"W": state}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    first = json.loads(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"][0]["Body"])["token"]
    sfn.send_task_failure(taskToken=first, error="Baton.X", cause="first attempt")
    second = json.loads(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)["Messages"][0]["Body"])["token"]
    return sfn, execution, first, second


def test_gap_retried_callback_states_reuse_their_token_in_plain_moto(moto):
    _, _, first, second = retried_callback(moto, "gap-retry-token")
    assert first == second, "moto now issues a token per attempt: delete compat.fix_retried_callback_states_reuse_their_token"


def test_fixed_ecs_callback_task_runs_and_fails_with_its_cause(host):
    sfn, ecs, arn = callback_machine(host, "fixed-ecs")
    execution = sfn.start_execution(stateMachineArn=arn, name="fixed-ecs", input="{}")["executionArn"]
    task = wait_for_task(ecs)
    env = task["overrides"]["containerOverrides"][0]["environment"]
    token = next(e["value"] for e in env if e["name"] == "TASK_TOKEN")
    sfn.send_task_failure(taskToken=token, error="Baton.OutOfMemory", cause='{"exitCode":137}')
    d = settle(sfn, execution)
    assert (d["status"], d.get("error"), d.get("cause")) == ("FAILED", "Baton.OutOfMemory", '{"exitCode":137}')


def execution_end_events(endpoint, name):
    """Run a Pass state machine named `<name>-Pipeline` under a rule for the stack's
    state machines' status changes (a prefix of their ARN, as template.yaml's rule);
    the events the rule's queue received within a few seconds."""
    sfn, events, sqs = client(endpoint, "stepfunctions"), client(endpoint, "events"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=f"{name}-status")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{name}-status", EventPattern=json.dumps({
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"],
                   "stateMachineArn": [{"prefix": f"arn:aws:states:{REGION}:123456789012:stateMachine:{name}-"}]}}))
    events.put_targets(Rule=f"{name}-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    machine = sfn.create_state_machine(
        name=f"{name}-Pipeline", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    other = sfn.create_state_machine(
        name=f"other-{name}", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    sfn.start_execution(stateMachineArn=other, name="run-other", input="{}")
    execution = sfn.start_execution(stateMachineArn=machine, name="run-1", input='{"input": "s3://b/k"}')["executionArn"]
    return execution, [json.loads(m["Body"]) for m in receive_all(sqs, queue, 4)]


def test_gap_no_execution_status_change_events_in_plain_moto(moto):
    _, got = execution_end_events(moto, "gap-status")
    assert got == [], "moto now emits execution status events: delete compat.fix_sfn_emits_no_execution_status_change_events"


def test_fixed_an_execution_that_ends_puts_its_status_change_event(host):
    execution, got = execution_end_events(host, "fixed-status")
    assert len(got) == 1, got
    event = got[0]
    assert (event["source"], event["detail-type"]) == ("aws.states", "Step Functions Execution Status Change")
    assert event["resources"] == [execution]
    detail = event["detail"]
    assert (detail["executionArn"], detail["name"], detail["status"]) == (execution, "run-1", "SUCCEEDED")
    assert detail["stopDate"] >= detail["startDate"] > 1_700_000_000_000, "epoch milliseconds, as AWS"
    assert json.loads(detail["input"]) == {"input": "s3://b/k"}


def test_fixed_tokens_are_as_long_as_aws_ones_and_closed_ones_time_out(host):
    # AWS: tokens up to 2,048 characters; a closed token answers TaskTimedOut on every
    # callback, and only a token Step Functions never issued answers InvalidToken.
    sfn, execution, token = sqs_callback(host, "fixed-tokens", heartbeat=60)
    assert 2000 <= len(token) <= 2048
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output="{}")
    assert settle(sfn, execution)["status"] == "SUCCEEDED"
    assert error_code(lambda: sfn.send_task_success(taskToken=token, output="{}")) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_failure(taskToken=token, error="Baton.X")) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_heartbeat(taskToken=token)) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_failure(taskToken="AQCEnot-a-token", error="Baton.X")) == "InvalidToken"


def test_fixed_run_task_parameters_reach_ecs(host):
    # Fargate Spot is chosen with CapacityProviderStrategy, which must reach RunTask.
    sfn, ecs, arn = callback_machine(host, "fixed-spot")
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    parameters = definition["States"]["Run"]["Parameters"]
    del parameters["LaunchType"]
    parameters["CapacityProviderStrategy"] = [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    parameters["StartedBy"] = "baton-test"
    spot = sfn.create_state_machine(name="fixed-spot-2", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    sfn.start_execution(stateMachineArn=spot, name="fixed-spot", input="{}")
    for _ in range(100):
        arns = ecs.list_tasks(cluster="baton", startedBy="baton-test")["taskArns"]
        if arns:
            break
        time.sleep(0.1)
    task = ecs.describe_tasks(cluster="baton", tasks=arns)["tasks"][0]
    assert (task["capacityProviderName"], task["startedBy"]) == ("FARGATE_SPOT", "baton-test")


def test_fixed_every_attempt_of_a_retried_callback_state_has_its_own_token(host):
    sfn, execution, first, second = retried_callback(host, "fixed-retry-token")
    assert first != second
    assert error_code(lambda: sfn.send_task_failure(taskToken=first, error="Baton.X")) == "TaskTimedOut"
    sfn.send_task_success(taskToken=second, output="{}")
    assert settle(sfn, execution)["status"] == "SUCCEEDED"


def test_gap_heartbeat_timeouts_never_match_states_heartbeat_timeout_in_plain_moto(moto):
    sfn, execution, _ = sqs_callback(moto, "gap-heartbeat", heartbeat=1, catch=["States.HeartbeatTimeout"])
    d = settle(sfn, execution)
    assert (d["status"], d.get("error")) == ("FAILED", "States.Timeout"), (
        f"moto now matches States.HeartbeatTimeout ({d['status']}): delete "
        "compat.fix_sfn_heartbeat_timeouts_never_match_states_heartbeat_timeout")


def test_fixed_a_heartbeat_timeout_matches_both_timeout_catchers(host):
    # AWS: a States.HeartbeatTimeout catcher catches a missed heartbeat, and so does
    # States.Timeout (which also covers TimeoutSeconds).
    for name, catch in (("fixed-heartbeat", ["States.HeartbeatTimeout", "States.Timeout"]),
                        ("fixed-heartbeat-any", ["States.Timeout"])):
        sfn, execution, _ = sqs_callback(host, name, heartbeat=1, catch=catch)
        d = settle(sfn, execution)
        assert d["status"] == "SUCCEEDED", d
        assert json.loads(d["output"])["caught"]["Error"] == "States.Timeout"
    # A state that only catches something else still fails with States.Timeout.
    sfn, execution, _ = sqs_callback(host, "fixed-heartbeat-other", heartbeat=1, catch=["Baton.X"])
    d = settle(sfn, execution)
    assert (d["status"], d.get("error")) == ("FAILED", "States.Timeout")


def test_gap_stop_execution_leaves_a_waiting_execution_running_in_plain_moto(moto):
    sfn, execution, _ = sqs_callback(moto, "gap-stop", heartbeat=60)
    sfn.stop_execution(executionArn=execution)
    time.sleep(1)
    status = sfn.describe_execution(executionArn=execution)["status"]
    assert status == "RUNNING", (
        f"moto now ends a stopped execution ({status}): delete compat.fix_sfn_stop_execution_waits_for_the_callback")


def test_fixed_stop_execution_aborts_at_once_and_closes_the_token(host):
    # AWS: StopExecution → ABORTED at once; the worker's next heartbeat or callback gets
    # TaskTimedOut; one status change event says ABORTED.
    sqs, events = client(host, "sqs"), client(host, "events")
    queue = sqs.create_queue(QueueName="fixed-stop-status")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="fixed-stop-status", EventPattern=json.dumps({
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [{"prefix": f"arn:aws:states:{REGION}:123456789012:stateMachine:fixed-stop"}]}}))
    events.put_targets(Rule="fixed-stop-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    sfn, execution, token = sqs_callback(host, "fixed-stop", heartbeat=2)
    sfn.send_task_heartbeat(taskToken=token)
    sfn.stop_execution(executionArn=execution)
    d = sfn.describe_execution(executionArn=execution)
    assert d["status"] == "ABORTED" and d["stopDate"] >= d["startDate"], d
    assert error_code(lambda: sfn.send_task_heartbeat(taskToken=token)) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_success(taskToken=token, output="{}")) == "TaskTimedOut"
    got = [json.loads(m["Body"]) for m in receive_all(sqs, queue, 5)]  # past the 2 s heartbeat window
    assert [e["detail"]["status"] for e in got] == ["ABORTED"], got
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    assert error_code(lambda: sfn.stop_execution(executionArn=execution)) is None, "stopping again is harmless"


def test_fixed_a_stopped_executions_worker_stops_its_job_at_its_next_heartbeat(host):
    # The worker's own path (the watchdog's StopTask is the other): after StopExecution
    # its next heartbeat answers TaskTimedOut, and it stops its job and exits (code 3)
    # instead of running on until the end of a 60 s job.
    client(host, "s3").create_bucket(Bucket="worker-stop")
    sfn, execution, token = sqs_callback(host, "fixed-worker-stop", heartbeat=60)
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    worker = subprocess.Popen(
        [str(Path(target) / "debug" / "baton-worker")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, **aws_env(host), TASK_TOKEN=token, BATON_JOB="sleep", BATON_SLEEP_SECONDS="60",
                 BATON_HEARTBEAT_SECONDS="1", BATON_INPUT='{"inline": "tick"}',
                 BATON_OUTPUT="s3://worker-stop/executions/fixed-worker-stop/task1/"))
    try:
        time.sleep(2)
        sfn.stop_execution(executionArn=execution)
        stopped = time.monotonic()
        code = worker.wait(timeout=15)
        took = time.monotonic() - stopped
    finally:
        worker.kill()
    log = worker.stdout.read()
    assert code == 3 and "heartbeat found the token closed" in log, log[-2000:]
    assert took < 5, f"{took:.1f} s after StopExecution"


def nested(endpoint, name):
    """A parent that runs a child state machine through startExecution.sync:2 twice (the
    child succeeds, then fails with Baton.X): the parent's two execution descriptions."""
    sfn = client(endpoint, "stepfunctions")
    child = sfn.create_state_machine(name=f"{name}-child", roleArn=ROLE, definition=json.dumps({
        "StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "F"}], "Default": "P"},
            "P": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.x, $.x)"}, "End": True},
            "F": {"Type": "Fail", "Error": "Baton.X", "Cause": '{"why": "asked to"}'}}}))["stateMachineArn"]
    parent = sfn.create_state_machine(name=f"{name}-parent", roleArn=ROLE, definition=json.dumps({
        "StartAt": "S", "States": {
            "S": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": child, "Input": {"x.$": "$.x", "fail.$": "$.fail",
                                                                    "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}},
                  "ResultSelector": {"output.$": "$.Output"},
                  "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failed", "Next": "Unwrap"}], "End": True},
            "Unwrap": {"Type": "Pass", "Parameters": {"child.$": "States.StringToJson($.failed.Cause)"}, "End": True}}}))["stateMachineArn"]
    ends = []
    for fail in (False, True):
        execution = sfn.start_execution(stateMachineArn=parent, name=f"{name}-{fail}",
                                        input=json.dumps({"x": 21, "fail": fail}))["executionArn"]
        ends.append(settle(sfn, execution, timeout=20))
    return ends


def test_gap_nested_workflows_fail_in_plain_moto(moto):
    ends = nested(moto, "gap-nested")
    assert [(d["status"], d.get("error")) for d in ends] != [("SUCCEEDED", None)] * 2, (
        "moto now runs nested workflows: delete compat.fix_asl_states_parameter_normalisation "
        "and compat.fix_sfn_start_execution_without_a_name, and check whether a stopped parent now stops "
        "its .sync child (compat.fix_sfn_stopped_parents_leave_sync_children_running, which plain moto "
        "cannot show while nested workflows fail there)")
    sfn = client(moto, "stepfunctions")
    machine = ends[0]["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, input='{"x": 1, "fail": false}')
    assert error_code(lambda: sfn.start_execution(stateMachineArn=machine, input='{"x": 2, "fail": false}')) == \
        "ExecutionAlreadyExists", "moto now names unnamed executions: delete compat.fix_sfn_start_execution_without_a_name"


def test_fixed_a_nested_workflow_returns_its_output_and_its_error_in_the_cause(host):
    # AWS (connect-stepfunctions, .sync:2): the parent's task gets the child's output as
    # JSON in Output; a failed child fails it with States.TaskFailed whose cause is the
    # child's DescribeExecution (Error and Cause inside). Unnamed executions get UUIDs.
    succeeded, failed = nested(host, "fixed-nested")
    assert succeeded["status"] == "SUCCEEDED", succeeded
    assert json.loads(succeeded["output"])["output"] == {"doubled": 42}
    assert failed["status"] == "SUCCEEDED", failed
    child = json.loads(failed["output"])["child"]
    assert (child["Status"], child["Error"], json.loads(child["Cause"])) == ("FAILED", "Baton.X", {"why": "asked to"})
    assert len(child["Name"]) == 36, child["Name"]


def stopped_parent(endpoint, name):
    """A parent waiting on a .sync:2 child (a 60 s Wait), stopped: the child's status a
    moment later."""
    sfn = client(endpoint, "stepfunctions")
    child = sfn.create_state_machine(name=f"{name}-child", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}))["stateMachineArn"]
    parent = sfn.create_state_machine(name=f"{name}-parent", roleArn=ROLE, definition=json.dumps({
        "StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                                         "Parameters": {"StateMachineArn": child, "Input": {}}, "End": True}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=parent, name=f"{name}-1", input="{}")["executionArn"]
    for _ in range(100):
        running = sfn.list_executions(stateMachineArn=child)["executions"]
        if running:
            break
        time.sleep(0.1)
    sfn.stop_execution(executionArn=execution)
    time.sleep(1)
    return sfn.describe_execution(executionArn=running[0]["executionArn"])["status"]


def test_fixed_a_stopped_parent_stops_its_sync_child(host):
    # AWS: the Run a Job (.sync) pattern cancels its job when the state's execution
    # stops; for a nested workflow that is StopExecution on the child (its documented
    # IAM policy grants states:StopExecution on the child's executions).
    assert stopped_parent(host, "fixed-stop-child") == "ABORTED"
