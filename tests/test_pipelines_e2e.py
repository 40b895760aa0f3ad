"""Pipelines of any shape on the local stack: Baton's reusable task state machine
(TaskStateMachineArn) called as one state per step (startExecution.sync:2), as in
examples/pipelines/three-step.asl.json."""

import hashlib
import json
import os
import random
import time
from pathlib import Path

import boto3

from baton_local import stack_client as local_stack
from pipeline_roles import pipeline_role

MIB = 1024 * 1024
ROOT = local_stack.ROOT
PYTHON = "local:.venv/bin/python"
WORKER = "local:" + str(Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "debug" / "baton-worker")
JOB = ["exec", "--", "python3", "soak/programs/soak_job.py"]
ROT13 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                        b"NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm")
UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def three_step(stack, extract, transform, load, task=None, role=None):
    """examples/pipelines/three-step.asl.json with these task definitions, as a state
    machine of the local stack (`task`: another state machine in place of the reusable
    task, `role`: another role than the deployed pipeline's)."""
    text = (ROOT / "examples/pipelines/three-step.asl.json").read_text()
    for placeholder, value in (("TaskStateMachineArn", task or stack.task), ("ExtractTaskDefinitionArn", extract),
                               ("TransformTaskDefinitionArn", transform), ("LoadTaskDefinitionArn", load)):
        text = text.replace("${" + placeholder + "}", value)
    assert "${" not in text
    return stack.sfn.create_state_machine(name=f"three-step-{os.urandom(4).hex()}", definition=text,
                                          roleArn=role or stack._definition["roleArn"])["stateMachineArn"]


def transform_step(stack, transform):
    """A step behind `baton-worker exec` that applies rot13 or upper-case to its input."""
    return stack.task_definition(1, image=WORKER, command=JOB + [transform])


def step_execution(task, execution, step, redrives=0):
    """The ARN a pipeline gives a step's execution: <md5 of its own ARN>-<step>-<redrive
    count>, on the task state machine."""
    return task.replace(":stateMachine:", ":execution:") + f":{hashlib.md5(execution.encode()).hexdigest()}-{step}-{redrives}"


def children(stack, execution):
    """The task state machine's executions this execution started, in order."""
    started = []
    for event in stack.history(execution):
        details = event.get("taskSucceededEventDetails") or event.get("taskFailedEventDetails") or {}
        if details.get("resourceType") == "states" and event["type"] == "TaskSucceeded":
            started.append(json.loads(details["output"])["ExecutionArn"])
        if event["type"] == "TaskSubmitted" and event["taskSubmittedEventDetails"].get("resourceType") == "states":
            started.append(json.loads(event["taskSubmittedEventDetails"]["output"])["ExecutionArn"])
    return list(dict.fromkeys(started))


def test_a_three_step_chain_carries_100_mib_through_every_step(stack):
    rng = random.Random(13)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyzABCDEF") for _ in range(rng.randint(1, 9))) for _ in range(500)]
    body = bytearray()
    while len(body) < 100 * MIB:
        body += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    body = bytes(body[:100 * MIB])
    uri = stack.put_text("inbox/three-step-100mib.txt", body)
    machine = three_step(stack, transform_step(stack, "rot13"), transform_step(stack, "upper"),
                         transform_step(stack, "rot13"))
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": uri}))["executionArn"]
    d = stack.wait(execution, timeout=300)
    assert d["status"] == "SUCCEEDED", d
    want = body.translate(ROT13).translate(UPPER).translate(ROT13)
    pointer = json.loads(d["output"])["s3"]
    assert (pointer["size"], pointer["sha256"]) == (len(want), hashlib.sha256(want).hexdigest()), pointer
    got = stack.s3.get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read()
    assert got == want
    assert len(children(stack, execution)) == 3
    # Every step's data in the chain's own folder, one subfolder per step.
    name = execution.rsplit(":", 1)[1]
    assert pointer["key"].startswith(f"executions/{name}/load/"), pointer
    keys = [o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"executions/{name}/")["Contents"]]
    assert {k.split("/")[2] for k in keys} == {"extract", "transform", "load"}, keys


def test_a_failing_step_fails_the_chain_with_its_own_error(stack, text=None):
    uri = stack.put_text("inbox/three-step-small.txt", b"some words\n" * 1000)
    crash = stack.task_definition(1, image="local:/bin/sh", command=["-c", "exit 3"])
    machine = three_step(stack, transform_step(stack, "rot13"), crash, transform_step(stack, "upper"))
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": uri}))["executionArn"]
    d = stack.wait(execution, timeout=120)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.ContainerExited"), d
    assert json.loads(d["cause"])["containers"][0]["exitCode"] == 3
    assert len(children(stack, execution)) == 2, "the step after the failed one never ran"


def test_a_foreign_worker_is_one_step(stack):
    # A program that is not Baton's calls back with ~100 KiB of plain JSON: the task
    # state machine stores it and hands the next step a pointer.
    uri = stack.put_text("inbox/three-step-foreign.txt", b"anything\n")
    foreign = stack.task_definition(1, image=PYTHON, command=["tests/programs/foreign_worker.py"])
    copy = stack.task_definition(1, job="copy")
    machine = three_step(stack, foreign, copy, copy)
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": uri}))["executionArn"]
    d = stack.wait(execution, timeout=180)
    assert d["status"] == "SUCCEEDED", d
    pointer = json.loads(d["output"])["s3"]
    got = json.loads(stack.s3.get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read())
    assert got["worker"] == "foreign" and len(got["rows"]) == 3600


def test_stopping_the_chain_stops_the_running_steps_task(stack):
    uri = stack.put_text("inbox/three-step-stop.txt", b"some words\n")
    sleepy = stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "120"})
    machine = three_step(stack, sleepy, sleepy, sleepy)
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": uri}))["executionArn"]
    deadline = time.monotonic() + 60
    while not children(stack, execution):
        assert time.monotonic() < deadline, "no child execution"
        time.sleep(0.2)
    child = children(stack, execution)[0]
    arn = stack.wait_for_task(child)
    time.sleep(1)
    stack.sfn.stop_execution(executionArn=execution)
    start = time.monotonic()
    while True:
        task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[arn])["tasks"][0]
        if task["lastStatus"] == "STOPPED":
            break
        assert time.monotonic() - start < 10, (task["lastStatus"], stack.sfn.describe_execution(executionArn=child)["status"])
        time.sleep(0.2)
    assert stack.sfn.describe_execution(executionArn=child)["status"] == "ABORTED"


def started_task(stack, execution, timeout=60):
    """The ECS task of a step's execution, once the execution exists and started it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return stack.wait_for_task(execution, timeout=max(1, deadline - time.monotonic()))
        except stack.sfn.exceptions.ExecutionDoesNotExist:
            assert time.monotonic() < deadline, f"{execution} never started"
            time.sleep(0.2)


def any_pipeline_role(stack, list_bucket=None, results_bucket=None):
    """pipeline_roles.pipeline_role in the local stack."""
    iam = boto3.client("iam", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
                       aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])
    return pipeline_role(iam, list_bucket, results_bucket)


def fan_out(stack, item, merge, max_concurrency, tolerated, role=None):
    """examples/pipelines/fan-out.asl.json with these settings, as a state machine
    (`role`: another role than the deployed pipeline's)."""
    text = (ROOT / "examples/pipelines/fan-out.asl.json").read_text()
    for placeholder, value in (("TaskStateMachineArn", stack.task), ("ItemTaskDefinitionArn", item),
                               ("MergeTaskDefinitionArn", merge), ("MaxConcurrency", str(max_concurrency)),
                               ("ToleratedFailurePercentage", str(tolerated))):
        text = text.replace("${" + placeholder + "}", value)
    assert "${" not in text
    return stack.sfn.create_state_machine(name=f"fan-out-{os.urandom(4).hex()}", definition=text,
                                          roleArn=role or stack._definition["roleArn"])["stateMachineArn"]


def fan_inputs(stack, prefix, count):
    """`count` small inputs of different sizes: their URIs and bytes."""
    rng = random.Random(prefix)
    uris, bodies = [], []
    for i in range(count):
        body = b"".join(rng.choice([b"alpha ", b"Beta ", b"gamma\n", b"DELTA "]) for _ in range(rng.randint(10, 40_000)))
        uris.append(stack.put_text(f"inbox/{prefix}/{i:02d}.txt", body))
        bodies.append(body)
    return uris, bodies


def items_failed(stack, execution, timeout=300):
    """The report of a fan-out that ended with Baton.ItemsFailed (the merge step's)."""
    d = stack.wait(execution, timeout=timeout)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.ItemsFailed"), d
    return json.loads(json.loads(d["cause"])["errorMessage"])


def most_at_once(stack, executions):
    """The largest number of these executions that ran at the same moment."""
    spans = [stack.sfn.describe_execution(executionArn=e) for e in executions]
    moments = sorted([(d["startDate"], 1) for d in spans] + [(d["stopDate"], -1) for d in spans])
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    return peak


def test_a_fan_out_over_20_inputs_five_at_once_merged_in_order(stack):
    uris, bodies = fan_inputs(stack, "fan-20", 20)
    merge = stack.task_definition(1, image=WORKER, command=[], job="copy")
    machine = fan_out(stack, transform_step(stack, "rot13"), merge, max_concurrency=5, tolerated=0)
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"inputs": uris}))["executionArn"]
    d = stack.wait(execution, timeout=300)
    assert d["status"] == "SUCCEEDED", d
    want = b"".join(body.translate(ROT13) for body in bodies)
    pointer = json.loads(d["output"])["s3"]
    assert (pointer["size"], pointer["sha256"]) == (len(want), hashlib.sha256(want).hexdigest()), pointer
    items = children(stack, execution)[:-1]
    assert len(items) == 20
    peak = most_at_once(stack, items)
    print(f"fan-out: at most {peak} items at once")
    assert 2 <= peak <= 5, f"{peak} at once: MaxConcurrency 5 bounds it, and items do run side by side"
    # Every item's data, and the merge's, in the fan-out's own folder.
    name = execution.rsplit(":", 1)[1]
    assert pointer["key"].startswith(f"executions/{name}/merge/"), pointer
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=f"executions/{name}/")
    steps = {o["Key"].split("/")[2] for page in pages for o in page.get("Contents", [])}
    assert steps == {f"item-{i}" for i in range(20)} | {"merge"}, sorted(steps)


def test_a_crashing_item_fails_the_whole_or_is_tolerated_as_the_policy_says(stack):
    uris, bodies = fan_inputs(stack, "fan-crash", 10)
    # Item 3's task crashes (its input holds the marker the crashing program looks for).
    crashing = stack.task_definition(1, image="local:/bin/sh", command=["-c", (
        'case "$BATON_INPUT" in *fan-crash/03*) exit 3;; esac; exec "$0" "$@"'), WORKER[len("local:"):]] + JOB + ["upper"])
    merge = stack.task_definition(1, image=WORKER, command=[], job="copy")
    strict = fan_out(stack, crashing, merge, max_concurrency=5, tolerated=0)
    execution = stack.sfn.start_execution(stateMachineArn=strict, input=json.dumps({"inputs": uris}))["executionArn"]
    report = items_failed(stack, execution)
    assert (report["total"], report["failed"]) == (10, 1), report
    assert (report["items"][0]["index"], report["items"][0]["error"]) == (3, "Baton.ContainerExited"), report
    statuses = [stack.sfn.describe_execution(executionArn=e)["status"] for e in children(stack, execution)[:10]]
    assert statuses.count("SUCCEEDED") == 9, "the siblings ran to their end"

    tolerant = fan_out(stack, crashing, merge, max_concurrency=5, tolerated=10)
    execution = stack.sfn.start_execution(stateMachineArn=tolerant, input=json.dumps({"inputs": uris}))["executionArn"]
    d = stack.wait(execution, timeout=300)
    assert d["status"] == "SUCCEEDED", d
    want = b"".join(body.translate(UPPER) for i, body in enumerate(bodies) if i != 3)
    pointer = json.loads(d["output"])["s3"]
    assert (pointer["size"], pointer["sha256"]) == (len(want), hashlib.sha256(want).hexdigest())


def test_a_fan_out_over_every_object_under_a_prefix(stack):
    uris, bodies = fan_inputs(stack, "fan-prefix", 4)
    # Merged by any program behind the exec wrapper: it reads the manifest as one stream.
    merge = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    # A prefix fan-out's role may list the bucket (docs/pipelines.md); the deployed pipeline's may not.
    machine = fan_out(stack, transform_step(stack, "upper"), merge, max_concurrency=2, tolerated=0,
                      role=any_pipeline_role(stack, list_bucket=stack.bucket))
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": "inbox/fan-prefix/"}}))["executionArn"]
    d = stack.wait(execution, timeout=300)
    assert d["status"] == "SUCCEEDED", d
    want = b"".join(body.translate(UPPER) for body in bodies)  # key order is the order written
    pointer = json.loads(d["output"])["s3"]
    assert (pointer["size"], pointer["sha256"]) == (len(want), hashlib.sha256(want).hexdigest())


def test_the_reusable_task_takes_its_own_heartbeat_and_stops_a_frozen_worker(stack):
    # heartbeatSeconds in the task's input (default: the stack's HeartbeatSeconds).
    uri = stack.put_text("inbox/unit-frozen.txt", b"some words\n")
    frozen = stack.task_definition(1, image=WORKER, command=[], job="sleep", stop_timeout=3, environment={
        "BATON_SLEEP_SECONDS": "120", "BATON_HEARTBEAT_SECONDS": "2", "BATON_LOCAL_FAULT": "freeze@reading input"})
    execution = stack.sfn.start_execution(stateMachineArn=stack.task, input=json.dumps(
        {"taskDefinition": frozen, "input": uri, "heartbeatSeconds": 8}))["executionArn"]
    arn = stack.wait_for_task(execution)
    d = stack.wait(execution, timeout=40)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.Unresponsive"), d
    assert json.loads(d["cause"])["message"] == f"no heartbeat for 8 s; task {arn.rsplit('/', 1)[1]} stopped"
    deadline = time.monotonic() + 13
    while stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[arn])["tasks"][0]["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline, "the frozen task still runs"
        time.sleep(0.2)


QUOTA = 262_144  # bytes: Step Functions' largest state input or output
CAUSE_LIMIT = 32_768  # characters: the longest cause, a nested step's description included
LONG_CAUSE = [str(ROOT / "tests/programs/long_cause.py")]


def state_outputs(stack, execution, name):
    """The outputs the execution's history records for the state `name`."""
    pages = stack.sfn.get_paginator("get_execution_history").paginate(executionArn=execution)
    outputs = []
    for page in pages:
        for event in page["events"]:
            details = event.get("stateExitedEventDetails")
            if details and details["name"] == name:
                outputs.append(details["output"])
    return outputs


def test_failed_items_keep_their_error_and_execution_whatever_their_causes(stack):
    # Ten items fail, each with a cause of 32,768 characters. The fan-out used to keep
    # each failed item's whole description (its cause, its input, its metadata):
    # 330 KB for ten, over the 256 KiB a state may hold (States.DataLimitExceeded,
    # uncaught). It keeps each one's error and execution now.
    uris, _ = fan_inputs(stack, "fan-long-causes", 10)
    failing = stack.task_definition(1, image=PYTHON, command=LONG_CAUSE)
    strict = fan_out(stack, failing, failing, max_concurrency=5, tolerated=0)
    execution = stack.sfn.start_execution(stateMachineArn=strict, input=json.dumps({"inputs": uris}))["executionArn"]
    report = items_failed(stack, execution)
    assert (report["total"], report["failed"]) == (10, 10), report
    causes = 0
    for i, item in enumerate(report["items"]):
        child = step_execution(stack.task, execution, f"item-{i}")
        assert item == {"index": i, "error": "Baton.WorkerError", "execution": child}, item
        described = stack.sfn.describe_execution(executionArn=child)
        assert (described["error"], len(described["cause"])) == ("Baton.WorkerError", CAUSE_LIMIT)
        causes += len(described["cause"])
    assert causes > QUOTA, "the old fan-out would have held more than a state may"
    [results] = state_outputs(stack, execution, "Items")
    assert len(results.encode()) < 10 * 400, len(results)
    assert json.loads(results)["results"][3] == {"failed": {"Error": "Baton.WorkerError",
                                                           "Execution": step_execution(stack.task, execution, "item-3")}}

    # Tolerated: the merge runs, and fails with a cause of 32,768 characters of its
    # own. Its execution's description (its input, that cause escaped) is longer than
    # the 32,768 characters States.TaskFailed's cause may take, so AWS cuts it and
    # States.StringToJson could not read it. The fan-out reads the merge's own error
    # and cause from its execution and raises them whole.
    tolerant = fan_out(stack, failing, failing, max_concurrency=5, tolerated=100)
    execution = stack.sfn.start_execution(stateMachineArn=tolerant, input=json.dumps({"inputs": uris}))["executionArn"]
    d = stack.wait(execution, timeout=300)
    merge = stack.sfn.describe_execution(executionArn=step_execution(stack.task, execution, "merge"))
    assert (d["status"], d.get("error"), d.get("cause")) == ("FAILED", "Baton.WorkerError", merge["cause"]), d
    assert len(d["cause"]) == CAUSE_LIMIT and json.loads(d["cause"])["message"] == "long_cause: failed on purpose"
    description = {k: v for k, v in merge.items() if k != "ResponseMetadata"}
    assert len(json.dumps(description, default=str)) > CAUSE_LIMIT


def test_a_stopped_step_fails_the_chain_at_that_step(stack):
    uri = stack.put_text("inbox/three-step-stopped-step.txt", b"some words\n")
    sleepy = stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "120"})
    machine = three_step(stack, sleepy, sleepy, sleepy)
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": uri}))["executionArn"]
    child = step_execution(stack.task, execution, "extract")
    arn = started_task(stack, child)
    # Someone stops the step's own execution, not the chain: it ends ABORTED, with no
    # error of its own; the chain fails at the step, its cause the step's description.
    stack.sfn.stop_execution(executionArn=child)
    d = stack.wait(execution, timeout=60)
    assert (d["status"], d["pipeline"]["error"], d["stepExecution"], d["stepStatus"]) == (
        "FAILED", "States.TaskFailed", child, "ABORTED"), d
    assert children(stack, execution) == [child], "the steps after it never ran"
    deadline = time.monotonic() + 60  # its sleep lasts 120 s
    while stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[arn])["tasks"][0]["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline, "the stopped step's task still runs"
        time.sleep(0.5)


def test_a_stopped_item_is_reported_as_baton_task_stopped(stack):
    uris, _ = fan_inputs(stack, "fan-stopped-item", 3)
    sleepy = stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "10"})
    merge = stack.task_definition(1, image=WORKER, command=[], job="copy")
    machine = fan_out(stack, sleepy, merge, max_concurrency=3, tolerated=0)
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"inputs": uris}))["executionArn"]
    child = step_execution(stack.task, execution, "item-1")
    started_task(stack, child)
    stack.sfn.stop_execution(executionArn=child)
    report = items_failed(stack, execution, timeout=180)
    assert report["items"] == [{"index": 1, "error": "Baton.TaskStopped", "execution": child}], report
    statuses = [stack.sfn.describe_execution(executionArn=step_execution(stack.task, execution, f"item-{i}"))["status"]
                for i in range(3)]
    assert statuses == ["SUCCEEDED", "ABORTED", "SUCCEEDED"], statuses


def test_a_step_without_an_error_of_its_own_fails_the_chain_at_that_step(stack):
    # A step's execution that timed out (its state machine's TimeoutSeconds) or failed
    # with a Step Functions error (States.*): the chain fails at the step with
    # States.TaskFailed, the step's description (its status, its error if any) the
    # cause. Another state machine stands in for the reusable task.
    role = any_pipeline_role(stack)
    cases = {
        (None, "TIMED_OUT"): {"TimeoutSeconds": 2, "StartAt": "Wait",
                              "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}},
        ("States.Runtime", "FAILED"): {"StartAt": "Missing",
                                       "States": {"Missing": {"Type": "Pass", "InputPath": "$.nowhere", "End": True}}},
    }
    for (error, status), definition in cases.items():
        task = stack.sfn.create_state_machine(name=f"not-a-task-{os.urandom(4).hex()}", definition=json.dumps(definition),
                                              roleArn=role)["stateMachineArn"]
        machine = three_step(stack, "unused", "unused", "unused", task=task, role=role)
        execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": "s3://b/k"}))["executionArn"]
        d = stack.wait(execution, timeout=60)
        assert (d["status"], d["pipeline"]["error"], d.get("error"), d["stepStatus"]) == (
            "FAILED", "States.TaskFailed", error, status), d
        assert d["stepExecution"] == step_execution(task, execution, "extract"), d

def test_a_failed_pipeline_is_redriven_from_its_failed_step(stack, tmp_path):
    # RedriveExecution (AWS: a redriven Task state is scheduled and started again; the
    # states that succeeded are not run again): step 2 fails until a flag exists;
    # redriven, it runs again in a new execution (the redrive count in its name) and
    # the pipeline succeeds, step 1 run once. A late event of the failed attempt
    # (EventBridge may deliver out of order; the ARN is the same) while the new
    # attempt's task runs must not stop it.
    flag = tmp_path / "fixed"
    worker = WORKER[len("local:"):]
    flaky = stack.task_definition(2, image="local:/bin/sh", command=[
        "-c", 'test -e "$FLAG" || exit 4; sleep "$PAUSE"; exec "$0" "$@"', worker] + JOB + ["upper"],
        environment={"FLAG": str(flag), "PAUSE": "8"})
    machine = stack.variant(task2=flaky)
    uri = stack.put_text("inbox/redrive.txt", b"redrive me\n" * 100)
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps({"input": uri}))["executionArn"]
    d = stack.wait(execution, timeout=120)
    failed_step = step_execution(stack.task, execution, "task2")
    assert (d["status"], d["pipeline"]["error"], d["error"], d["stepExecution"]) == (
        "FAILED", "States.TaskFailed", "Baton.ContainerExited", failed_step), d
    late = {"executionArn": execution, "stateMachineArn": machine, "name": d["name"], "status": "FAILED",
            "startDate": int(d["startDate"].timestamp() * 1000), "stopDate": int(d["stopDate"].timestamp() * 1000),
            "input": d["input"], "redriveCount": 0}

    flag.touch()
    stack.sfn.redrive_execution(executionArn=execution)
    arn = started_task(stack, step_execution(stack.task, execution, "task2", redrives=1))
    stack.events.put_events(Entries=[{"Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
                                      "Detail": json.dumps(late), "Resources": [execution]}])
    time.sleep(4)
    assert stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[arn])["tasks"][0]["desiredStatus"] == "RUNNING", \
        "the failed attempt's late event stopped the redriven attempt's task"

    d = stack.wait(execution, timeout=120)
    assert (d["status"], d["redriveCount"]) == ("SUCCEEDED", 1), d
    assert children(stack, execution) == [step_execution(stack.task, execution, "task1"), failed_step,
                                          step_execution(stack.task, execution, "task2", redrives=1)]
    assert json.loads(d["output"]) == {"inline": "ME\t100\nREDRIVE\t100\n"}, "task 1's word counts, upper-cased"
