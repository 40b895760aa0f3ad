"""The `baton` command against the local stack: every command (run on a local file,
follow, ls, logs, stop, redrive), its exit codes, --json and the ASCII fallback.
The stack comes from conftest's session fixture (started unless it runs)."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest

from baton_local import stack_client as local_stack

ROOT = local_stack.ROOT
BATON = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "debug" / "baton"

# docs/cli.md's table.
SUCCEEDED, FAILED, USAGE, TIMED_OUT, ABORTED, AWS_ERROR, LOCAL_ERROR = 0, 1, 2, 3, 4, 5, 6


@pytest.fixture(scope="module", autouse=True)
def built():
    """The `baton` binary as the source stands (cargo: nothing to do when it is fresh)."""
    subprocess.run(["cargo", "build", "--locked", "-p", "baton-cli", "--bin", "baton"], cwd=ROOT, check=True)


def baton(*args, env=None, timeout=120, check_code=None):
    """Run `baton`; its CompletedProcess (stdout and stderr as text)."""
    done = subprocess.run([str(BATON), *args], env=env if env is not None else dict(os.environ),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if check_code is not None:
        assert done.returncode == check_code, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def document(done):
    """The one JSON document --json prints on stdout."""
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def env(stack):
    """The environment a user has after `. .local/stack.env`, UTF-8 terminal."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATON_"))}
    e.update(stack.env, LANG="C.UTF-8", TERM="xterm")
    e.pop("LC_ALL", None)
    e.pop("LC_CTYPE", None)
    return e


@pytest.fixture(scope="module")
def small_text(stack):
    body = "\n".join(" ".join(["alpha", "beta", f"w{i % 50}"] * 4) for i in range(2000)).encode()
    return stack.put_text("inbox/cli-small.txt", body)


@pytest.fixture(scope="module")
def crashing(stack):
    """A pipeline whose task 1 prints a line and exits 3 before calling back."""
    task1 = stack.task_definition(1, image="local:/bin/sh", command=["-c", "echo cli-marker-line; exit 3"])
    return stack.variant(task1=task1)


def execution_of(machine, name):
    return machine.replace(":stateMachine:", ":execution:") + f":{name}"


def test_version_help_and_usage_errors():
    done = baton("--version", check_code=0)
    assert done.stdout.startswith("baton ") and done.stdout.strip().split()[1][0].isdigit(), done.stdout
    helped = baton("--help", check_code=0).stdout
    assert "Exit codes" in helped and "ABORTED" in helped and "--json" in helped
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATON_"))}
    assert baton("frobnicate", env=env).returncode == USAGE
    assert baton("run", env=env).returncode == USAGE, "no input"
    # No stack and no state machine: a usage error, not an AWS one.
    assert baton("ls", env=env).returncode == USAGE


def test_run_a_local_file_then_ls_logs_by_name_and_by_stack(stack, env, tmp_path):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.txt"
    path.write_text("\n".join("alpha beta gamma alpha" for _ in range(500)))
    done = baton("run", str(path), "--name", name, env=env, check_code=SUCCEEDED)
    # The result alone on stdout, one line of compact JSON; progress on stderr.
    assert len(done.stdout.splitlines()) == 1, done.stdout
    output = json.loads(done.stdout)
    assert output["inline"]["top"][0]["word"] == "alpha", output
    assert "▶ Task1" in done.stderr and "✓ Task1" in done.stderr and "SUCCEEDED in" in done.stderr, done.stderr
    assert f"s3://{stack.bucket}/inbox/{path.name}" in done.stderr
    assert stack.exists(f"inbox/{path.name}"), "uploaded under inbox/<name>"

    listed = document(baton("ls", "--json", env=env, check_code=SUCCEEDED))
    mine = [e for e in listed["executions"] if e["name"] == name]
    assert mine and mine[0]["status"] == "SUCCEEDED" and mine[0]["durationSeconds"] > 0, listed
    assert mine[0]["error"] is None
    table = baton("ls", env=env, check_code=SUCCEEDED).stdout
    assert any(line.startswith(name) and "SUCCEEDED" in line for line in table.splitlines()), table

    # The stack found by name (CloudFormation outputs), without the stack.env's ARN.
    by_stack = {k: v for k, v in env.items() if k not in ("BATON_STATE_MACHINE_ARN", "BATON_BUCKET")}
    listed = document(baton("ls", "--stack", "baton-local", "--json", env=by_stack, check_code=SUCCEEDED))
    assert listed["stateMachineArn"] == stack.pipeline
    assert name in [e["name"] for e in listed["executions"]]
    assert baton("ls", "--stack", "no-such-stack", env=by_stack).returncode == AWS_ERROR

    # Logs of both tasks (each a step: a nested execution), the execution given by name.
    logs = document(baton("logs", name, "--json", env=env, check_code=SUCCEEDED))
    assert logs["executionArn"] == execution_of(stack.pipeline, name)
    assert len(logs["tasks"]) == 2, logs
    assert all(t["lines"] and "error" not in t for t in logs["tasks"]), logs
    assert all(Path(t["source"]).exists() for t in logs["tasks"])
    text = baton("logs", execution_of(stack.pipeline, name), env=env, check_code=SUCCEEDED).stdout
    assert text.count("==> ") == 2, text

    # As on AWS: CloudWatch Logs, each container's stream <prefix>/<container>/<task id>
    # of the task definition's awslogs options (here written by the test: the local
    # runner writes files).
    kw = dict(endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
              aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])
    cfn, cw = boto3.client("cloudformation", **kw), boto3.client("logs", **kw)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="baton-local")["Stacks"][0]["Outputs"]}
    group = outputs["TaskLogGroup"]
    for step, task in zip(("task1", "task2"), stack.task_arns(execution_of(stack.pipeline, name))):
        stream = f"{step}/worker/{task.rsplit('/', 1)[1]}"
        cw.create_log_stream(logGroupName=group, logStreamName=stream)
        cw.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": int(time.time() * 1000), "message": f"{step} line {i}"} for i in range(3)])
    logs = document(baton("logs", name, "--source", "cloudwatch", "--json", env=env, check_code=SUCCEEDED))
    assert [t["lines"] for t in logs["tasks"]] == [[f"{s} line {i}" for i in range(3)] for s in ("task1", "task2")], logs
    assert logs["tasks"][0]["source"][0].startswith(f"{group}/task1/worker/")


def test_a_failing_run_its_exit_code_its_error_in_ls_its_logs_and_its_redrive(stack, env, small_text, crashing):
    name = f"cli-fail-{uuid.uuid4().hex[:8]}"
    done = baton("run", small_text, "--name", name, "--state-machine", crashing, "--json", env=env,
                 check_code=FAILED)
    doc = document(done)
    assert (doc["status"], doc["stepError"]) == ("FAILED", "Baton.ContainerExited"), doc
    assert "✗" in done.stderr
    listed = document(baton("ls", "--state-machine", crashing, "--status", "failed", "--json", env=env,
                            check_code=SUCCEEDED))
    row = next(e for e in listed["executions"] if e["name"] == name)
    assert (row["status"], row["error"]) == ("FAILED", "Baton.ContainerExited"), row
    # The task's own output line, from its log.
    logs = document(baton("logs", doc["executionArn"], "--json", env=env, check_code=SUCCEEDED))
    assert any("cli-marker-line" in line for t in logs["tasks"] for line in t["lines"]), logs
    # Redriven from its failed step, it fails again the same way, and is followed
    # from the redrive on. Needs RedriveExecution on the local stack.
    redriven = baton("redrive", doc["executionArn"], "--json", env=env, timeout=120)
    assert redriven.returncode == FAILED, redriven.stderr
    assert document(redriven)["stepError"] == "Baton.ContainerExited"
    assert "redriven" in redriven.stderr
    # A step's own execution is not redriven on its own: the pipeline is.
    step = stack.step_failure(stack.sfn.describe_execution(executionArn=doc["executionArn"]))["stepExecution"]
    refused = baton("redrive", step, env=env, check_code=LOCAL_ERROR)
    assert f"is a step of {doc['executionArn']}: redrive the pipeline" in refused.stderr, refused.stderr


def test_stop_a_followed_run_exits_aborted_with_ascii_marks(stack, env, small_text):
    task1 = stack.task_definition(1, job="sleep", environment={"BATON_SLEEP_SECONDS": "120"})
    machine = stack.variant(task1=task1)
    name = f"cli-stop-{uuid.uuid4().hex[:8]}"
    ascii_env = dict(env, LANG="C")
    follower = subprocess.Popen([str(BATON), "run", small_text, "--name", name, "--state-machine", machine, "--json"],
                                env=ascii_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        arn = execution_of(machine, name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                stack.wait_for_task(arn, timeout=1)
                break
            except (AssertionError, stack.sfn.exceptions.ExecutionDoesNotExist):
                time.sleep(0.3)
        stopped = document(baton("stop", name, "--state-machine", machine, "--cause", "cli test", "--json", env=env,
                                 check_code=SUCCEEDED))
        assert (stopped["executionArn"], stopped["status"]) == (arn, "ABORTED")
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == ABORTED, err
    assert document(subprocess.CompletedProcess([], 0, out, err))["status"] == "ABORTED"
    assert "> Task1" in err and "▶" not in err and "✓" not in err, err
    # Following an execution that has ended: its whole progress, then its exit code.
    followed = baton("follow", arn, "--ascii", env=env, check_code=ABORTED)
    assert "> Task1" in followed.stderr
    assert baton("stop", "arn:aws:states:us-east-1:123456789012:execution:nope:nope", env=env).returncode == AWS_ERROR
