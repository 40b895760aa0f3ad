"""The fault soak: many executions of the callback and .sync pipelines at once, each
with faults drawn at random, and an oracle that says what each must end as.

    python soak/soak.py --executions 200 --concurrency 12 --seed 7   # make soak
    python soak/soak.py --executions 30                              # in make test

It starts its own local stack (state in .local-soak/, moto on 4611, the fault hop on
4612, cargo lambda watch on 9061, tasks as processes) with soak/fault_hop.py between
Baton's components and moto, and stops it at the end (unless --keep-stack).

Faults, per execution, from the seed (the same seed draws the same plan):
- on one task, at most one of: kill before the callback, kill while the output
  upload is under way, kill right after the callback (a foreign program that lingers
  after calling back, soak/programs/soak_foreign.py), OOM, refuse to start, freeze
  (SIGSTOP: alive and silent, callback pipeline only);
- on the callback pipeline, what happens to that task's STOPPED event: drop,
  duplicate, delay, reorder;
and, for every request of a Lambda or a task, the hop's transient faults (throttling,
5xx, reset mid-body, stalled body, delay) by the fractions in FAULTS. Those are drawn
in arrival order from the same seed, so their placement varies with timing.

The oracle (expected()): transient faults, a kill after the callback and every event
fault on a healthy task end in SUCCEEDED with the expected bytes (computed here, from
the input); a kill before the callback or during the upload in Baton.ContainerExited,
OOM in Baton.OutOfMemory, a refused start in Baton.TaskFailedToStart (after the
state machine's retries), a frozen worker, and a crash whose STOPPED event is dropped,
in Baton.Unresponsive (the heartbeat window; the watchdog stops the task). Checked for
every execution: terminal within bound(); SUCCEEDED output verified (size, sha256,
bytes); FAILED with the expected error, no output object of the failed task; every
task it started STOPPED (its processes gone) within STOP_TIMEOUT + 10 s of its end,
else orphaned; at the end, no multipart upload left open.

The last line (contract):
`soak: <N> executions, <H> hung, <L> lost, <W> wrong, <O> orphaned, seed <S>`.
"""

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from baton_local import stack_client

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local-soak"
MIB = 1024 * 1024
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
WORKER = f"local:{TARGET / 'debug' / 'baton-worker'}"
JOB = ["exec", "--", "python3", "soak/programs/soak_job.py"]
PYTHON = "local:.venv/bin/python"  # for soak/programs/soak_foreign.py (boto3)
HEARTBEAT_SECONDS = 30  # the soak's HeartbeatSeconds; workers beat every 5 s
STOP_TIMEOUT = 5  # the tasks' stopTimeout: SIGTERM, then SIGKILL this much later
# Transient faults by service, as fractions of the requests (soak/fault_hop.py).
FAULTS = {service: {"error": 0.03, "reset": 0.015, "stall": 0.005, "delay": 0.02}
          for service in ("s3", "states", "ecs", "events")}
FAULTS["stall_seconds"] = 25
HARD = {"callback": ["kill-before", "kill-upload", "kill-after-callback", "oom", "refuse-start", "freeze"],
        "sync": ["kill-before", "kill-upload", "oom", "refuse-start"]}
EVENTS = ["drop", "duplicate", "delay", "reorder"]
ERROR_OF = {"kill-before": "Baton.ContainerExited", "kill-upload": "Baton.ContainerExited",
            "oom": "Baton.OutOfMemory", "refuse-start": "Baton.TaskFailedToStart", "freeze": "Baton.Unresponsive"}
ROT13 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                        b"NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm")
UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass
class Plan:
    index: int
    pipeline: str  # callback | sync
    size: int
    hard: str | None = None  # one of HARD, on `task`
    task: int = 1
    event: str | None = None  # one of EVENTS, on `task`'s STOPPED event
    delay_ms: int = 0


@dataclass
class Result:
    plan: Plan
    name: str = ""
    execution: str = ""
    status: str = "NOT STARTED"
    error: str | None = None
    seconds: float = 0.0
    verdict: str = "ok"  # ok | hung | lost | wrong
    orphaned: list = field(default_factory=list)  # task ARNs that outlived the execution
    why: list = field(default_factory=list)


def draw(index: int, rng: random.Random) -> Plan:
    pipeline = "sync" if rng.random() < 0.25 else "callback"
    plan = Plan(index, pipeline, rng.choice([300, 5_000, 200_000, 2 * MIB]), task=rng.choice([1, 2]))
    if rng.random() < 0.5:
        plan.hard = rng.choice(HARD[pipeline])
    if pipeline == "callback" and rng.random() < 0.35:
        plan.event = rng.choice(EVENTS)
        plan.delay_ms = rng.choice([1500, 5000])
    if plan.hard == "kill-upload":
        plan.size = 12 * MIB  # past the 10 MiB mark, with a part upload under way
    return plan


def expected(plan: Plan) -> tuple[str, str | None]:
    """(status, error) the execution must end with."""
    if plan.hard in (None, "kill-after-callback"):
        return "SUCCEEDED", None
    if plan.event == "drop":
        return "FAILED", "Baton.Unresponsive"  # nobody tells Step Functions: the heartbeat window does
    return "FAILED", ERROR_OF[plan.hard]


def bound(plan: Plan) -> float:
    """Seconds by which the execution must be terminal: each task's three attempts
    (two retries of TaskFailedToStart) each within HeartbeatSeconds, the retries'
    waits (10 s, then 20 s, backoff 2), the injected pauses and event delays, and
    90 s for Lambdas and start-up on a loaded machine."""
    per_task = 3 * HEARTBEAT_SECONDS + 10 + 20
    return 2 * per_task + 10 + plan.delay_ms / 1000 + 90


def content(plan: Plan, seed: int) -> bytes:
    rng = random.Random(seed * 100_003 + plan.index)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ") for _ in range(rng.randint(1, 9)))
             for _ in range(300)]
    out = bytearray()
    while len(out) < plan.size:
        out += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out[: plan.size])


def transform(data: bytes) -> bytes:
    """What the pipeline computes: task 1 rot13, task 2 upper-case."""
    return data.translate(ROT13).translate(UPPER)


class Soak:
    def __init__(self, stack: stack_client.Stack, seed: int):
        self.stack, self.seed = stack, seed
        self.machines: dict = {}

    def task_definition(self, plan: Plan, n: int) -> str:
        command = JOB + ["rot13" if n == 1 else "upper"]
        env = {"BATON_HEARTBEAT_SECONDS": "5"}
        image = WORKER
        if plan.task == n:
            hard = plan.hard
            if hard in ("kill-before", "oom", "freeze"):
                env["BATON_LOCAL_FAULT"] = {"oom": "oom", "freeze": "freeze"}.get(hard, "kill") + "@soak: start"
                command += ["--pause-at-start", "5"]
            elif hard == "kill-upload":
                env["BATON_LOCAL_FAULT"] = "kill@soak: mark"
                command += ["--pause-at-mark", "5"]
            elif hard == "kill-after-callback":
                # A program that lingers after its callback (the worker exits at once).
                image, command = PYTHON, ["soak/programs/soak_foreign.py", "rot13" if n == 1 else "upper"]
                env["BATON_LOCAL_FAULT"] = "kill@soak: called back"
            elif hard == "refuse-start":
                image = "nginx:1.27"  # no such image here: CannotPullContainerError
            if plan.event:
                env["BATON_LOCAL_EVENT_FAULT"] = f"delay:{plan.delay_ms}" if plan.event == "delay" else plan.event
        return self.stack.task_definition(n, image=image, command=command, environment=env, stop_timeout=STOP_TIMEOUT)

    def machine(self, plan: Plan) -> str:
        key = (plan.pipeline, plan.task if (plan.hard or plan.event) else 0, plan.hard, plan.event, plan.delay_ms)
        if key not in self.machines:
            self.machines[key] = self.stack.variant(
                task1=self.task_definition(plan, 1), task2=self.task_definition(plan, 2),
                sync=plan.pipeline == "sync", heartbeat_seconds=HEARTBEAT_SECONDS)
        return self.machines[key]

    def run(self, plan: Plan, machine: str) -> Result:
        result = Result(plan, name=f"soak-{self.seed}-{plan.index:04d}")
        stack = self.stack
        data = content(plan, self.seed)
        uri = stack.put_text(f"inbox/{result.name}", data)
        started = time.monotonic()
        execution = result.execution = stack.start(machine, uri, name=result.name)
        deadline = started + bound(plan)
        while True:
            d = stack.sfn.describe_execution(executionArn=execution)
            if d["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                result.verdict, result.status = "hung", "RUNNING"
                result.why.append(f"not terminal within {bound(plan):.0f} s")
                stack.sfn.stop_execution(executionArn=execution, error="Soak.Hung")
                return result
            time.sleep(1)
        d = stack.step_failure(d)  # a failed pipeline: its failed step's error
        result.seconds = (d["stopDate"] - d["startDate"]).total_seconds()
        result.status, result.error = d["status"], d.get("error")
        want = expected(plan)
        if (result.status, result.error) != want:
            result.verdict = "lost" if want[0] == "SUCCEEDED" else "wrong"
            result.why.append(f"ended {result.status} {result.error}, expected {want[0]} {want[1]}: "
                              f"{(d.get('cause') or '')[:300]}")
        elif result.status == "SUCCEEDED":
            self.verify_output(result, d, transform(data))
        else:
            key = f"executions/{result.name}/task{plan.task}/output"
            if stack.exists(key):
                result.verdict = "wrong"
                result.why.append(f"the failed task's output {key} is visible")
        result.orphaned = self.orphans(execution, result.name, d["stopDate"])
        if result.orphaned:
            result.why.append(f"tasks running past the execution's end + {STOP_TIMEOUT + 10} s: {result.orphaned}")
        self.clean(result.name)
        return result

    def orphans(self, execution: str, name: str, stop_date) -> list:
        """The execution's tasks (from its history and its steps', and any task still
        meant to run whose BATON_OUTPUT lies in its folder, as the watchdog finds them)
        not STOPPED within STOP_TIMEOUT + 10 s of its end."""
        stack = self.stack
        folder = f"s3://{stack.bucket}/executions/{name}/"
        arns = set(stack.task_arns(execution))
        deadline = time.monotonic() + STOP_TIMEOUT + 10 - (time.time() - stop_date.timestamp())
        while True:
            arns |= set(stack.running_tasks_under(folder))
            if not arns:
                return []
            tasks = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=sorted(arns))["tasks"]
            running = [t["taskArn"] for t in tasks if t["lastStatus"] != "STOPPED"]
            late = [t["taskArn"] for t in tasks if t.get("stoppedAt") and
                    t["stoppedAt"].timestamp() > stop_date.timestamp() + STOP_TIMEOUT + 10]
            if not running or time.monotonic() > deadline:
                return sorted(set(running) | set(late))
            time.sleep(0.5)

    def verify_output(self, result: Result, d: dict, want: bytes) -> None:
        output = json.loads(d.get("output") or "{}")
        if "s3" not in output and "inline" not in output:  # .sync: the last task's record
            key = f"executions/{result.name}/task2/result.json"
            try:
                output = json.loads(self.stack.s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"].read())
            except self.stack.s3.exceptions.ClientError as e:
                result.verdict = "lost"
                result.why.append(f"no output Payload and no {key}: {e}")
                return
        if "inline" in output:
            value = output["inline"]
            got = value.encode() if isinstance(value, str) else json.dumps(value, separators=(",", ":")).encode()
        else:
            pointer = output["s3"]
            digest = hashlib.sha256(want).hexdigest()
            if (pointer.get("size"), pointer.get("sha256")) != (len(want), digest):
                result.verdict = "lost"
                result.why.append(f"pointer says {pointer.get('size')} bytes {pointer.get('sha256')}, "
                                  f"expected {len(want)} {digest}")
                return
            got = self.stack.s3.get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read()
        if got != want:
            result.verdict = "lost"
            result.why.append(f"output differs: {len(got)} bytes, expected {len(want)}")

    def clean(self, name: str) -> None:
        s3, bucket = self.stack.s3, self.stack.bucket
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"executions/{name}/")
                for o in page.get("Contents", [])] + [f"inbox/{name}"]
        for i in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})

    def open_uploads(self, wait: float = 30) -> list:
        """Multipart uploads still open, after giving the watchdog `wait` s to abort."""
        deadline = time.monotonic() + wait
        while True:
            uploads = self.stack.s3.list_multipart_uploads(Bucket=self.stack.bucket).get("Uploads", [])
            if not uploads or time.monotonic() > deadline:
                return uploads
            time.sleep(1)


def stack_env(seed: int) -> dict:
    STATE.mkdir(exist_ok=True)
    faults = STATE / "faults.json"
    faults.write_text(json.dumps(FAULTS, indent=1))
    return dict(os.environ, BATON_LOCAL_STATE=str(STATE), BATON_LOCAL_PORT="4611", BATON_LAMBDA_PORT="9061",
                BATON_FAULT_HOP_PORT="4612", BATON_LOCAL_BACKEND="process", BATON_LOCAL_FAULTS=str(faults),
                BATON_FAULT_SEED=str(seed))


def stack_running() -> bool:
    """Is the soak's stack up (its settings written and its moto alive)?"""
    pid = STATE / "pids" / "moto.pid"
    if not (STATE / "stack.env").exists() or not pid.exists():
        return False
    try:
        os.kill(int(pid.read_text()), 0)
        return True
    except (ProcessLookupError, PermissionError, ValueError):
        return False


def stack_command(verb: str, env: dict) -> None:
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "baton_local.stack", verb], check=True, cwd=ROOT, env=env)


def fired_faults(soak: Soak, results: list) -> Counter:
    """Runner faults that really fired, by plan kind, from the runner's log."""
    log = (STATE / "logs" / "fargate.log").read_text(errors="replace")
    killed = {line for line in log.splitlines() if "fault: SIGKILL" in line or "fault: SIGSTOP" in line}
    fired = Counter()
    for r in results:
        if r.plan.hard and r.plan.hard != "refuse-start":
            arns = soak.stack.task_arns(r.execution)
            if any(arn in line for arn in arns for line in killed):
                fired[r.plan.hard] += 1
    return fired


def hop_stats(env: dict) -> dict:
    url = f"http://127.0.0.1:{env['BATON_FAULT_HOP_PORT']}/__fault_hop/stats"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def percentile(values: list, p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(results: list, fired: Counter, hop: dict, open_uploads: list, seed: int, seconds: float) -> tuple:
    rows = []
    plans = [r.plan for r in results]
    rows.append(("executions", f"{len(results)} ({sum(p.pipeline == 'callback' for p in plans)} callback, "
                 f"{sum(p.pipeline == 'sync' for p in plans)} sync), {seconds:.0f} s"))
    hard = Counter(p.hard for p in plans if p.hard)
    for kind in HARD["callback"]:
        note = f" ({fired[kind]} fired)" if kind != "refuse-start" else ""
        rows.append((f"fault: {kind}", f"{hard[kind]}{note}"))
    events = Counter(p.event for p in plans if p.event)
    for kind in EVENTS:
        rows.append((f"fault: event {kind}", str(events[kind])))
    faults = hop.get("faults", {})
    for kind in ("error", "reset", "stall", "delay"):
        by_service = ", ".join(f"{s} {n}" for s, n in sorted((k.split(".")[0], v) for k, v in faults.items()
                                                             if k.endswith("." + kind)))
        total = sum(v for k, v in faults.items() if k.endswith("." + kind))
        rows.append((f"fault: hop {kind}", f"{total}" + (f" ({by_service})" if by_service else "")))
    requests = hop.get("requests", {})
    rows.append(("requests through the hop", f"{sum(requests.values())} ("
                 + ", ".join(f"{k} {v}" for k, v in sorted(requests.items())) + ")"))
    outcomes = Counter(f"{r.status} {r.error}" if r.error else r.status for r in results)
    for outcome, n in sorted(outcomes.items()):
        rows.append((f"outcome: {outcome}", str(n)))
    times = [r.seconds for r in results if r.verdict != "hung"]
    rows.append(("time to terminal p50 / p95 / max",
                 f"{percentile(times, 50):.1f} s / {percentile(times, 95):.1f} s / {max(times, default=0):.1f} s"))
    hung = sum(r.verdict == "hung" for r in results)
    lost = sum(r.verdict == "lost" for r in results)
    wrong = sum(r.verdict == "wrong" for r in results) + len(open_uploads)
    orphaned = sum(len(r.orphaned) for r in results)
    rows.append(("hung / lost / wrong / orphaned", f"{hung} / {lost} / {wrong} / {orphaned}"))
    rows.append(("multipart uploads left open", str(len(open_uploads))))
    width = max(len(k) for k, _ in rows)
    print(f"\n| {'what'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k.ljust(width)} | {v} |")
    return hung, lost, wrong, orphaned


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "0")) or random.randrange(1, 1 << 31))
    parser.add_argument("--keep-stack", action="store_true", help="leave the soak's stack running at the end")
    args = parser.parse_args()
    print(f"==> soak: {args.executions} executions, {args.concurrency} at once, seed {args.seed} "
          f"(again: python soak/soak.py --executions {args.executions} --seed {args.seed})", flush=True)
    env = stack_env(args.seed)
    started_stack = not stack_running()
    if started_stack:
        stack_command("down", env)  # the remains of an interrupted run, if any
        stack_command("up", env)
    try:
        stack = stack_client.Stack(dict(line.split("=", 1) for line in (STATE / "stack.env").read_text().splitlines()
                                        if "=" in line))
        soak = Soak(stack, args.seed)
        rng = random.Random(args.seed)
        plans = [draw(i, rng) for i in range(args.executions)]
        machines = [soak.machine(p) for p in plans]
        began = time.monotonic()
        results = []
        with ThreadPoolExecutor(args.concurrency) as pool:
            for done, result in enumerate(pool.map(soak.run, plans, machines), 1):
                results.append(result)
                if result.verdict != "ok" or result.orphaned:
                    print(f"    {result.name}: {result.verdict.upper()}: {'; '.join(result.why)} (plan {result.plan})",
                          flush=True)
                if done % 10 == 0 or done == len(plans):
                    print(f"    {done}/{len(plans)} executions checked, {time.monotonic() - began:.0f} s", flush=True)
        seconds = time.monotonic() - began
        uploads = soak.open_uploads()
        for upload in uploads:
            print(f"    WRONG: multipart upload left open: {upload['Key']} ({upload['UploadId'][:12]}…)")
        hung, lost, wrong, orphaned = report(results, fired_faults(soak, results), hop_stats(env), uploads, args.seed,
                                             seconds)
    finally:
        if started_stack and not args.keep_stack:
            stack_command("down", env)
    print(f"soak: {len(results)} executions, {hung} hung, {lost} lost, {wrong} wrong, {orphaned} orphaned, "
          f"seed {args.seed}")
    return 0 if hung == lost == wrong == orphaned == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
