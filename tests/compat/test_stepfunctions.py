"""compat.stepfunctions and compat.asl: each gap is still there in the pinned moto (when an upgrade
closes it, the test says which fix to delete) and the fix closes it. Step Functions'
API (its length constraints too), the ASL interpreter's ECS and nested-workflow
integrations, their documented parameters and their answers' dates, task tokens,
StopExecution, heartbeat timeouts, the execution status change events, Map and Parallel
errors, inline Map concurrency, the payload quota and the errors States.ALL cannot catch."""

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
    parameters["Group"] = "baton-spot-test"
    spot = sfn.create_state_machine(name="fixed-spot-2", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    sfn.start_execution(stateMachineArn=spot, name="fixed-spot", input="{}")
    tasks = []
    for _ in range(100):
        arns = ecs.list_tasks(cluster="baton")["taskArns"]
        described = ecs.describe_tasks(cluster="baton", tasks=arns)["tasks"] if arns else []
        tasks = [t for t in described if t.get("group") == "baton-spot-test"]
        if tasks:
            break
        time.sleep(0.1)
    assert tasks and tasks[0]["capacityProviderName"] == "FARGATE_SPOT", tasks


def integration_states(endpoint):
    """One state of each optimized integration Baton uses, with every parameter its
    documentation lists (paths included), in a Map and a Parallel too."""
    sfn = client(endpoint, "stepfunctions")
    child = sfn.create_state_machine(name="documented-child", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    ecs_parameters = {
        "Cluster": "baton", "Group": "g", "LaunchType": "FARGATE", "NetworkConfiguration": {"AwsvpcConfiguration": {
            "Subnets": ["s"]}}, "Overrides": {"ContainerOverrides": []}, "PlacementConstraints": [],
        "PlacementStrategy": [], "PlatformVersion": "LATEST", "PropagateTags": "TASK_DEFINITION",
        "TaskDefinition.$": "$.definition", "EnableExecuteCommand": False,
        "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT"}]}
    states = {
        "Ecs": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.waitForTaskToken",
                "Parameters": ecs_parameters, "Next": "EcsSync"},
        "EcsSync": {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync", "Parameters": ecs_parameters,
                    "Next": "Lambda"},
        "Lambda": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                   "Parameters": {"FunctionName": "Echo", "Payload.$": "$", "Qualifier": "$LATEST",
                                  "ClientContext": "e30="}, "Next": "Child"},
        "Child": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": child, "Input": {}, "Name.$": "$$.Execution.Name"},
                  "Next": "Sdk"},
        "Sdk": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ecs:runTask",
                "Parameters": {"Cluster": "baton", "TaskDefinition": "t", "StartedBy": "sdk-passes-through"},
                "Next": "Map"},
        "Map": {"Type": "Map", "ItemProcessor": {"StartAt": "InMap", "States": {
            "InMap": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": "Echo"}, "End": True}}}, "Next": "Parallel"},
        "Parallel": {"Type": "Parallel", "Branches": [{"StartAt": "InBranch", "States": {
            "InBranch": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                         "Parameters": {"StateMachineArn": child}, "End": True}}}], "End": True}}
    return sfn, {"StartAt": "Ecs", "States": states}


UNDOCUMENTED = (  # (state, the parameter its integration does not document)
    ("Ecs", "StartedBy"), ("EcsSync", "Tags"), ("Lambda", "InvocationType"), ("Child", "TraceHeader"),
    ("InMap", "LogType"), ("InBranch", "Count"))


def with_parameter(definition, state, parameter):
    definition = json.loads(json.dumps(definition))
    found = [definition["States"]]
    found += [s["ItemProcessor"]["States"] for s in definition["States"].values() if "ItemProcessor" in s]
    found += [b["States"] for s in definition["States"].values() for b in s.get("Branches", [])]
    next(states for states in found if state in states)[state]["Parameters"][parameter + ".$"] = "$.anything"
    return json.dumps(definition)


def test_gap_definitions_accept_undocumented_integration_parameters_in_plain_moto(moto):
    sfn, definition = integration_states(moto)
    for state, parameter in UNDOCUMENTED[:1]:
        assert sfn.create_state_machine(name="gap-undocumented", roleArn=ROLE,
                                        definition=with_parameter(definition, state, parameter)), (
            "moto now refuses undocumented integration parameters: delete "
            "compat.fix_sfn_definitions_accept_undocumented_integration_parameters")


def test_fixed_undocumented_integration_parameters_are_refused_on_create_and_update(host):
    # AWS answers InvalidDefinition for a definition it refuses; the integrations accept
    # the parameters they document (DOCUMENTED_INTEGRATION_PARAMETERS) and aws-sdk ones
    # their API's.
    sfn, definition = integration_states(host)
    arn = sfn.create_state_machine(name="fixed-documented", roleArn=ROLE, definition=json.dumps(definition))[
        "stateMachineArn"]
    for state, parameter in UNDOCUMENTED:
        bad = with_parameter(definition, state, parameter)
        for call in (lambda: sfn.create_state_machine(name=f"fixed-undocumented-{state}", roleArn=ROLE, definition=bad),
                     lambda: sfn.update_state_machine(stateMachineArn=arn, definition=bad)):
            try:
                call()
                raise AssertionError(f"{parameter} on {state} was accepted")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "InvalidDefinition", e.response
                assert f"'{parameter}'" in e.response["Error"]["Message"], e.response
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == definition


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


def test_gap_nested_workflow_answers_hold_datetimes_in_plain_moto(monkeypatch):
    # Plain moto cannot run a nested workflow at all (test_gap_nested_workflows_fail_in_plain_moto),
    # so its .sync:2 wait is run here, in this process's (unfixed) moto, against a stand-in
    # Step Functions client: it hands boto3's DescribeExecution answer on as the state's
    # result, its dates Python datetimes, which no JSON response of moto's can hold.
    import datetime
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn

    started = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
    described = {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:child:run", "name": "run",
                 "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:child",
                 "status": "SUCCEEDED", "startDate": started, "stopDate": started, "input": "{}", "output": "{}"}
    monkeypatch.setattr(state_task_service_sfn, "boto_client_for", lambda **_: SimpleNamespace(
        describe_execution=lambda executionArn: dict(described)))
    resolver = state_task_service_sfn.StateTaskServiceSfn()._build_sync2_resolver(
        env=SimpleNamespace(stack=[{"ExecutionArn": described["executionArn"]}]),
        resource_runtime_part=SimpleNamespace(region=REGION), normalised_parameters={}, state_credentials=None)
    answer = resolver()
    dates = {key: value for key, value in answer.items() if "date" in key.lower()}
    assert all(isinstance(value, datetime.datetime) for value in dates.values()) and dates, (
        f"moto's .sync:2 answer no longer holds datetimes ({dates}): "
        "delete compat.fix_sfn_nested_workflow_answers_hold_datetimes")


def raw_nested_answers(endpoint, name):
    """A parent whose output is the raw answers of a startExecution and a
    startExecution.sync:2 state (no ResultSelector), under a rule for its status change
    events: (sfn, its description, the child's, the events the rule's queue received)."""
    sfn, events, sqs = client(endpoint, "stepfunctions"), client(endpoint, "events"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=f"{name}-status")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{name}-status", EventPattern=json.dumps({
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [
            {"prefix": f"arn:aws:states:{REGION}:123456789012:stateMachine:{name}-parent"}]}}))
    events.put_targets(Rule=f"{name}-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    child = sfn.create_state_machine(name=f"{name}-child", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"done": True}, "End": True}}}))["stateMachineArn"]
    parent = sfn.create_state_machine(name=f"{name}-parent", roleArn=ROLE, definition=json.dumps({
        "StartAt": "Start", "States": {
            "Start": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                      "Parameters": {"StateMachineArn": child, "Input": {"x": 1}}, "ResultPath": "$.started",
                      "Next": "Sync"},
            "Sync": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                     "Parameters": {"StateMachineArn": child, "Name": f"{name}-run", "Input": {"x": 2}},
                     "ResultPath": "$.synced", "End": True}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=parent, name=f"{name}-1", input="{}")["executionArn"]
    described = settle(sfn, execution, timeout=20)
    child_arn = f"{child.replace(':stateMachine:', ':execution:')}:{name}-run"
    child_described = sfn.describe_execution(executionArn=child_arn)
    return sfn, described, child_described, [json.loads(m["Body"]) for m in receive_all(sqs, queue, 3)]


def test_fixed_a_nested_workflows_answer_has_its_dates_in_epoch_milliseconds(host):
    # AWS (connect-stepfunctions): the integration's answer is JSON, StartDate and
    # StopDate numbers (epoch milliseconds); .sync:2's Input and Output JSON. moto
    # answered DescribeExecution of such a parent with HTTP 500, and its status change
    # event was never put.
    sfn, described, child, got = raw_nested_answers(host, "fixed-dates")
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    synced, started = output["synced"], output["started"]
    millis = {key: synced[key] for key in ("StartDate", "StopDate")}
    assert all(type(value) is int for value in millis.values()), synced
    assert abs(millis["StartDate"] - child["startDate"].timestamp() * 1000) <= 1, (millis, child["startDate"])
    assert abs(millis["StopDate"] - child["stopDate"].timestamp() * 1000) <= 1, (millis, child["stopDate"])
    assert (synced["Status"], synced["Input"], synced["Output"]) == ("SUCCEEDED", {"x": 2}, {"done": True})
    assert type(started["StartDate"]) is int and started["StartDate"] > 1_700_000_000_000, started
    exited = [json.loads(e["stateExitedEventDetails"]["output"]) for e in
              sfn.get_execution_history(executionArn=described["executionArn"])["events"]
              if e["type"] == "TaskStateExited"]
    assert exited[-1]["synced"]["StartDate"] == millis["StartDate"]  # the history's output: the same numbers
    assert [(e["detail"]["status"], json.loads(e["detail"]["output"])["synced"]["StopDate"]) for e in got] == [
        ("SUCCEEDED", millis["StopDate"])], got


def invalid_definition_code(endpoint):
    try:
        client(endpoint, "stepfunctions").create_state_machine(
            name="invalid", roleArn=ROLE, definition=json.dumps({"StartAt": "X", "States": {"X": {"Type": "Nope"}}}))
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None


def test_gap_parser_errors_have_no_code_in_plain_moto(moto):
    assert invalid_definition_code(moto) == ("", 400), (
        "moto now names its interpreter's errors: delete compat.fix_sfn_parser_errors_have_no_code")


def test_fixed_an_invalid_definition_answers_invalid_definition(host):
    assert invalid_definition_code(host) == ("InvalidDefinition", 400)


def machine(endpoint, name, states, start_at=None):
    sfn = client(endpoint, "stepfunctions")
    return sfn, sfn.create_state_machine(name=name, roleArn=ROLE, definition=json.dumps(
        {"StartAt": start_at or next(iter(states)), "States": states}))["stateMachineArn"]


def run(sfn, arn, value, timeout=20):
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(value))["executionArn"]
    return settle(sfn, execution, timeout=timeout)


def timing_out_iteration(endpoint, name):
    """A state whose only work times out: an SQS callback nobody answers within 1 s."""
    queue = client(endpoint, "sqs").create_queue(QueueName=name)["QueueUrl"]
    return {"StartAt": "W", "States": {"W": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "TimeoutSeconds": 1,
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": True}}}


def failing_maps(endpoint, name, catch=None):
    """A Map whose iteration times out, and a Parallel whose branch does: how each ends."""
    inner = timing_out_iteration(endpoint, name)
    extra = {"Catch": [{"ErrorEquals": catch, "ResultPath": "$.caught", "Next": "Caught"}]} if catch else {"End": True}
    ends = []
    for kind, state in (("map", {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": inner}),
                        ("parallel", {"Type": "Parallel", "Branches": [inner]})):
        sfn, arn = machine(endpoint, f"{name}-{kind}", {"S": {**state, **extra}, "Caught": {"Type": "Pass", "End": True}},
                           start_at="S")
        ends.append(run(sfn, arn, {"items": [1]}))
    return ends


def test_gap_map_and_parallel_turn_states_errors_into_runtime_in_plain_moto(moto):
    for d in failing_maps(moto, "gap-map-error"):
        assert (d["status"], d.get("error")) == ("FAILED", "States.Runtime"), (
            f"moto now keeps a Map/Parallel iteration's error ({d.get('error')}): delete "
            "compat.fix_sfn_map_and_parallel_turn_states_errors_into_runtime")
        assert "MUST NOT begin with the prefix 'States.'" in d.get("cause", "")


def test_fixed_a_map_or_parallel_fails_with_its_iterations_error_and_cause(host):
    # AWS: the Map (or Parallel) fails with the iteration's own error and cause, and a
    # catcher of that error catches it.
    for d in failing_maps(host, "fixed-map-error"):
        assert (d["status"], d.get("error")) == ("FAILED", "States.Timeout"), d
    for d in failing_maps(host, "fixed-map-caught", catch=["States.Timeout"]):
        assert d["status"] == "SUCCEEDED", d
        assert json.loads(d["output"])["caught"]["Error"] == "States.Timeout"


def most_iterations_at_once(endpoint, name, max_concurrency, items=60):
    """Run an inline Map of `items` 1-second Wait iterations: how many iterations had
    started before the first one ended (from the execution's history, in event order)."""
    sfn, arn = machine(endpoint, name, {"M": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": max_concurrency, "End": True,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}}}})
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"items": list(range(items))}))["executionArn"]
    assert settle(sfn, execution, timeout=30)["status"] == "SUCCEEDED"
    events = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    started = 0
    for event in events:
        if event["type"] == "MapIterationSucceeded":
            return started
        started += event["type"] == "MapIterationStarted"
    raise AssertionError("no iteration ended")


def test_gap_inline_map_runs_every_iteration_at_once_in_plain_moto(moto):
    assert most_iterations_at_once(moto, "gap-map-concurrency", 0) == 60, (
        "moto now caps an inline Map's concurrency: delete compat.fix_sfn_inline_map_runs_every_iteration_at_once")


def test_fixed_an_inline_map_runs_at_most_40_iterations_at_once(host):
    # Step Functions, Map state (Inline mode): "supports up to 40 concurrent iterations".
    assert most_iterations_at_once(host, "fixed-map-concurrency-0", 0) == 40
    assert most_iterations_at_once(host, "fixed-map-concurrency-100", 100) == 40
    assert most_iterations_at_once(host, "fixed-map-concurrency-5", 5, items=8) == 5


def oversized_requests(endpoint, name):
    """The error code each oversized Step Functions request gets (None: accepted), and
    the execution a callback was refused for."""
    sfn, execution, token = sqs_callback(endpoint, name)
    answers = {
        "cause": error_code(lambda: sfn.send_task_failure(taskToken=token, error="Baton.X", cause="c" * 32769)),
        "error": error_code(lambda: sfn.send_task_failure(taskToken=token, error="E" * 257)),
        "output": error_code(lambda: sfn.send_task_success(taskToken=token, output=json.dumps("é" * 131072))),
    }
    machine_arn = sfn.describe_execution(executionArn=execution)["stateMachineArn"]
    answers["input"] = error_code(lambda: sfn.start_execution(stateMachineArn=machine_arn,
                                                              input=json.dumps({"pad": "x" * 262144})))
    return sfn, execution, token, answers


def test_gap_requests_skip_length_constraints_in_plain_moto(moto):
    _, _, _, answers = oversized_requests(moto, "gap-lengths")
    assert answers["cause"] is None and answers["input"] is None, (
        f"moto now checks the API's lengths ({answers}): delete compat.fix_sfn_requests_skip_length_constraints")


def test_fixed_requests_beyond_the_apis_length_constraints_are_refused(host):
    # SDK model: SendTaskFailure cause <= 32,768 and error <= 256 characters;
    # SendTaskSuccess output and StartExecution input <= 262,144 bytes of UTF-8 ("é" is
    # two bytes, so 131,072 of them, quoted, are over). A refused callback leaves the
    # task open: one within the limits still closes it, its cause whole.
    sfn, execution, token, answers = oversized_requests(host, "fixed-lengths")
    assert answers == dict.fromkeys(("cause", "error", "output", "input"), "ValidationException"), answers
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    sfn.send_task_failure(taskToken=token, error="E" * 256, cause="c" * 32768)
    d = settle(sfn, execution)
    assert (d["status"], d["error"], len(d["cause"])) == ("FAILED", "E" * 256, 32768)


def oversized_task_input(endpoint, name):
    """A Task whose Parameters come to 300,000 bytes (an S3 PutObject through the
    aws-sdk integration): how its execution ends."""
    client(endpoint, "s3").create_bucket(Bucket=name)
    sfn, arn = machine(endpoint, name, {"Put": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject", "ResultPath": None, "End": True,
        "Parameters": {"Bucket": name, "Key": "k", "Body.$": "States.Format('{}{}', $.pad, $.pad)"}}})
    return run(sfn, arn, {"pad": "y" * 150_000})


def test_gap_task_input_skips_the_payload_quota_in_plain_moto(moto):
    assert oversized_task_input(moto, "gap-task-input")["status"] == "SUCCEEDED", (
        "moto now checks a task's input size: delete compat.fix_sfn_task_input_skips_the_payload_quota")


def test_fixed_a_task_input_over_256_kib_fails_with_data_limit_exceeded(host):
    # Step Functions: States.DataLimitExceeded when "After Parameters processing, the
    # input of a state is larger than the payload size quota" (256 KiB).
    d = oversized_task_input(host, "fixed-task-input")
    assert (d["status"], d.get("error")) == ("FAILED", "States.DataLimitExceeded"), d


def test_a_state_output_over_256_kib_fails_with_data_limit_exceeded_in_plain_moto(moto):
    # moto already enforces the quota on a state's output: no fix.
    sfn, arn = machine(moto, "plain-state-output", {"P": {
        "Type": "Pass", "Parameters": {"a.$": "$.pad", "b.$": "$.pad"}, "End": True}})
    d = run(sfn, arn, {"pad": "x" * 140_000})
    assert (d["status"], d.get("error")) == ("FAILED", "States.DataLimitExceeded"), d


def caught_by_states_all(endpoint, name):
    """A Map whose iteration's output outgrows the quota, under a States.ALL catcher and
    retrier: how the execution ends."""
    sfn, arn = machine(endpoint, name, {
        "M": {"Type": "Map", "ItemsPath": "$.items", "ItemSelector": {"pad.$": "$.pad"},
              "ItemProcessor": {"StartAt": "Double", "States": {"Double": {
                  "Type": "Pass", "Parameters": {"a.$": "$.pad", "b.$": "$.pad"}, "End": True}}},
              "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Caught"}], "End": True},
        "Caught": {"Type": "Pass", "Parameters": {"caught.$": "$.caught"}, "End": True}})
    return run(sfn, arn, {"items": [1], "pad": "x" * 140_000})


def test_gap_states_all_catches_terminal_errors_in_plain_moto(moto):
    d = caught_by_states_all(moto, "gap-states-all")
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"])["caught"]["Error"].startswith("States."), (
        f"moto's States.ALL no longer catches {d.get('error')}: delete compat.fix_sfn_states_all_catches_terminal_errors")


def test_fixed_states_all_does_not_catch_data_limit_exceeded(host):
    # Step Functions, "Handling errors": States.ALL "can't catch the
    # States.DataLimitExceeded terminal error or Runtime error types".
    d = caught_by_states_all(host, "fixed-states-all")
    assert (d["status"], d.get("error")) == ("FAILED", "States.DataLimitExceeded"), d


def described_child(endpoint, name):
    """A failed execution, then a state machine that reads its own Error, Cause and
    Status with aws-sdk:sfn:describeExecution: how that one ends."""
    sfn = client(endpoint, "stepfunctions")
    child = sfn.create_state_machine(name=f"{name}-child", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Baton.X", "Cause": "{\"why\": \"asked to\"}"}}}))["stateMachineArn"]
    failed = sfn.start_execution(stateMachineArn=child, name=f"{name}-1", input="{}")["executionArn"]
    reader = sfn.create_state_machine(name=f"{name}-reader", roleArn=ROLE, definition=json.dumps({"StartAt": "D", "States": {
        "D": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sfn:describeExecution",
              "Parameters": {"ExecutionArn": failed},
              "ResultSelector": {"Error.$": "$.Error", "Cause.$": "$.Cause", "Status.$": "$.Status"}, "End": True}}}))["stateMachineArn"]
    for _ in range(100):
        if sfn.describe_execution(executionArn=failed)["status"] != "RUNNING":
            break
        time.sleep(0.1)
    execution = sfn.start_execution(stateMachineArn=reader, input="{}")["executionArn"]
    for _ in range(200):
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.1)
    raise AssertionError("the reader did not end")


def test_gap_aws_sdk_integrations_get_the_state_machines_casing_in_plain_moto(moto):
    d = described_child(moto, "gap-aws-sdk")
    assert (d["status"], d.get("error")) == ("FAILED", "States.Runtime"), (
        "moto now normalises aws-sdk integrations: delete compat.fix_asl_aws_sdk_parameter_normalisation")


def test_fixed_aws_sdk_integrations_take_and_answer_pascal_case(host):
    d = described_child(host, "fixed-aws-sdk")
    assert d["status"] == "SUCCEEDED", d
    assert json.loads(d["output"]) == {"Error": "Baton.X", "Cause": "{\"why\": \"asked to\"}", "Status": "FAILED"}


def redrivable(endpoint, name):
    """An execution that ran a Pass state, then failed at an SQS task (its queue does
    not exist yet): (sfn, sqs, execution, queue name)."""
    sfn, sqs = client(endpoint, "stepfunctions"), client(endpoint, "sqs")
    queue = f"{name}-q"
    url = f"{endpoint}/123456789012/{queue}"
    definition = {"StartAt": "First", "States": {
        "First": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.first", "Next": "Send"},
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                 "Parameters": {"QueueUrl.$": "$.queue", "MessageBody": {
                     "first.$": "$.first", "redrives.$": "$$.Execution.RedriveCount"}}, "End": True}}}
    arn = sfn.create_state_machine(name=name, roleArn=ROLE, definition=json.dumps(definition))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-1", input=json.dumps({"queue": url}))["executionArn"]
    assert settle(sfn, execution, timeout=20)["status"] == "FAILED"
    return sfn, sqs, execution, queue


def test_gap_redrive_execution_is_missing_in_plain_moto(moto):
    sfn, _, execution, _ = redrivable(moto, "gap-redrive")
    assert error_code(lambda: sfn.redrive_execution(executionArn=execution)) is not None, (
        "moto now implements RedriveExecution: delete compat.fix_sfn_has_no_redrive_execution if it resumes "
        "from the failed state without running the finished ones again")


def test_fixed_a_redrive_resumes_at_the_failed_state_and_keeps_the_history(host):
    # AWS (RedriveExecution; "Restarting state machine executions with redrive"): the
    # same ARN, the failed state run again with its input, the finished ones not, the
    # history continued after an ExecutionRedriven event, the count in the context.
    sfn, sqs, execution, queue = redrivable(host, "fixed-redrive")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    assert sfn.describe_execution(executionArn=execution)["redriveCount"] == 0
    assert "redriveDate" in sfn.redrive_execution(executionArn=execution)
    assert error_code(lambda: sfn.redrive_execution(executionArn=execution)) == "ExecutionNotRedrivable", \
        "a RUNNING execution is not redrivable"
    described = settle(sfn, execution, timeout=20)
    assert (described["status"], described["redriveCount"]) == ("SUCCEEDED", 1), described
    events = sfn.get_execution_history(executionArn=execution)["events"]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1)), "one history, ids continued"
    types = [e["type"] for e in events]
    assert types.count("PassStateEntered") == 1, "the finished Pass state is not run again"
    assert types.count("ExecutionRedriven") == 1 and types.index("ExecutionRedriven") > types.index("ExecutionFailed")
    assert events[types.index("ExecutionRedriven")]["executionRedrivenEventDetails"] == {"redriveCount": 1}
    body = json.loads(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["Body"])
    assert body == {"first": {"n": 1}, "redrives": 1}, "the failed state's own input, and $$.Execution.RedriveCount"
    assert error_code(lambda: sfn.redrive_execution(executionArn=execution)) == "ExecutionNotRedrivable", \
        "a SUCCEEDED execution is not redrivable"


def short_history(endpoint, name):
    """A finished execution of two Pass states (6 history events): (sfn, execution)."""
    sfn = client(endpoint, "stepfunctions")
    arn = sfn.create_state_machine(name=name, roleArn=ROLE, definition=json.dumps({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-1", input="{}")["executionArn"]
    assert settle(sfn, execution)["status"] == "SUCCEEDED"
    return sfn, execution


def test_gap_execution_history_is_never_paged_in_plain_moto(moto):
    sfn, execution = short_history(moto, "gap-history")
    page = sfn.get_execution_history(executionArn=execution, maxResults=2)
    assert len(page["events"]) > 2 and "nextToken" not in page, (
        "moto now pages GetExecutionHistory: delete compat.fix_sfn_execution_history_is_never_paged")


def test_fixed_execution_history_comes_in_pages(host):
    # AWS (GetExecutionHistory): maxResults events a page (100 by default, 1000 at
    # most), nextToken for the rest, reverseOrder newest first.
    sfn, execution = short_history(host, "fixed-history")
    whole = sfn.get_execution_history(executionArn=execution)
    assert "nextToken" not in whole and len(whole["events"]) == 6
    pages, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution, maxResults=4, **({"nextToken": token} if token else {}))
        pages.append([e["id"] for e in page["events"]])
        token = page.get("nextToken")
        if not token:
            break
    assert pages == [[1, 2, 3, 4], [5, 6]]
    newest = sfn.get_execution_history(executionArn=execution, maxResults=2, reverseOrder=True)
    assert [e["id"] for e in newest["events"]] == [6, 5] and newest["nextToken"]
    assert error_code(lambda: sfn.get_execution_history(executionArn=execution, nextToken="not-a-token")) == "InvalidToken"
    assert error_code(lambda: sfn.get_execution_history(executionArn=execution, maxResults=1001)) == "ValidationException"


# --- reference paths under an array index -------------------------------------------------

INDEXED_PATHS = {"P": {"Type": "Pass", "Parameters": {
    "first.$": "$.Items[0].index",
    "step.$": "States.Format('items-{}', $.Items[0].index)",
    "nested.$": "$.b.c[0].d",
    "all.$": "$.Items[*].index",
    "filtered.$": "$.Items[?(@.index == 3)].input"}, "End": True}}
INDEXED_INPUT = {"Items": [{"index": 3, "input": "a"}, {"index": 4, "input": "b"}], "b": {"c": [{"d": 5}]}}


def test_gap_indexed_reference_paths_answer_a_list_in_plain_moto(moto):
    sfn, arn = machine(moto, "gap-indexed-paths", INDEXED_PATHS)
    output = json.loads(run(sfn, arn, INDEXED_INPUT)["output"])
    assert (output["first"], output["step"]) == ([3], "items-[3]"), (
        f"moto now answers a single node ({output}): delete compat.fix_sfn_indexed_reference_paths_answer_a_list")


def test_fixed_a_reference_path_under_an_index_answers_its_node(host):
    # AWS ("Using JSONPath paths", Reference paths): a path of `.name` and `[n]` steps
    # identifies a single node; wildcards and filters still answer a list.
    sfn, arn = machine(host, "fixed-indexed-paths", INDEXED_PATHS)
    output = json.loads(run(sfn, arn, INDEXED_INPUT)["output"])
    assert output == {"first": 3, "step": "items-3", "nested": 5, "all": [3, 4], "filtered": ["a"]}, output


def test_waiting_sync_states_poll_their_children_at_a_bounded_rate():
    # Local infrastructure (compat.limit_sync_polling): 1,000
    # states waiting on .sync:2 children asked moto 2,000 DescribeExecution calls a
    # second. Each resolver polls every sync_poll_period(waiting) seconds: moto's half
    # second while few wait, longer when many do; a dropped resolver stops counting.
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    from baton_local.compat.stepfunctions import (
        SYNC_POLL_SECONDS,
        limit_sync_polling,
        sync_poll_period,
    )

    assert sync_poll_period(1) == sync_poll_period(20) == SYNC_POLL_SECONDS
    assert sync_poll_period(1000) == 25
    polls = []
    originals = {name: getattr(StateTaskServiceSfn, name) for name in ("_build_sync_resolver", "_build_sync2_resolver")}
    try:
        StateTaskServiceSfn._build_sync2_resolver = lambda self, n: lambda: polls.append(n)
        limit_sync_polling()

        def rounds(resolvers, count):
            """What moto's loop does: call every resolver each half second."""
            polls.clear()
            for _ in range(count):
                for resolve in resolvers:
                    assert resolve() is None
                time.sleep(SYNC_POLL_SECONDS)
            return len(polls)

        many = [StateTaskServiceSfn._build_sync2_resolver(None, n) for n in range(200)]
        # 200 waiting: each polls every 5 s, so once in 2 s, not 4 times.
        assert rounds(many, 4) == 200
        del many
        few = [StateTaskServiceSfn._build_sync2_resolver(None, n) for n in range(10)]
        # The 200 are gone: 10 waiting poll every half second, as moto does.
        assert rounds(few, 4) == 40
    finally:
        for name, original in originals.items():
            setattr(StateTaskServiceSfn, name, original)
