"""What a long-running task needs from its container, on real containers run by the
local Fargate runner (podman): ECS's init process reaping the orphans a user's
program leaves behind (`initProcessEnabled`, podman's `--init`), the transfer budget
following the container's memory limit, and the run's metrics as one CloudWatch
embedded metric format (EMF) line in the task's log.

The program (tests/programs/zombies.c) runs behind `baton-worker exec --` in an image
built FROM the worker image: the worker image has no shell and no interpreter."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from baton_local import image as local_image

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
IMAGE = "localhost/baton-zombies:test"
ORPHANS = 5

pytestmark = pytest.mark.skipif(os.environ.get("BATON_LOCAL_BACKEND", "container") != "container",
                                reason="BATON_LOCAL_BACKEND=process: tasks run as processes")


def podman(*args, check=True):
    done = subprocess.run(["podman", *args], env=dict(os.environ, **local_image.env()), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def zombies_image(stack, tmp_path_factory):
    """The worker image with tests/programs/zombies.c, compiled here (it needs only libc,
    which the image holds)."""
    context = tmp_path_factory.mktemp("zombies-image")
    subprocess.run(["cc", "-O2", "-o", str(context / "zombies"), str(ROOT / "tests" / "programs" / "zombies.c")],
                   check=True)
    (context / "Containerfile").write_text(f"FROM {local_image.IMAGE}\nCOPY zombies /usr/local/bin/zombies\n")
    podman("build", "--pull=never", "-q", "-t", IMAGE, "-f", str(context / "Containerfile"), str(context))
    yield IMAGE
    podman("rmi", "-f", IMAGE, check=False)


@pytest.fixture(scope="module")
def small_text(stack):
    return stack.put_text("inbox/e2e-runtime.txt", b"a few bytes of input\n" * 100)


def with_init(stack, arn: str, enabled: bool) -> str:
    """The task definition `arn` registered again with initProcessEnabled set so."""
    described = stack.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
    base = described["taskDefinition"]
    container = dict(base["containerDefinitions"][0])
    container["linuxParameters"] = {**container.get("linuxParameters", {}), "initProcessEnabled": enabled}
    keep = ["family", "taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory"]
    args = {k: base[k] for k in keep if k in base}
    if described.get("tags"):
        args["tags"] = described["tags"]
    return stack.ecs.register_task_definition(containerDefinitions=[container], **args)["taskDefinition"][
        "taskDefinitionArn"]


def run_zombies(stack, image, text, init: bool) -> tuple:
    """Run the program as task 1 (512 MiB), task 2 copying its output; the output and
    task 1's log lines that are JSON."""
    task1 = stack.task_definition(1, image=image, command=["exec", "--", "/usr/local/bin/zombies"], memory=512)
    task1 = with_init(stack, task1, init)
    execution = stack.start(stack.variant(task1=task1, task2=stack.task_definition(2, job="copy")), text)
    arn = stack.wait_for_task(execution)
    d = stack.wait(execution, 120)
    assert d["status"] == "SUCCEEDED", d
    output = json.loads(d["output"])["inline"]
    if isinstance(output, str):
        output = json.loads(output)
    log = Path(stack.env["BATON_TASK_LOGS"].replace("{task_id}", arn.rsplit("/", 1)[1]))
    lines = []
    for line in log.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return output, lines


def test_the_deployed_task_definitions_enable_ecs_init_process(stack):
    for n in (1, 2):
        described = stack.ecs.describe_task_definition(taskDefinition=stack.deployed_task_definition(n))
        container = described["taskDefinition"]["containerDefinitions"][0]
        assert container.get("linuxParameters", {}).get("initProcessEnabled") is True, container


def test_with_the_init_process_no_orphan_stays_a_zombie(stack, zombies_image, small_text):
    output, lines = run_zombies(stack, zombies_image, small_text, init=True)
    assert output["orphans"] == ORPHANS
    assert output["zombies"] == 0, output
    assert output["pid1"] != "baton-worker", output
    # The transfer budget follows the container's limit: an eighth of 512 MiB.
    budget = next(line for line in lines if line.get("message") == "transfer memory (BATON_TRANSFER_MEMORY)")
    assert (budget["transfer_memory_bytes"], budget["chosen_by"]) == (64 * MIB, "limit/8"), budget
    assert budget["memory_limit_bytes"] == 512 * MIB, budget
    assert budget["memory_limit_source"].startswith("cgroup"), budget
    # The run's metrics: one EMF document, with the stack and the step as dimensions.
    emf = [line for line in lines if "_aws" in line]
    assert len(emf) == 1, emf
    metrics = emf[0]
    directive = metrics["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Baton"
    assert directive["Dimensions"] == [["Stack"], ["Stack", "Step"]]
    assert metrics["Step"] == "task1" and metrics["Stack"], metrics
    assert metrics["BytesRead"] == len(b"a few bytes of input\n" * 100), metrics
    assert metrics["BytesWritten"] == len(json.dumps(output, separators=(",", ":"))), metrics
    assert metrics["PeakMemory"] > 0 and metrics["PeakMemorySource"].startswith("cgroup"), metrics
    assert metrics["Duration"] >= 1.2 and metrics["ExitCode"] == 0, metrics
    assert metrics["Execution"] not in json.dumps(directive["Dimensions"])


def test_without_it_the_worker_as_pid_1_leaves_them_zombies(stack, zombies_image, small_text):
    # What initProcessEnabled prevents: baton-worker as PID 1 waits for its own child
    # only, so every orphan it inherits stays a zombie (a process table entry, a PID of
    # the task's pids limit) for as long as the task runs.
    output, _ = run_zombies(stack, zombies_image, small_text, init=False)
    assert output["pid1"] == "baton-worker", output
    assert output["zombies"] == ORPHANS, output
