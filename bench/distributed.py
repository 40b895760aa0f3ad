"""Fan-out at scale on the local stack: the Distributed Map example over N inputs, each
one a Baton task, merged in item order, against the inline Map example at its largest
working size (200 items), side by side in one run.

Reported per fan-out: wall time, items per second, state transitions and Lambda
invocations per item (counted from the histories: every `*StateEntered` event of the
parent, of each item's child execution and of each item's Baton task), their cost at
AWS's list prices, and the merge's peak memory (the prepare-input process's high-water
mark, read from /proc before and after the merge).

The per-item work is kept small on purpose (`baton-worker exec -- cat` on inputs of
`--min-kib` to `--max-kib`, log-uniform; 1 KiB by default): what is measured is Baton's
and Step Functions' overhead per item, not the job.

Reproduce: `.venv/bin/python bench/distributed.py --items 100000` (the local stack is
started if it is not running; `make bench` runs it with BATON_BENCH_ITEMS, default
100,000).
"""

import argparse
import json
import math
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from baton_local import stack_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from pipeline_roles import pipeline_role  # noqa: E402

PRICE_PER_TRANSITION = 0.025 / 1000
PRICE_PER_LAMBDA_REQUEST = 0.20 / 1_000_000
WORKER = "local:" + str(Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "debug" / "baton-worker")


def put_inputs(stack, prefix, count, min_kib, max_kib, seed=28):
    rng = random.Random(seed)
    sizes = [int(1024 * math.exp(rng.uniform(math.log(min_kib), math.log(max_kib)))) for _ in range(count)]

    def put(i):
        stack.s3.put_object(Bucket=stack.bucket, Key=f"{prefix}{i:06d}.txt", Body=(b"x" * (sizes[i] - 1)) + b"\n")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))
    return sum(sizes)


def machine(stack, path, values, role):
    text = (ROOT / path).read_text()
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    arn = stack.sfn.create_state_machine(name=f"bench-{Path(path).stem}-{os.urandom(3).hex()}", definition=text,
                                         roleArn=role)["stateMachineArn"]
    stack.watch_executions_of(arn)
    return arn


def prepare_input_hwm_kib():
    """The high-water mark of the running prepare-input process (cargo lambda watch runs it)."""
    best = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "prepare-input":
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]))
        except OSError:
            continue
    return best


def cost(stack, executions):
    """States entered and Lambda invocations of these executions and all they started."""
    transitions = lambdas = 0
    for execution in executions:
        for e in stack.history(execution):
            transitions += e["type"].endswith("StateEntered")
            lambdas += e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "lambda"
    return transitions, lambdas


def distributed(stack, count, min_kib, max_kib, concurrency, role):
    prefix = f"inbox/bench-dmap-{count}-{os.urandom(2).hex()}/"
    total = put_inputs(stack, prefix, count, min_kib, max_kib)
    item = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    arn = machine(stack, "examples/pipelines/distributed-fan-out.asl.json",
                  {"TaskStateMachineArn": stack.task, "ItemTaskDefinitionArn": item, "MergeTaskDefinitionArn": item,
                   "MaxConcurrency": str(concurrency), "Bucket": stack.bucket}, role)
    before = prepare_input_hwm_kib()
    started = time.monotonic()
    execution = stack.sfn.start_execution(stateMachineArn=arn, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": prefix}}))["executionArn"]
    d = stack.wait(execution, timeout=24 * 3600)
    wall = time.monotonic() - started
    assert d["status"] == "SUCCEEDED", d
    # Per item: a sample of the Map Run's children and their Baton tasks.
    map_run = stack.sfn.list_map_runs(executionArn=execution)["mapRuns"][0]["mapRunArn"]
    children = [c["executionArn"] for c in stack.sfn.list_executions(mapRunArn=map_run, maxResults=50)["executions"]]
    sample = [x for child in children for x in stack.family(child)]
    t_items, l_items = cost(stack, sample)
    t_parent, l_parent = cost(stack, stack.family(execution))  # the parent and its merge
    return {"fan-out": f"Distributed Map, {count:,} items", "items": count, "bytes": total, "wall": wall,
            "per item": (t_items / len(children), l_items / len(children)),
            "per fan-out": (t_parent, l_parent), "merge peak KiB": max(prepare_input_hwm_kib(), before)}


def inline(stack, count, min_kib, max_kib, role):
    prefix = f"inbox/bench-inline-{count}-{os.urandom(2).hex()}/"
    total = put_inputs(stack, prefix, count, min_kib, max_kib)
    item = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    arn = machine(stack, "examples/pipelines/fan-out.asl.json",
                  {"TaskStateMachineArn": stack.task, "ItemTaskDefinitionArn": item, "MergeTaskDefinitionArn": item,
                   "MaxConcurrency": "40", "ToleratedFailurePercentage": "0"}, role)
    started = time.monotonic()
    execution = stack.sfn.start_execution(stateMachineArn=arn, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": prefix}}))["executionArn"]
    d = stack.wait(execution, timeout=3600)
    wall = time.monotonic() - started
    assert d["status"] == "SUCCEEDED", d
    family = stack.family(execution)
    t_all, l_all = cost(stack, family)
    t_parent, l_parent = cost(stack, [execution])
    t_merge, l_merge = cost(stack, family[-1:])
    per_item = ((t_all - t_parent - t_merge) / count, (l_all - l_parent - l_merge) / count)
    label = f"inline Map, {count} items" + (" (its largest working size)" if count == 200 else "")
    return {"fan-out": label, "items": count, "bytes": total,
            "wall": wall, "per item": per_item, "per fan-out": (t_parent + t_merge, l_parent + l_merge),
            "merge peak KiB": None}


def table(rows):
    lines = ["| fan-out | wall | items/s | transitions per item | Lambda calls per item | per fan-out (transitions, Lambda) "
             "| USD per 100,000 items (transitions + Lambda requests) | merge peak memory |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t, lam = r["per item"]
        usd = 100_000 * (t * PRICE_PER_TRANSITION + lam * PRICE_PER_LAMBDA_REQUEST)
        peak = f"{r['merge peak KiB'] / 1024:.0f} MiB" if r["merge peak KiB"] else "n/a (no merge of results files)"
        lines.append(f"| {r['fan-out']} | {r['wall']:.0f} s | {r['items'] / r['wall']:.1f} | {t:.1f} | {lam:.1f} "
                     f"| {r['per fan-out'][0]}, {r['per fan-out'][1]} | {usd:.2f} | {peak} |")
    lines += ["", "Per item: the item's own executions (the inline Map's Baton task; the Distributed Map's child and "
              "its Baton task). Per fan-out: the parent execution (for the inline Map its Item and Uri states, one "
              "each per item, are in this count) and the merge's task.",
              "", "Prices: Step Functions Standard $0.025 per 1,000 transitions, Lambda $0.20 per million requests "
              "(us-east-1 list prices; Lambda duration, S3 requests and ECS not included)."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=int(os.environ.get("BATON_BENCH_ITEMS", "100000")))
    parser.add_argument("--min-kib", type=float, default=1)
    parser.add_argument("--max-kib", type=float, default=1)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--inline-items", type=int, default=200)
    args = parser.parse_args()
    started = stack_client.up()
    try:
        stack = stack_client.Stack(stack_client.read_env())
        import boto3
        iam = boto3.client("iam", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
                           aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])
        role = pipeline_role(iam, list_bucket=stack.bucket, results_bucket=stack.bucket)
        rows = [inline(stack, args.inline_items, args.min_kib, args.max_kib, role),
                distributed(stack, args.items, args.min_kib, args.max_kib, args.concurrency, role)]
        print("\n".join(table(rows)))
    finally:
        if started:
            stack_client.down()


if __name__ == "__main__":
    main()
