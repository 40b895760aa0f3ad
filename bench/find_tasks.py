"""What finding an execution's ECS tasks costs the watchdog with 1,000 tasks running in
the cluster: ECS calls made (ListTasks, DescribeTasks, StopTask), set against ECS's
documented API rate limits.

    .venv/bin/python bench/find_tasks.py        # builds the watchdog's `invoke` example

The watchdog finds tasks with documented parameters only: ListTasks(cluster,
desiredStatus RUNNING) 100 a page (ECS's default and most), DescribeTasks 100 at a time, and keeps the tasks
whose BATON_OUTPUT override lies in the scope (an ended execution's folder, a pipeline
step's folder, a timed-out state's output). This runs the real code path (the
watchdog's `invoke` example, the Lambda's handler outside Lambda) against plain moto
behind a counting hop on 127.0.0.1. moto returns every task in one ListTasks page
whatever maxResults says, and takes startedBy together with other filters; the hop
answers as ECS does (ECS API reference, ListTasks: maxResults 1 to 100, a nextToken
while more remain; startedBy "must be the only filter that you use"; DescribeTasks:
up to 100 tasks), so the calls counted are the calls ECS would get.

The cluster: 10 executions (bench-0 … bench-9) × 10 steps × 10 tasks, each task's
BATON_OUTPUT s3://baton-bench/executions/bench-<e>/step-<s>/. The table goes to
bench/results/find-tasks.md.
"""

import contextlib
import http.client
import json
import math
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from baton_local.testing import aws_env, client, free_port
from bench_moto import moto_server  # bench/, the folder of the script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "find-tasks.md"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
INVOKE = TARGET / "debug" / "examples" / "invoke"

BUCKET = "baton-bench"
EXECUTIONS, STEPS, TASKS_PER_STEP = 10, 10, 10
ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
LIST_FILTERS = ("containerInstance", "family", "serviceName", "desiredStatus", "launchType", "daemonName")

# "Request throttling for the Amazon ECS API" (ECS API reference): token buckets per
# account and Region, (maximum capacity = burst, refill rate = sustained per second).
# ListTasks and DescribeTasks share "Cluster resource read actions"; StopTask (with
# RunTask) is in "Cluster resource modify actions".
READ_BUCKET = (100, 20)
MODIFY_BUCKET = (100, 40)


class Hop(ThreadingHTTPServer):
    """Forwards to moto; counts ECS operations; answers ListTasks and DescribeTasks'
    documented limits, which moto does not enforce."""

    daemon_threads = True

    def __init__(self, upstream_port: int):
        super().__init__(("127.0.0.1", free_port()), Handler)
        self.upstream_port = upstream_port
        self.calls = Counter()
        self.lock = threading.Lock()

    def take(self) -> Counter:
        with self.lock:
            calls, self.calls = self.calls, Counter()
        return calls


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def forward(self, body: bytes):
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        return response.status, [(k, v) for k, v in response.getheaders()
                                 if k.lower() not in ("content-length", "transfer-encoding", "connection")], data

    def answer(self, status: int, headers, data: bytes):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def invalid(self, message: str):
        body = json.dumps({"__type": "InvalidParameterException", "message": message}).encode()
        self.answer(400, [("Content-Type", "application/x-amz-json-1.1")], body)

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        operation = target[len(ECS_TARGET):] if target.startswith(ECS_TARGET) else None
        if operation:
            with self.server.lock:
                self.server.calls[operation] += 1
        request = json.loads(body or b"{}") if operation else {}
        if operation == "ListTasks":
            used = [f for f in LIST_FILTERS if f in request]
            if "startedBy" in request and used:
                return self.invalid(f"startedBy must be the only filter; also given: {', '.join(used)}")
            size = request.get("maxResults", 100)
            if not 1 <= size <= 100:
                return self.invalid("maxResults must be between 1 and 100")
            status, headers, data = self.forward(body)
            if status != 200:
                return self.answer(status, headers, data)
            arns = json.loads(data)["taskArns"]
            start = int(request.get("nextToken", "0"))
            page = {"taskArns": arns[start:start + size]}
            if start + size < len(arns):
                page["nextToken"] = str(start + size)
            return self.answer(200, headers, json.dumps(page).encode())
        if operation == "DescribeTasks" and len(request.get("tasks", [])) > 100:
            return self.invalid("tasks: at most 100")
        self.answer(*self.forward(body))

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


@contextlib.contextmanager
def hop(upstream: str):
    server = Hop(int(upstream.rsplit(":", 1)[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def output(execution: int, step: int) -> str:
    return f"s3://{BUCKET}/executions/bench-{execution}/step-{step}/"


def fill_cluster(moto: str) -> str:
    """1,000 running tasks in cluster `bench`, 10 a RunTask call; the cluster's ARN."""
    urllib.request.urlopen(urllib.request.Request(
        f"{moto}/moto-api/state-manager/set-transition", method="POST",
        data=json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}}).encode(),
        headers={"Content-Type": "application/json"}))
    ecs, ec2 = client(moto, "ecs"), client(moto, "ec2")
    client(moto, "s3").create_bucket(Bucket=BUCKET)
    cluster = ecs.create_cluster(clusterName="bench")["cluster"]["clusterArn"]
    ecs.register_task_definition(
        family="bench-task", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "worker", "image": "baton-worker", "memory": 512}])
    network = {"awsvpcConfiguration": {"subnets": [ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
                                       "securityGroups": [ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]]}}
    for e in range(EXECUTIONS):
        for s in range(STEPS):
            ecs.run_task(cluster=cluster, taskDefinition="bench-task", launchType="FARGATE", count=TASKS_PER_STEP,
                         networkConfiguration=network,
                         overrides={"containerOverrides": [{"name": "worker", "environment": [
                             {"name": "BATON_OUTPUT", "value": output(e, s)},
                             {"name": "TASK_TOKEN", "value": f"token-{e}-{s}"}]}]})
    return cluster


def ended(name: str, input_: dict | None = None) -> dict:
    """An SQS batch of one "Step Functions Execution Status Change" (ABORTED)."""
    now = int(time.time() * 1000)
    detail = {"executionArn": f"arn:aws:states:us-east-1:123456789012:execution:bench:{name}",
              "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:bench",
              "name": name, "status": "ABORTED", "startDate": now - 60_000, "stopDate": now,
              "input": json.dumps(input_ or {"input": "s3://baton-bench/inbox/x"}), "inputDetails": {"included": True}}
    event = {"version": "0", "id": name, "detail-type": "Step Functions Execution Status Change",
             "source": "aws.states", "account": "123456789012", "region": "us-east-1",
             "resources": [detail["executionArn"]], "detail": detail}
    return {"Records": [{"messageId": name, "body": json.dumps(event), "eventSource": "aws:sqs"}]}


def timed_out(execution: int, step: int) -> dict:
    return {"taskTimedOut": {
        "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:bench-task:bench-{execution}-step-{step}",
        "state": f"step-{step}", "output": output(execution, step), "heartbeatSeconds": 120,
        "timeoutSeconds": 86400, "timedOut": {"heartbeat": {"Error": "States.Timeout", "Cause": ""}}}}


SCENARIOS = [
    ("an execution ends, its 100 tasks running", ended("bench-0"), 100),
    ("the same event delivered again", ended("bench-0"), 0),
    ("a pipeline step ends (its input names its folder)",
     ended("0b6c1f7e-child", {"taskDefinition": "arn:td", "execution": "bench-2", "step": "step-3"}), 10),
    ("a task state times out, 10 tasks in its output folder", timed_out(1, 0), 10),
    ("an execution ends with no task running", ended("bench-none"), 0),
]


def invoke(hop_endpoint: str, cluster: str, request: dict) -> dict:
    env = dict(os.environ, **aws_env(hop_endpoint), BATON_BUCKET=BUCKET, BATON_CLUSTER=cluster,
               RUST_LOG="warn", BATON_LOG_FORMAT="text")
    run = subprocess.run([str(INVOKE)], input=json.dumps(request), capture_output=True, text=True, env=env,
                         timeout=600)
    if run.returncode != 0:
        sys.exit(f"the watchdog failed:\n{run.stdout}\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def budget(calls: int, bucket) -> str:
    burst, refill = bucket
    return f"{calls / refill:.2f} s ({100 * calls / burst:.0f} % of the burst)"


def main() -> None:
    subprocess.run(["cargo", "build", "--locked", "--quiet", "-p", "task-watchdog", "--example", "invoke"],
                   cwd=ROOT, check=True)
    rows = []
    with moto_server() as moto, hop(moto) as (counter, endpoint):
        started = time.monotonic()
        cluster = fill_cluster(moto)
        setup = time.monotonic() - started
        ecs = client(moto, "ecs")

        def running() -> int:
            return len(ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"])

        for what, request, want in SCENARIOS:
            before = running()
            counter.take()
            started = time.monotonic()
            answer = invoke(endpoint, cluster, request)
            took = time.monotonic() - started
            calls = counter.take()
            stopped = before - running()
            if answer.get("batchItemFailures"):
                sys.exit(f"{what}: {answer}")
            assert stopped == want == calls["StopTask"], (what, stopped, want, calls, answer)
            reads = calls["ListTasks"] + calls["DescribeTasks"]
            assert calls["ListTasks"] == max(1, math.ceil(before / 100)), (what, calls)
            assert calls["DescribeTasks"] == math.ceil(before / 100), (what, calls)
            rows.append((what, before, stopped, calls["ListTasks"], calls["DescribeTasks"], calls["StopTask"],
                         budget(reads, READ_BUCKET), budget(calls["StopTask"], MODIFY_BUCKET), took))
            print(f"{what}: {before} running, {stopped} stopped, {dict(calls)}, {took:.1f} s", flush=True)

    lines = [
        f"# Finding an execution's tasks with {EXECUTIONS * STEPS * TASKS_PER_STEP} tasks running, "
        f"{time.strftime('%Y-%m-%d')}",
        "",
        "Reproduce: `.venv/bin/python bench/find_tasks.py` (the watchdog's `invoke` example, the",
        "Lambda's handler outside Lambda, against plain moto behind a hop that counts ECS calls and",
        "pages ListTasks as ECS does: 100 a page). The cluster: 10 executions × 10 steps × 10 tasks,",
        f"each with its BATON_OUTPUT in its execution's step folder (set up in {setup:.0f} s, not counted).",
        "",
        "The watchdog sends only documented parameters: ListTasks(cluster, desiredStatus RUNNING; pages",
        "of 100), DescribeTasks(cluster, ≤ 100 tasks), StopTask(cluster, task, reason). For N",
        "tasks running in the cluster a cleanup costs ceil(N/100) ListTasks + ceil(N/100) DescribeTasks",
        "(at least one ListTasks), and one StopTask a task of its own, whatever else runs there.",
        "",
        "Budget: ECS's token buckets (\"Request throttling for the Amazon ECS API\", ECS API reference),",
        "per account and Region. ListTasks and DescribeTasks share *cluster resource read actions*",
        f"(burst {READ_BUCKET[0]}, refill {READ_BUCKET[1]}/s); StopTask is a *cluster resource modify action*",
        f"(burst {MODIFY_BUCKET[0]}, refill {MODIFY_BUCKET[1]}/s, shared with RunTask). \"Seconds\" = calls ÷ refill rate:",
        "how long the bucket takes to earn them back.",
        "",
        "| scenario | tasks running | stopped | ListTasks | DescribeTasks | StopTask | read budget (List + Describe) | modify budget (StopTask) | wall time |",
        "|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for what, before, stopped, lists, describes, stops, reads, modifies, took in rows:
        lines.append(f"| {what} | {before} | {stopped} | {lists} | {describes} | {stops} | {reads} | {modifies} | {took:.1f} s |")
    lines += [
        "",
        "Reading it: one cleanup at 1,000 tasks uses 20 read tokens, a fifth of the burst and one",
        "second of refill. The watchdog's queue delivers up to 10 records a batch and Lambda polls",
        "with 5 batches at once, so 50 executions ending together at 1,000 tasks would ask for 1,000",
        "read tokens: 100 at once, then 20/s, about 45 s in all. Throttled calls are retried by the",
        "SDK, then the record returns to the queue (a batch item failure) and comes back after the",
        "visibility timeout: slower, never dropped. Wall times are moto's on this machine, not AWS's.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
