"""The worker image, built here from worker-image/Dockerfile (`make image`), run as
real containers by the local Fargate runner: what only a container shows — ECS's
init process as PID 1 (the template's initProcessEnabled) with the worker as its
child, a read-only root filesystem, the non-root user, the task's memory limit
enforced by the kernel, StopTask as SIGTERM then SIGKILL after stopTimeout.

The rest of the end-to-end suite (tests/test_local_e2e.py) runs in the same mode:
every task whose image is not `local:` is a container."""

import json
import os
import subprocess
import time

import pytest

from baton_local import image as local_image

MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(os.environ.get("BATON_LOCAL_BACKEND", "container") != "container",
                                reason="BATON_LOCAL_BACKEND=process: tasks run as processes")




@pytest.fixture(scope="module")
def text(stack):
    rows = "\n".join(" ".join(f"w{(i * 7 + j) % 500}" for j in range(12)) for i in range(20000))
    return stack.put_text("inbox/e2e-containers.txt", rows.encode())


def podman(*args, check=True):
    done = subprocess.run(["podman", *args], env=dict(os.environ, **local_image.env()), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.stderr}")
    return done


def container_of(task_arn: str) -> str:
    return "baton-task-" + task_arn.rsplit("/", 1)[1]


def wait_running(name: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = podman("inspect", name, check=False)
        if found.returncode == 0:
            state = json.loads(found.stdout)[0]
            if state["State"]["Running"]:
                return state
        time.sleep(0.2)
    raise AssertionError(f"container {name} never ran")


def test_the_image_is_built_non_root_with_the_worker_as_entrypoint(stack):
    image = json.loads(podman("image", "inspect", local_image.IMAGE).stdout)[0]
    assert image["Config"]["User"] == "65532:65532"
    assert image["Config"]["Entrypoint"] == ["/usr/local/bin/baton-worker"]
    # The CA bundle is inside: TLS to AWS works from the image alone.
    podman("create", "--name", "baton-image-check", local_image.IMAGE)
    try:
        copied = podman("cp", "baton-image-check:/etc/ssl/certs/ca-certificates.crt", "-", check=False)
    finally:
        podman("rm", "-f", "baton-image-check", check=False)
    assert copied.returncode == 0 and "ca-certificates.crt" in copied.stdout[:1000], copied.stderr
    # Start-up: a worker with no configuration exits 2 at once.
    started = time.monotonic()
    ran = podman("run", "--rm", "--network=none", "--read-only", "-e", "AWS_REGION=us-east-1",
                 local_image.IMAGE, check=False)
    took = time.monotonic() - started
    assert ran.returncode == 2, ran.stdout + ran.stderr
    print(f"image {image['Size'] / 1e6:.1f} MB; a container starts and exits in {took:.2f} s")


def test_a_task_runs_under_an_init_process_read_only_as_65532_with_its_memory_limit(stack, text):
    task1 = stack.task_definition(1, job="sleep", memory=256, environment={"BATON_SLEEP_SECONDS": "4"})
    execution = stack.start(stack.variant(task1=task1, task2=stack.task_definition(2, job="copy")), text)
    name = container_of(stack.wait_for_task(execution))
    state = wait_running(name)
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert state["HostConfig"]["Memory"] == 256 * MIB
    assert state["Config"]["User"] == "65532:65532"
    # PID 1 is the init process (initProcessEnabled: podman's --init, catatonit at
    # /run/podman-init), the worker its only child.
    assert state["Config"]["CreateCommand"].count("--init") == 1
    top = [line.split() for line in podman("top", name, "pid", "ppid", "args").stdout.splitlines()[1:]]
    assert (top[0][0], top[0][2]) == ("1", "/run/podman-init"), top
    assert [(t[1], t[2:]) for t in top[1:]] == [("1", ["/usr/local/bin/baton-worker"])], top
    # Nothing written outside the tmpfs: the only changes are podman's own mount points
    # (/etc/hosts and resolv.conf, the read-only tmpfs at /var/tmp).
    changed = {line.split()[1] for line in podman("diff", name).stdout.splitlines() if line.strip()}
    assert changed <= {"/etc", "/var", "/var/tmp", "/run", "/tmp", "/dev"}, changed
    d = stack.wait(execution, 120)
    assert d["status"] == "SUCCEEDED", d


def test_over_its_memory_limit_the_kernel_kills_it_and_the_watchdog_says_out_of_memory(stack):
    # word-count keeps every distinct word: 4 million of them do not fit in 48 MiB.
    words = " ".join(f"w{i:07d}" for i in range(4_000_000)).encode()
    uri = stack.put_text("inbox/e2e-distinct-words.txt", words)
    task1 = stack.task_definition(1, job="word-count", memory=48, environment={"BATON_MAX_DISTINCT_WORDS": "100000000"})
    execution = stack.start(stack.variant(task1=task1), uri)
    d = stack.wait(execution, 120)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.OutOfMemory"), d
    cause = json.loads(d["cause"])
    assert cause["containers"][0]["exitCode"] == 137
    assert cause["containers"][0]["reason"].startswith("OutOfMemoryError")


def test_a_sigkill_that_is_not_an_oom_kill_is_a_crash(stack, text):
    # Exit 137 is any SIGKILL. Only the kernel's count of OOM kills in the container's
    # memory cgroup (oom_kill) makes it OutOfMemoryError, as ECS reports an OOM kill.
    task1 = stack.task_definition(1, job="sleep", memory=256, environment={"BATON_SLEEP_SECONDS": "120"})
    execution = stack.start(stack.variant(task1=task1), text)
    name = container_of(stack.wait_for_task(execution))
    wait_running(name)
    time.sleep(2)  # the runner has found the container's cgroup by now
    podman("kill", "--signal", "KILL", name)
    d = stack.wait(execution, 60)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.ContainerExited"), d
    cause = json.loads(d["cause"])
    assert cause["stopCode"] == "EssentialContainerExited", cause
    assert cause["containers"][0]["exitCode"] == 137, cause
    assert not (cause["containers"][0].get("reason") or "").startswith("OutOfMemoryError"), cause


def test_exec_under_the_init_process_forwards_stop_task_to_its_child(stack, text):
    # The init process is PID 1 and the wrapper its child; the wrapper's child here is
    # another baton-worker (the image has no shell), running the sleep job. StopTask →
    # SIGTERM to PID 1 → forwarded to the wrapper → the child's group.
    task1 = stack.task_definition(1, command=["exec", "--", "/usr/local/bin/baton-worker"],
                                  environment={"BATON_JOB": "sleep", "BATON_SLEEP_SECONDS": "120",
                                               "BATON_STOP_GRACE_SECONDS": "5"})
    execution = stack.start(stack.variant(task1=task1), text)
    arn = stack.wait_for_task(execution)
    name = container_of(arn)
    wait_running(name)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(podman("top", name, "pid").stdout.splitlines()) < 4:
        time.sleep(0.2)
    processes = podman("top", name, "pid", "ppid", "args").stdout.splitlines()[1:]
    assert len(processes) == 3, processes
    assert processes[0].split()[2] == "/run/podman-init", processes
    stopped = time.monotonic()
    stack.ecs.stop_task(cluster=stack.cluster, task=arn, reason="e2e test")
    d = stack.wait(execution, 60)
    took = time.monotonic() - stopped
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.TaskStopped"), d
    cause = json.loads(d["cause"])
    assert cause["stopCode"] == "UserInitiated" and cause["containers"][0]["exitCode"] == 143, cause
    assert took < 10, f"the child ended on SIGTERM, well within stopTimeout (30 s): {took:.1f} s"


def test_no_container_is_left_behind(stack):
    time.sleep(2)
    left = [n for n in podman("ps", "-a", "--format", "{{.Names}}").stdout.split() if n.startswith("baton-task-")]
    assert left == [], left
