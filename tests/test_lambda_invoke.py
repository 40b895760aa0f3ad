"""Every file in events/ through `cargo lambda invoke` against `cargo lambda watch`."""

import json
import os
import subprocess

import pytest

from baton_local.testing import ROOT, VENV_BIN, client

EVENTS = sorted(p.name for p in (ROOT / "events").glob("*.json"))

# What each ECS sample event makes the watchdog do. The tokens in the files were never
# issued by this Step Functions: it answers InvalidToken (AWS and moto alike), which the
# watchdog logs as an error and reports as "rejected", not as a task that had called
# back. Failing live executions is covered by functions/task-watchdog/tests/real_execution.rs.
WATCHDOG_ACTIONS = {
    "ecs-spot-warning-running.json": "ignored",
    "ecs-no-token.json": "ignored",
    # An execution ended: its multipart uploads left open are aborted (none here).
    "sfn-execution-failed.json": "cleanedUp",
}


def function_for(event_file: str) -> str:
    if event_file.startswith(("ecs-", "sync-", "sfn-")):
        return "task-watchdog"
    if event_file.startswith("prepare-input-"):
        return "prepare-input"
    if event_file.startswith("offload-output-"):
        return "offload-output"
    raise AssertionError(f"events/{event_file}: no function takes this event")


def invoke(port: int, function: str, event_file: str) -> dict:
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    done = subprocess.run(
        ["cargo", "lambda", "invoke", function, "-A", "127.0.0.1", "-P", str(port),
         "--data-file", str(ROOT / "events" / event_file), "--output-format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"{function} {event_file}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def bucket(moto):
    s3 = client(moto, "s3")
    s3.create_bucket(Bucket="baton-data")
    s3.put_object(Bucket="baton-data", Key="inbox/books.txt", Body=b"It was the best of times.\n" * 1000)
    return s3


def test_there_are_enough_sample_events():
    assert len(EVENTS) >= 10


@pytest.mark.parametrize("event_file", EVENTS)
def test_invoke(event_file, lambda_watch, bucket):
    function = function_for(event_file)
    out = invoke(lambda_watch, function, event_file)
    if event_file.startswith("sync-"):
        # the .sync pipeline's States.TaskFailed cause, read with the watchdog's table
        assert (out["error"], out["retryable"]) == ("Baton.ContainerExited", False), out
        assert json.loads(out["cause"])["containers"][0]["exitCode"] == 1
    elif event_file == "sfn-task-timed-out.json":
        # a callback state's heartbeat timed out: the typed error (its task stopped, if
        # the watchdog knows the cluster; not here) for the state machine's Fail state
        assert out["Error"] == "Baton.Unresponsive", out
        assert json.loads(out["Cause"])["message"].startswith("no heartbeat for 300 s"), out
    elif function == "task-watchdog":
        assert out["action"] == WATCHDOG_ACTIONS.get(event_file, "rejected"), out
    else:
        payload = out["payload"]
        assert set(payload) <= {"inline", "s3"} and len(payload) == 1, out
        assert json.loads(out["batonInput"]) == payload
        assert out["batonOutput"].startswith("s3://baton-data/executions/")
        assert len(out["batonInput"]) < 8192
