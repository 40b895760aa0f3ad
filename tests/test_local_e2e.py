"""End to end on the local stack: the pipeline from template.yaml, the Lambdas under
cargo lambda watch, tasks run by the local Fargate runner, the watchdog triggered by
the template's EventBridge rule. Each test asserts the execution's final status, its
error name, and the S3 objects."""

import hashlib
import json
import os
import random
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pytest

from baton_local import stack_client as local_stack

MIB = 1024 * 1024
PYTHON = "local:.venv/bin/python"
# The built worker as a host process, for programs the worker image does not hold.
WORKER = "local:" + str(Path(os.environ.get("CARGO_TARGET_DIR") or local_stack.ROOT / "target") / "debug" / "baton-worker")




@pytest.fixture(scope="module")
def text(stack):
    """A small text input (1 MiB) every test may read."""
    rng = random.Random(7)
    words = [f"w{i}" for i in range(500)] + ["alpha"] * 50
    body = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(20000)).encode()
    return stack.put_text("inbox/e2e-small.txt", body)


def failed_with(stack, execution, error, timeout=120):
    d = stack.wait(execution, timeout)
    assert (d["status"], d.get("error")) == ("FAILED", error), json.dumps(d, default=str)[:2000]
    return d


# ------------------------------------------------------------ happy paths


def test_callback_pipeline_200_mib(stack):
    size = 200 * MIB
    chunk = os.urandom(MIB)
    digest = hashlib.sha256()
    for _ in range(size // MIB):
        digest.update(chunk)

    class Repeat:
        left = size

        def read(self, n=-1):
            n = self.left if n is None or n < 0 else min(n, self.left)
            self.left -= n
            return (chunk * (n // MIB + 1))[:n]

    stack.s3.upload_fileobj(Repeat(), stack.bucket, "inbox/e2e-200m.bin")
    machine = stack.variant(task1=stack.task_definition(1, job="copy"), task2=stack.task_definition(2, job="copy"))
    execution = stack.start(machine, f"s3://{stack.bucket}/inbox/e2e-200m.bin")
    d = stack.wait(execution, 600)
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])["s3"]
    assert (out["size"], out["sha256"]) == (size, digest.hexdigest())
    head = stack.s3.head_object(Bucket=out["bucket"], Key=out["key"])
    assert head["ContentLength"] == size


def test_the_deployed_demo_pipeline(stack, text):
    execution = stack.start(stack.pipeline, text)
    d = stack.wait(execution)
    assert d["status"] == "SUCCEEDED", d
    report = json.loads(d["output"])["inline"]
    assert report["totalWords"] == 20000 * 12
    assert report["top"][0]["word"] == "alpha"


def test_sync_pipeline(stack, text):
    execution = stack.start(stack.sync, text)
    d = stack.wait(execution)
    assert d["status"] == "SUCCEEDED", d
    name = execution.rsplit(":", 1)[1]
    assert stack.exists(f"executions/{name}/task1/output")
    assert stack.exists(f"executions/{name}/task2/output")
    record = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=f"executions/{name}/task2/result.json")["Body"].read())
    assert record["s3"]["key"] == f"executions/{name}/task2/output"


def test_sync_pipeline_failures_are_typed_and_retried_as_in_the_callback_pipeline(stack, text):
    # On AWS a .sync task that exits non-zero fails with States.TaskFailed and its
    # description; the sync pipeline reads it with the watchdog's table.
    exits = stack.variant(task1=stack.task_definition(1, image="local:/bin/sh", command=["-c", "exit 3"]), sync=True)
    unpullable = stack.variant(task1=stack.task_definition(1, image="nginx:1.27"), sync=True)
    crashed, never_started = stack.start(exits, text), stack.start(unpullable, text)
    d = failed_with(stack, crashed, "Baton.ContainerExited")
    assert json.loads(d["cause"])["containers"][0]["exitCode"] == 3
    assert len(stack.task_arns(crashed)) == 1, "a crash is not retried"
    failed_with(stack, never_started, "Baton.TaskFailedToStart", timeout=180)
    assert len(stack.task_arns(never_started)) == 3, "a task that failed to start is retried twice"


def test_tasks_stopped_right_after_run_task_end_stopped(stack):
    # A stopped fan-out stops its last tasks a moment after RunTask started them, before
    # the local runner has listed them; ECS stops a task that has not started yet
    # ("Amazon ECS task lifecycle"), with StopTask's reason. Before the runner reported
    # such tasks, 44 of 1,000 stayed RUNNING for ever (2026-12-08).
    run = json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.task)["definition"])["States"]["RunTask"]
    network = run["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    definition = stack.task_definition(1, image="local:/bin/sleep", command=["600"])
    arns = []
    for _ in range(5):
        arn = stack.ecs.run_task(
            cluster=stack.cluster, taskDefinition=definition,
            capacityProviderStrategy=[{"capacityProvider": p["CapacityProvider"], "weight": p["Weight"]}
                                      for p in run["Parameters"]["CapacityProviderStrategy"]],
            networkConfiguration={"awsvpcConfiguration": {"subnets": network["Subnets"], "securityGroups":
                                                          network["SecurityGroups"], "assignPublicIp": network["AssignPublicIp"]}},
        )["tasks"][0]["taskArn"]
        stack.ecs.stop_task(cluster=stack.cluster, task=arn, reason="stopped at once")
        arns.append(arn)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=arns)["tasks"]
        if all(t["lastStatus"] == "STOPPED" for t in tasks):
            break
        time.sleep(1)
    assert [(t["lastStatus"], t.get("stopCode"), t.get("stoppedReason")) for t in tasks] == [
        ("STOPPED", "UserInitiated", "stopped at once")] * 5, tasks


def test_the_heartbeat_window_covers_start_up_thanks_to_a_beat_at_once(stack, text):
    # The heartbeat clock starts with the state, so Fargate's start-up (here 3 s of
    # provisioning in the local runner) counts against it. The worker beats as soon as
    # it starts, then every 4 s: with HeartbeatSeconds 6 it passes, where a first beat
    # only after one interval (3 + 4 s) would time out. Start-up longer than the
    # window fails, as on AWS: Baton.Unresponsive, the starting task stopped.
    def machine(delay_ms):
        task1 = stack.task_definition(1, job="sleep", environment={
            "BATON_SLEEP_SECONDS": "8", "BATON_HEARTBEAT_SECONDS": "4", "BATON_LOCAL_START_DELAY_MS": str(delay_ms)})
        return stack.variant(task1=task1, task2=stack.task_definition(2, job="copy"), heartbeat_seconds=6)

    covered, too_slow = stack.start(machine(3000), text), stack.start(machine(7000), text)
    d = stack.wait(covered, 60)
    assert d["status"] == "SUCCEEDED", d
    d = stack.wait(too_slow, 60)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.Unresponsive"), d
    assert json.loads(d["cause"])["message"].startswith("no heartbeat for 6 s"), d["cause"]


def put_csv(stack, key, size):
    """A deterministic CSV of about `size` bytes under `key`; its bytes."""
    rows, i, out = [b"id,name,score,note\n"], 0, 0
    while out < size:
        note = '"a, quoted note"' if i % 7 == 0 else "plain"
        row = f"{i},name-{i % 1000},{i * 37 % 101},{note}\n".encode()
        rows.append(row)
        out += len(row)
        i += 1
    body = b"".join(rows)
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
    return body


TASK2_PIPELINE = "export LC_ALL=C; sed 's/.*\"name\":\"\\([^\"]*\\)\".*/\\1/' | sort -S 64M | uniq -c | sort -S 64M -k1,1nr -k2"


def test_any_program_behind_the_wrapper_python_then_a_shell_pipeline_on_24_mib(stack):
    # Task 1: a Python program that knows nothing of Baton (CSV on stdin → JSON lines
    # on stdout); task 2: a shell pipeline. Both run behind `baton-worker exec`, as
    # the container's command; the result equals the same commands run directly.
    import subprocess

    # 24 MiB: three 8 MiB parts each way, so the wrapper streams; the size limits
    # are the 200 MiB copy's (test_callback_pipeline_200_mib) and bench/'s.
    csv = put_csv(stack, "inbox/e2e-24m.csv", 24 * MIB)
    # The worker as a `local:` program (a host process): the worker image holds no
    # Python and no shell; a user's own image would (examples/python-program).
    task1 = stack.task_definition(1, image=WORKER, command=["exec", "--", "python3", "examples/python-program/csv_to_jsonl.py"])
    task2 = stack.task_definition(2, image=WORKER, command=["exec", "--", "sh", "-c", TASK2_PIPELINE])
    execution = stack.start(stack.variant(task1=task1, task2=task2), f"s3://{stack.bucket}/inbox/e2e-24m.csv")
    direct = subprocess.run(["python3", "examples/python-program/csv_to_jsonl.py"], input=csv,
                            capture_output=True, check=True).stdout
    expected = subprocess.run(["sh", "-c", TASK2_PIPELINE], input=direct, capture_output=True, check=True).stdout
    d = stack.wait(execution, 600)
    assert d["status"] == "SUCCEEDED", d
    out = json.loads(d["output"])["s3"]
    assert (out["size"], out["sha256"]) == (len(expected), hashlib.sha256(expected).hexdigest())
    name = execution.rsplit(":", 1)[1]
    head = stack.s3.head_object(Bucket=stack.bucket, Key=f"executions/{name}/task1/output")
    assert head["ContentLength"] == len(direct)


def test_a_rust_job_in_its_own_crate_runs_in_the_pipeline(stack, text):
    # examples/rust-job: a user's crate with its own Job, run as the task's program.
    import subprocess

    subprocess.run(["cargo", "build", "--quiet", "-p", "baton-example-rust-job"], check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or str(local_stack.ROOT / "target")
    task1 = stack.task_definition(1, image=f"local:{target}/debug/line-stats", job="line-stats")
    execution = stack.start(stack.variant(task1=task1, task2=stack.task_definition(2, job="copy")), text)
    d = stack.wait(execution, 120)
    assert d["status"] == "SUCCEEDED", d
    report = json.loads(d["output"])["inline"]
    body = stack.s3.get_object(Bucket=stack.bucket, Key="inbox/e2e-small.txt")["Body"].read()
    assert report["lines"] == body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    assert report["bytes"] == len(body)


def test_foreign_task_1_with_100_kib_of_inline_json(stack, text):
    task1 = stack.task_definition(1, image=PYTHON, command=["tests/programs/foreign_worker.py"])
    machine = stack.variant(task1=task1, task2=stack.task_definition(2, job="copy"))
    execution = stack.start(machine, text)
    d = stack.wait(execution)
    assert d["status"] == "SUCCEEDED", d
    name = execution.rsplit(":", 1)[1]
    staged = stack.s3.get_object(Bucket=stack.bucket, Key=f"executions/{name}/task1/offloaded")["Body"].read()
    assert len(staged) > 100_000 and json.loads(staged)["worker"] == "foreign"
    out = json.loads(d["output"])["s3"]
    assert (out["size"], out["sha256"]) == (len(staged), hashlib.sha256(staged).hexdigest())


# ------------------------------------------------------------ the error table


def test_container_exits_3_before_calling_back(stack, text):
    machine = stack.variant(task1=stack.task_definition(1, image="local:/bin/sh", command=["-c", "exit 3"]))
    execution = stack.start(machine, text)
    d = failed_with(stack, execution, "Baton.ContainerExited")
    cause = json.loads(d["cause"])
    assert cause["containers"][0]["exitCode"] == 3
    task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[stack.task_arns(execution)[0]])["tasks"][0]
    death = task["stoppedAt"].timestamp()
    print(f"\ncontainer death → execution FAILED: {d['stopDate'].timestamp() - death:.2f} s")
    assert d["stopDate"].timestamp() - death < 30


def test_container_exits_0_without_calling_back(stack, text):
    machine = stack.variant(task1=stack.task_definition(1, image="local:/bin/true", command=[]))
    failed_with(stack, stack.start(machine, text), "Baton.NoCallback")


def test_container_over_its_memory(stack, text):
    task1 = stack.task_definition(1, image=PYTHON, command=["tests/programs/hog.py"], memory=128)
    d = failed_with(stack, stack.start(stack.variant(task1=task1), text), "Baton.OutOfMemory")
    container = json.loads(d["cause"])["containers"][0]
    assert container["exitCode"] == 137 and container["reason"].startswith("OutOfMemoryError")


def test_unmappable_image_fails_to_start_and_is_retried(stack, text):
    machine = stack.variant(task1=stack.task_definition(1, image="nginx:1.27"))
    execution = stack.start(machine, text)
    failed_with(stack, execution, "Baton.TaskFailedToStart", timeout=180)
    assert len(stack.task_arns(execution)) == 3, "the template retries TaskFailedToStart twice"


def test_an_operators_stop_task_ends_the_execution_without_a_retry(stack, text):
    # The worker leaves the token to the watchdog, which reads the stop code: a user's
    # StopTask is Baton.TaskStopped with UserInitiated, not retried (a Spot reclaim is).
    task1 = stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "120"})
    execution = stack.start(stack.variant(task1=task1), text)
    arn = stack.wait_for_task(execution)
    time.sleep(1)
    stack.ecs.stop_task(cluster=stack.cluster, task=arn, reason="e2e test")
    d = failed_with(stack, execution, "Baton.TaskStopped", timeout=60)
    cause = json.loads(d["cause"])
    assert cause["stopCode"] == "UserInitiated" and cause["containers"][0]["exitCode"] == 143
    assert stack.task_arns(execution) == [arn], "an operator's stop is not retried"


def test_stop_task_on_a_program_ignoring_sigterm(stack, text):
    task1 = stack.task_definition(1, image="local:/bin/sh", command=["-c", "trap '' TERM; sleep 120 & wait; sleep 120"],
                                  stop_timeout=2)
    execution = stack.start(stack.variant(task1=task1), text)
    arn = stack.wait_for_task(execution)
    time.sleep(1)
    stack.ecs.stop_task(cluster=stack.cluster, task=arn, reason="e2e test")
    d = failed_with(stack, execution, "Baton.TaskStopped")
    assert json.loads(d["cause"])["stopCode"] == "UserInitiated"


def test_stop_task_on_a_wrapped_program_that_ignores_sigterm(stack, text):
    # exec forwards SIGTERM to the child's group, kills it after the grace period, and
    # exits before ECS's stop timeout; the watchdog reports the operator's stop.
    task1 = stack.task_definition(1, image=WORKER, command=["exec", "--", "sh", "-c", "trap '' TERM; cat > /dev/null; sleep 120"],
                                  environment={"BATON_STOP_GRACE_SECONDS": "2"}, stop_timeout=10)
    execution = stack.start(stack.variant(task1=task1), text)
    arn = stack.wait_for_task(execution)
    time.sleep(2)
    stopped = time.monotonic()
    stack.ecs.stop_task(cluster=stack.cluster, task=arn, reason="e2e test")
    d = failed_with(stack, execution, "Baton.TaskStopped")
    took = time.monotonic() - stopped
    cause = json.loads(d["cause"])
    assert cause["stopCode"] == "UserInitiated" and cause["containers"][0]["exitCode"] == 143, cause
    assert took < 8, f"the wrapper should end within its 2 s grace, not ECS's 10 s stop timeout: {took:.1f} s"


def test_the_template_roles_get_403_for_a_missing_key_as_on_aws(stack):
    # S3 answers 403 for a missing key to a caller without s3:ListBucket, and no role
    # of the template may list the bucket (row 6 of docs/aws-conformance.md): the
    # readers get 403 for a missing input, as on AWS, and report Baton.InputIntegrity.
    import boto3

    iam = boto3.client("iam", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
                       aws_access_key_id="test", aws_secret_access_key="test")
    sts = boto3.client("sts", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
                       aws_access_key_id="test", aws_secret_access_key="test")
    roles = {r["RoleName"]: r["Arn"] for r in iam.list_roles()["Roles"]}

    def status(fragment):
        arn = next(a for name, a in roles.items() if fragment in name)
        c = sts.assume_role(RoleArn=arn, RoleSessionName="e2e")["Credentials"]
        s3 = boto3.client("s3", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
                          aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                          aws_session_token=c["SessionToken"])
        try:
            s3.head_object(Bucket=stack.bucket, Key="inbox/no-such-input.txt")
        except s3.exceptions.ClientError as e:
            return e.response["ResponseMetadata"]["HTTPStatusCode"]
        return 200

    assert status("TaskRole") == 403
    assert status("PrepareInputFunctionRole") == 403
    assert status("OffloadOutputFunctionRole") == 403


def test_corrupted_intermediate_object(stack, text):
    task1 = stack.task_definition(1, image=PYTHON, command=["tests/programs/foreign_worker.py"],
                                  environment={"MODE": "corrupt"})
    execution = stack.start(stack.variant(task1=task1), text)
    failed_with(stack, execution, "Baton.InputIntegrity")
    name = execution.rsplit(":", 1)[1]
    assert not stack.exists(f"executions/{name}/task2/output")


def test_worker_job_error(stack, text):
    machine = stack.variant(task1=stack.task_definition(1, job="copy"), task2=stack.task_definition(2, job="top-words"))
    execution = stack.start(machine, text)
    failed_with(stack, execution, "Baton.WorkerError")
    name = execution.rsplit(":", 1)[1]
    assert not stack.exists(f"executions/{name}/task2/output")


# ------------------------------------------------------------ delivery


def stopped_event(stack, task_arn):
    task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[task_arn])["tasks"][0]
    c = task["containers"][0]
    detail = {
        "taskArn": task_arn, "clusterArn": task["clusterArn"], "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
        "stopCode": task.get("stopCode", "EssentialContainerExited"), "stoppedReason": "replayed",
        "containers": [{"name": c["name"], "exitCode": c.get("exitCode", 1)}],
        "overrides": {"containerOverrides": [{"name": o["name"], "environment": o.get("environment", [])}
                                             for o in task["overrides"]["containerOverrides"]]},
    }
    return {"Source": "aws.ecs", "DetailType": "ECS Task State Change", "Detail": json.dumps(detail), "Resources": [task_arn]}


def test_duplicate_and_late_events_change_nothing(stack, text):
    machine = stack.variant(task1=stack.task_definition(1, image="local:/bin/sh", command=["-c", "exit 3"]))
    failed = stack.start(machine, text)
    failed_with(stack, failed, "Baton.ContainerExited")
    done = stack.start(stack.pipeline, text)
    assert stack.wait(done)["status"] == "SUCCEEDED"
    replays = [stopped_event(stack, stack.task_arns(failed)[0]), stopped_event(stack, stack.task_arns(done)[0])]
    for _ in range(2):
        stack.events.put_events(Entries=list(reversed(replays)))
    time.sleep(3)
    again = stack.step_failure(stack.sfn.describe_execution(executionArn=failed))
    assert (again["status"], again["error"]) == ("FAILED", "Baton.ContainerExited")
    assert stack.sfn.describe_execution(executionArn=done)["status"] == "SUCCEEDED"


# ------------------------------------------------------ nothing left running


def running_tasks(stack, execution):
    """The tasks still meant to run whose BATON_OUTPUT lies in the execution's folder
    (its steps, which run the reusable task, keep their data there too): found as the
    watchdog finds them, ListTasks by desired status and DescribeTasks' overrides."""
    name = execution.rsplit(":", 1)[1]
    return stack.running_tasks_under(f"s3://{stack.bucket}/executions/{name}/")


def wait_stopped(stack, arns, within):
    """Seconds until every task in `arns` is STOPPED (its processes gone: the runner
    reports STOPPED once they exited); fails after `within`."""
    start = time.monotonic()
    while True:
        tasks = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=arns)["tasks"]
        if all(t["lastStatus"] == "STOPPED" for t in tasks):
            return time.monotonic() - start, tasks
        assert time.monotonic() - start < within, [(t["taskArn"], t["lastStatus"]) for t in tasks]
        time.sleep(0.2)


def test_a_frozen_worker_fails_unresponsive_and_its_task_is_stopped(stack, text):
    # SIGSTOP at its first log line: alive, silent, no exit — a deadlocked container.
    heartbeat, stop_timeout = 8, 3
    # The worker as a process (the runner's faults act on processes), not in podman.
    task1 = stack.task_definition(1, image=WORKER, command=[], job="sleep", stop_timeout=stop_timeout, environment={
        "BATON_SLEEP_SECONDS": "120", "BATON_HEARTBEAT_SECONDS": "2", "BATON_LOCAL_FAULT": "freeze@reading input"})
    execution = stack.start(stack.variant(task1=task1, heartbeat_seconds=heartbeat), text)
    arn = stack.wait_for_task(execution)
    assert running_tasks(stack, execution) == [arn], "its BATON_OUTPUT lies in the execution's folder"
    started = time.monotonic()
    d = failed_with(stack, execution, "Baton.Unresponsive", timeout=heartbeat + 30)
    failed_after = time.monotonic() - started
    assert failed_after < heartbeat + 10, f"typed failure {failed_after:.1f} s after the start, heartbeat {heartbeat} s"
    cause = json.loads(d["cause"])
    assert cause["message"] == f"no heartbeat for {heartbeat} s; task {arn.rsplit('/', 1)[1]} stopped", cause
    assert cause["tasksStopped"] == [arn] and cause["state"] == "task1"
    took, tasks = wait_stopped(stack, [arn], within=stop_timeout + 10)
    assert tasks[0]["stopCode"] == "UserInitiated" and tasks[0]["containers"][0]["exitCode"] == 137, tasks[0]
    assert running_tasks(stack, execution) == []


def test_stop_execution_mid_task_stops_the_task(stack, text):
    task1 = stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "120"})
    execution = stack.start(stack.variant(task1=task1), text)
    arn = stack.wait_for_task(execution)
    time.sleep(2)
    stack.sfn.stop_execution(executionArn=execution, error="Operator", cause="e2e test")
    assert stack.sfn.describe_execution(executionArn=execution)["status"] == "ABORTED", "at once, as on AWS"
    took, tasks = wait_stopped(stack, [arn], within=10)
    name = execution.rsplit(":", 1)[1]
    # Its step ran as an execution of the reusable task, stopped with the pipeline's: the
    # watchdog stops the task on whichever status change reaches it first, the step's
    # (its input names the pipeline's folder and the step) or the pipeline's (its folder).
    assert tasks[0]["stoppedReason"] in (f"Baton: step task1 of execution {name} ended (ABORTED)",
                                         f"Baton: execution {name} ended (ABORTED)"), tasks[0]
    assert stack.sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_retried_attempts_leave_no_task_running(stack, text):
    # Each attempt reports Baton.Interrupted (retried twice) and lingers: three tasks
    # running when the execution fails; its end stops them all.
    task1 = stack.task_definition(1, image=PYTHON, command=[str(local_stack.ROOT / "tests/programs/fail_and_linger.py")],
                                  stop_timeout=2)
    execution = stack.start(stack.variant(task1=task1), text)
    failed_with(stack, execution, "Baton.Interrupted", timeout=180)
    arns = stack.task_arns(execution)
    assert len(arns) == 3, arns
    wait_stopped(stack, arns, within=2 + 10)
    assert running_tasks(stack, execution) == []


def test_late_and_duplicated_status_events_change_nothing(stack, text):
    ended = stack.start(stack.variant(task1=stack.task_definition(1, image="local:/bin/sh", command=["-c", "exit 3"])), text)
    failed_with(stack, ended, "Baton.ContainerExited")
    sleepy = stack.variant(task1=stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "6"}),
                           task2=stack.task_definition(2, job="sleep", environment={"BATON_SLEEP_SECONDS": "0"}))
    running = stack.start(sleepy, text)
    arn = stack.wait_for_task(running)
    d = stack.sfn.describe_execution(executionArn=ended)
    detail = {"executionArn": ended, "stateMachineArn": d["stateMachineArn"], "name": d["name"], "status": "FAILED",
              "startDate": int(d["startDate"].timestamp() * 1000), "stopDate": int(d["stopDate"].timestamp() * 1000)}
    # The ended execution's event twice, and a stale RUNNING event of the running one.
    stale = dict(detail, executionArn=running, name=running.rsplit(":", 1)[1], status="RUNNING", stopDate=None)
    entries = [{"Source": "aws.states", "DetailType": "Step Functions Execution Status Change", "Detail": json.dumps(e),
                "Resources": [e["executionArn"]]} for e in (detail, detail, stale)]
    stack.events.put_events(Entries=entries)
    time.sleep(3)
    assert stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[arn])["tasks"][0]["desiredStatus"] == "RUNNING"
    assert stack.wait(running)["status"] == "SUCCEEDED"
    again = stack.step_failure(stack.sfn.describe_execution(executionArn=ended))
    assert (again["status"], again["error"]) == ("FAILED", "Baton.ContainerExited")


def test_a_failing_map_item_stops_its_siblings_tasks(stack, text):
    # A user's Map over the reusable task's own ECS state: item 0 crashes, the Map and
    # the execution fail, and item 1's task (still running, nothing will call it back)
    # is stopped by the watchdog when the execution ends. Step Functions would leave it.
    run = json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.task)["definition"])["States"]["RunTask"]
    params = run["Parameters"]
    params["TaskDefinition.$"] = "$.taskDefinition"
    override = params["Overrides"]["ContainerOverrides"][0]
    del override["Name.$"]
    override["Name"] = "worker"
    for variable in params["Overrides"]["ContainerOverrides"][0]["Environment"]:
        if variable["Name"] in ("BATON_INPUT", "BATON_OUTPUT"):
            variable["Value.$"] = "$." + {"BATON_INPUT": "batonInput", "BATON_OUTPUT": "batonOutput"}[variable["Name"]]
    for key in ("Retry", "Catch", "Next", "HeartbeatSecondsPath", "TimeoutSecondsPath"):
        run.pop(key, None)
    run["End"] = True
    definition = {"StartAt": "Items", "States": {"Items": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
        "Iterator": {"StartAt": "Run", "States": {"Run": run}}, "End": True}}}
    # The reusable task's role: it may run the stack's task definitions (the
    # pipeline's may only start the reusable task).
    role = stack.sfn.describe_state_machine(stateMachineArn=stack.task)["roleArn"]
    machine = stack.sfn.create_state_machine(name=f"map-{os.urandom(4).hex()}", definition=json.dumps(definition),
                                             roleArn=role)["stateMachineArn"]
    stack.watch_executions_of(machine)
    name = f"e2e-map-{os.urandom(5).hex()}"
    crash = stack.task_definition(1, image="local:/bin/sh", command=["-c", "sleep 4; exit 3"])
    sleepy = stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "120"})
    items = [{"taskDefinition": arn, "batonInput": json.dumps({"inline": "x"}),
              "batonOutput": f"s3://{stack.bucket}/executions/{name}/item-{i}/"} for i, arn in enumerate((crash, sleepy))]
    execution = stack.sfn.start_execution(stateMachineArn=machine, name=name,
                                          input=json.dumps({"items": items}))["executionArn"]
    stack.wait_for_task(execution, index=1)
    sibling = next(t["taskArn"] for t in stack.ecs.describe_tasks(cluster=stack.cluster, tasks=stack.task_arns(execution))["tasks"]
                   if any(e["value"].endswith("/item-1/") for e in t["overrides"]["containerOverrides"][0]["environment"]))
    failed_with(stack, execution, "Baton.ContainerExited", timeout=60)
    took, tasks = wait_stopped(stack, [sibling], within=10)
    task = tasks[0]
    assert task["stoppedReason"] == f"Baton: execution {name} ended (FAILED)", task
    assert running_tasks(stack, execution) == []


def test_twenty_executions_at_once(stack, text):
    executions = [stack.start(stack.pipeline, text) for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda e: stack.wait(e, 300)["status"], executions))
    assert results == ["SUCCEEDED"] * 20


def test_a_task_killed_mid_upload_leaves_no_upload_open(stack):
    # The job has written 10 MiB (one 8 MiB part uploaded, the next under way) when
    # the runner kills it: the execution fails with Baton.ContainerExited, and when it
    # ends the watchdog aborts the multipart upload the task left open under its
    # folder (the lifecycle rule is only the backstop, days later).
    import io

    stack.s3.upload_fileobj(io.BytesIO(os.urandom(12 * MIB)), stack.bucket, "inbox/e2e-12m.bin")
    task1 = stack.task_definition(1, image=WORKER, command=["exec", "--", "python3", "soak/programs/soak_job.py",
                                                             "rot13", "--pause-at-mark", "5"],
                                  environment={"BATON_LOCAL_FAULT": "kill@soak: mark"})
    execution = stack.start(stack.variant(task1=task1), f"s3://{stack.bucket}/inbox/e2e-12m.bin")
    failed_with(stack, execution, "Baton.ContainerExited")
    prefix = f"executions/{execution.rsplit(':', 1)[1]}/"
    deadline = time.monotonic() + 30
    while True:
        uploads = [u for u in stack.s3.list_multipart_uploads(Bucket=stack.bucket, Prefix=prefix).get("Uploads", [])]
        if not uploads or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not uploads, uploads
