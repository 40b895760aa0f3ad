"""make demo: the whole pipeline on this machine, then a crash the watchdog catches.

Starts the local stack, generates a text of tens of MiB, runs the callback pipeline
with live progress (`baton run`), then runs a task 1 whose container crashes before
calling back and shows the watchdog failing that execution, then stops the stack.
"""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from . import stack_client

ROOT = Path(__file__).resolve().parents[2]  # local/baton_local/<this file>

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BATON = TARGET / "debug" / "baton"
SIZE_MIB = int(os.environ.get("BATON_DEMO_MIB", "40"))
phases = []


def phase(name):
    class Phase:
        def __enter__(self):
            print(f"\n━━ {name}", flush=True)
            self.started = time.monotonic()

        def __exit__(self, *exc):
            phases.append((name, time.monotonic() - self.started))

    return Phase()


def sample_text(path: Path, size: int) -> None:
    """English-like text: a Zipf-ish vocabulary, so the report has a clear top."""
    rng = random.Random(42)
    common = "the of and to a in is it you that he was for on are with as his they be at one have this from".split()
    vocabulary = common + [f"{rng.choice('bcdfghklmnprstvw')}{rng.choice('aeiou')}{rng.choice('nrstlm')}{i}" for i in range(60000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]
    with path.open("w") as out:
        written = 0
        while written < size:
            line = " ".join(rng.choices(vocabulary, weights, k=5000)) + "\n"
            out.write(line)
            written += len(line)


def baton(*args, env) -> int:
    return subprocess.run([str(BATON), *args], env=env).returncode


def main() -> None:
    began = time.monotonic()
    with phase("start the local stack (moto, template.yaml, cargo lambda watch, local Fargate)"):
        subprocess.run([sys.executable, "-m", "baton_local.stack", "up"], check=True)
    try:
        env = dict(os.environ, **stack_client.read_env())
        stack = stack_client.Stack(stack_client.read_env())
        with phase(f"generate and upload a {SIZE_MIB} MiB text"):
            text = stack_client.ENV_FILE.parent / "demo.txt"  # beside stack.env (BATON_LOCAL_STATE)
            sample_text(text, SIZE_MIB * 1024 * 1024)
            stack.s3.upload_file(str(text), stack.bucket, "inbox/demo.txt")
            print(f"s3://{stack.bucket}/inbox/demo.txt ({text.stat().st_size:,} bytes)")
        with phase("the callback pipeline: word-count → top-words, each step a run of the task state machine"):
            code = baton("run", "--input", f"s3://{stack.bucket}/inbox/demo.txt", "--name", f"demo-{int(time.time())}", env=env)
            if code != 0:
                sys.exit("the pipeline failed; see the task logs above")
        with phase("a container that crashes before calling back (exit 3), and the watchdog"):
            crash = stack.task_definition(1, image="local:/bin/sh", command=["-c", "echo 'about to crash' >&2; sleep 1; exit 3"])
            machine = stack.variant(task1=crash)
            execution = stack.start(machine, f"s3://{stack.bucket}/inbox/demo.txt", name=f"crash-{int(time.time())}")
            code = baton("follow", execution, env=env)
            d = stack.sfn.describe_execution(executionArn=execution)
            task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[stack.task_arns(execution)[0]])["tasks"][0]
            print(f"container stopped at {task['stoppedAt']:%H:%M:%S.%f}, execution {d['status']} at {d['stopDate']:%H:%M:%S.%f}: "
                  f"{(d['stopDate'] - task['stoppedAt']).total_seconds():.2f} s from death to FAILED")
            if code == 0 or stack.step_failure(d).get("error") != "Baton.ContainerExited":
                sys.exit("expected the watchdog to fail the execution with Baton.ContainerExited")
    finally:
        with phase("stop the local stack"):
            subprocess.run([sys.executable, "-m", "baton_local.stack", "down"], check=True)
    print("\n━━ timings")
    for name, seconds in phases:
        print(f"  {seconds:6.1f} s  {name}")
    print(f"  {time.monotonic() - began:6.1f} s  in all")


if __name__ == "__main__":
    main()
