"""Fan-out at scale on the local stack: examples/pipelines/distributed-fan-out.asl.json,
a Distributed Map whose items are each a run of Baton's reusable task (STANDARD child
executions), read from S3 and written to S3 (ResultWriter), then merged in item order
by one more Baton task that reads the ResultWriter's output as a manifest."""

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from test_pipelines_e2e import ROOT, UPPER, WORKER, any_pipeline_role

# Every item upper-cases its input behind the exec wrapper; an input whose key holds
# "crash" kills its container first (exit 3), as a crash or an OOM kill would.
UPPER_OR_CRASH = ["-c", 'case "$BATON_INPUT" in *crash*) exit 3;; esac; exec "$0" "$@"',
                  WORKER[len("local:"):], "exec", "--", "tr", "a-z", "A-Z"]


def distributed_fan_out(stack, item, merge, max_concurrency, role, items_per_batch=1, item_task=None):
    """The example with these settings, as a state machine of the local stack;
    `item_task` adds to each item's task input (its heartbeatSeconds, say)."""
    text = (ROOT / "examples/pipelines/distributed-fan-out.asl.json").read_text()
    for placeholder, value in (("TaskStateMachineArn", stack.task), ("ItemTaskDefinitionArn", item),
                               ("MergeTaskDefinitionArn", merge), ("MaxConcurrency", str(max_concurrency)),
                               ("Bucket", stack.bucket), ("ItemsPerBatch", str(items_per_batch))):
        text = text.replace("${" + placeholder + "}", value)
    assert "${" not in text
    if item_task:
        definition = json.loads(text)
        maps = [s for s in definition["States"].values() if s["Type"] == "Map"]
        for state in (s for m in maps for s in m["ItemProcessor"]["States"].values()):
            if state.get("Resource", "").startswith("arn:aws:states:::states:startExecution"):
                state["Parameters"]["Input"].update(item_task)
        text = json.dumps(definition)
    machine = stack.sfn.create_state_machine(name=f"distributed-{os.urandom(4).hex()}", definition=text,
                                             roleArn=role)["stateMachineArn"]
    stack.watch_executions_of(machine)
    return machine


def put_inputs(stack, prefix, count, crash=()):
    """`count` small objects under inbox/<prefix>/, in key order; those whose index is in
    `crash` have "crash" in their key. Their bytes, in key order."""
    keys = [f"inbox/{prefix}/{i:05d}{'-crash' if i in crash else ''}.txt" for i in range(count)]
    bodies = [f"item {i} of {prefix}: some words\n".encode() for i in range(count)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kb: stack.s3.put_object(Bucket=stack.bucket, Key=kb[0], Body=kb[1]), zip(keys, bodies)))
    return bodies


def output_bytes(stack, d):
    pointer = json.loads(d["output"])["s3"]
    body = stack.s3.get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read()
    assert (len(body), hashlib.sha256(body).hexdigest()) == (pointer["size"], pointer["sha256"]), pointer
    return body, pointer


def test_a_thousand_items_one_percent_crashing_are_tolerated_and_merged_in_order(stack):
    count, crash = 1000, set(range(7, 1000, 100))  # 10 of 1,000: 1%
    bodies = put_inputs(stack, "dmap-1000", count, crash)
    item = stack.task_definition(1, image="local:/bin/sh", command=UPPER_OR_CRASH)
    merge = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    machine = distributed_fan_out(stack, item, merge, max_concurrency=100,
                                  role=any_pipeline_role(stack, list_bucket=stack.bucket, results_bucket=stack.bucket))
    started = time.monotonic()
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": "inbox/dmap-1000/"}, "toleratedFailurePercentage": 1}))["executionArn"]
    d = stack.wait(execution, timeout=1500)
    print(f"distributed fan-out: {count} items in {time.monotonic() - started:.0f} s")
    assert d["status"] == "SUCCEEDED", d
    body, pointer = output_bytes(stack, d)
    assert body == b"".join(b.translate(UPPER) for i, b in enumerate(bodies) if i not in crash)
    name = execution.rsplit(":", 1)[1]
    assert pointer["key"].startswith(f"executions/{name}/merge/"), pointer
    # The crashed items are listed, with their own error.
    failed = [json.loads(line) for line in stack.s3.get_object(
        Bucket=stack.bucket, Key=f"executions/{name}/merge/failed.jsonl")["Body"].read().splitlines()]
    assert sorted(f["index"] for f in failed) == sorted(crash), failed
    assert {f["error"] for f in failed} == {"Baton.ContainerExited"}, failed


def test_batches_of_items_run_one_task_each_and_merge_in_item_order(stack):
    # 23 items, 5 a batch: 5 tasks (the last with 3 items), each reading its batch's
    # inputs in order as one manifest; the merge gives every item's bytes in item order.
    bodies = put_inputs(stack, "dmap-batches", 23)
    item = stack.task_definition(1, image=WORKER, command=["exec", "--", "tr", "a-z", "A-Z"])
    merge = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    machine = distributed_fan_out(stack, item, merge, max_concurrency=5, items_per_batch=5,
                                  role=any_pipeline_role(stack, list_bucket=stack.bucket, results_bucket=stack.bucket))
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": "inbox/dmap-batches/"}}))["executionArn"]
    d = stack.wait(execution, timeout=600)
    assert d["status"] == "SUCCEEDED", d
    output = json.loads(d["output"])  # small enough to be inline (4 KiB at most)
    assert output["inline"].encode() == b"".join(b.translate(UPPER) for b in bodies), output
    # One task per batch, its step named after its first item.
    name = execution.rsplit(":", 1)[1]
    steps = {k["Key"].split("/")[2] for k in stack.s3.list_objects_v2(
        Bucket=stack.bucket, Prefix=f"executions/{name}/items-")["Contents"]}
    assert steps == {f"items-{first}" for first in (0, 5, 10, 15, 20)}, steps


def test_more_failures_than_tolerated_fail_with_the_failed_items_named(stack):
    crash = {3, 11, 12}
    put_inputs(stack, "dmap-strict", 20, crash)
    item = stack.task_definition(1, image="local:/bin/sh", command=UPPER_OR_CRASH)
    merge = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    machine = distributed_fan_out(stack, item, merge, max_concurrency=5,
                                  role=any_pipeline_role(stack, list_bucket=stack.bucket, results_bucket=stack.bucket))
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": "inbox/dmap-strict/"}, "toleratedFailureCount": 1}))["executionArn"]
    d = stack.wait(execution, timeout=600)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.ItemsFailed"), d
    assert len(d["cause"]) < 32_768
    name = execution.rsplit(":", 1)[1]
    assert f"s3://{stack.bucket}/executions/{name}/merge/failed.jsonl" in d["cause"], d["cause"]
    assert "Baton.ContainerExited" in d["cause"], d["cause"]


def test_the_tolerances_reach_the_map_as_aws_reads_them(stack):
    # The example's first states: the Map's ToleratedFailurePercentagePath and
    # ToleratedFailureCountPath always apply, so what the input leaves out does not
    # limit; a count of 0 goes as a percentage of 0 (the guide calls the count's value
    # non-negative in one place, positive in another; the percentage's range has 0).
    text = (ROOT / "examples/pipelines/distributed-fan-out.asl.json").read_text()
    for placeholder in ("MaxConcurrency", "ItemsPerBatch"):
        text = text.replace("${" + placeholder + "}", "1")
    states = json.loads(text)["States"]
    first = {n: states[n] for n in ("Tolerance", "CountGiven", "NoTolerance", "PercentageOnly", "CountOnly")}
    machine = stack.sfn.create_state_machine(
        name=f"tolerance-{os.urandom(4).hex()}", roleArn=stack._definition["roleArn"],
        definition=json.dumps({"StartAt": "Tolerance", "States": {**first, "Source": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    most = 2_147_483_647
    cases = [({}, 0, most), ({"toleratedFailurePercentage": 5}, 5, most), ({"toleratedFailureCount": 3}, 100, 3),
             ({"toleratedFailureCount": 0}, 0, most), ({"toleratedFailureCount": 0, "toleratedFailurePercentage": 50}, 0, most),
             ({"toleratedFailureCount": 2, "toleratedFailurePercentage": 7}, 7, 2)]
    for given, percentage, count in cases:
        execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps(given))["executionArn"]
        d = stack.wait(execution, timeout=60)
        assert d["status"] == "SUCCEEDED", d
        output = json.loads(d["output"])
        assert (output["toleratedFailurePercentage"], output["toleratedFailureCount"]) == (percentage, count), given


def test_stopping_the_parent_stops_every_items_task(stack):
    # 100 in flight in make test; 1,000 in make test-scale (BATON_DMAP_IN_FLIGHT).
    count = int(os.environ.get("BATON_DMAP_IN_FLIGHT", "100"))
    put_inputs(stack, "dmap-stop", count)
    # Items that never end on their own: each waits until it is stopped, heartbeating
    # (Baton's worker around `sleep`), so that none times out while the others start.
    # On 2 cores the local stack starts about one item's task a second: the first ones
    # wait long before the last start, so their heartbeat allows for the whole start
    # (the task's heartbeatSeconds input; the stack's default is 300 s). On AWS, Fargate
    # starts them side by side.
    item = stack.task_definition(1, image=WORKER, command=["exec", "--", "sleep", "7200"])
    merge = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    start_seconds = max(900, 3 * count)
    machine = distributed_fan_out(stack, item, merge, max_concurrency=count,
                                  role=any_pipeline_role(stack, list_bucket=stack.bucket, results_bucket=stack.bucket),
                                  item_task={"heartbeatSeconds": start_seconds, "timeoutSeconds": 2 * start_seconds})
    execution = stack.sfn.start_execution(stateMachineArn=machine, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": "inbox/dmap-stop/"}}))["executionArn"]
    name = execution.rsplit(":", 1)[1]
    folder = f"s3://{stack.bucket}/executions/{name}/"
    started, running, shown = time.monotonic(), [], 0
    while time.monotonic() < started + start_seconds:
        running = stack.running_tasks_under(folder)
        if len(running) >= count:
            break
        if time.monotonic() - shown > 60:
            shown = time.monotonic()
            print(f"distributed fan-out: {len(running)} of {count} items' tasks running "
                  f"after {shown - started:.0f} s", flush=True)
        time.sleep(5)
    print(f"distributed fan-out: {len(running)} items' tasks running at once")
    assert len(running) == count, f"only {len(running)} of {count} items' tasks ran at once"
    stopped_at = time.monotonic()
    stack.sfn.stop_execution(executionArn=execution, error="Test.Stop", cause="a user stopped the fan-out")
    while time.monotonic() < stopped_at + 600 and stack.running_tasks_under(folder):
        time.sleep(5)
    left = stack.running_tasks_under(folder)
    print(f"distributed fan-out: {count - len(left)} of {count} tasks stopped "
          f"{time.monotonic() - stopped_at:.0f} s after the parent was stopped")
    assert not left, f"{len(left)} tasks still running after the parent was stopped"
    # And stopped for real: each task's container (here its processes, all of them)
    # has ended, as ECS reports with lastStatus STOPPED.
    while time.monotonic() < stopped_at + 900:
        ended = [t for i in range(0, len(running), 100)
                 for t in stack.ecs.describe_tasks(cluster=stack.cluster, tasks=running[i:i + 100])["tasks"]
                 if t["lastStatus"] == "STOPPED"]
        if len(ended) == count:
            break
        time.sleep(5)
    print(f"distributed fan-out: {len(ended)} of {count} tasks STOPPED "
          f"{time.monotonic() - stopped_at:.0f} s after the parent was stopped")
    assert len(ended) == count, f"{count - len(ended)} tasks never reached STOPPED"
