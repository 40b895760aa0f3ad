"""Fan-out at scale on the local stack: the Distributed Map example over N inputs, each
one a Baton task, merged in item order, against the inline Map example at its largest
working size (200 items), side by side in one run.

Reported per fan-out: wall time, items per second, state transitions and Lambda
invocations per item (counted from the histories: every `*StateEntered` event of the
parent, of each item's child execution and of each item's Baton task), their cost at
AWS's list prices, and the merge's peak memory (the prepare-input process's high-water
mark, read from /proc before and after the merge).

The per-item work is kept small on purpose (`baton-worker exec -- cat` on inputs of
`--min-kib` to `--max-kib`, log-uniform, 1 KiB by default, and every `--mib-every`th
input 1 MiB): what is measured is Baton's and Step Functions' overhead per item, not the
job. The benchmark mode batches the items (`--items-per-batch`, the example's
ItemsPerBatch, 100 by default): one Baton task per batch, which is what makes 100,000
items a matter of 1,000 tasks. Every run checks the merge: its output holds every
input's bytes, in item order (sizes and a SHA-256 over all of them).

Reproduce: `.venv/bin/python bench/distributed.py --items 100000` (the local stack is
started if it is not running; `make bench` runs it with BATON_BENCH_ITEMS, default
100,000).
"""

import hashlib

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


def sizes_of(count, min_kib, max_kib, mib_every=0, seed=28):
    """Each input's size: log-uniform from min_kib to max_kib, every mib_every-th 1 MiB."""
    rng = random.Random(seed)
    sizes = [int(1024 * math.exp(rng.uniform(math.log(min_kib), math.log(max_kib)))) for _ in range(count)]
    if mib_every:
        for i in range(mib_every - 1, count, mib_every):
            sizes[i] = 1024 * 1024
    return sizes


def body(i, size):
    """Input i's bytes: its index, then filler, so that an item out of place shows."""
    head = f"{i:06d} ".encode()
    return head + b"x" * max(0, size - len(head) - 1) + b"\n"


def put_inputs(stack, prefix, count, min_kib, max_kib, mib_every=0):
    """The inputs under prefix; their total size and the SHA-256 of all their bytes in order."""
    sizes = sizes_of(count, min_kib, max_kib, mib_every)

    def put(i):
        stack.s3.put_object(Bucket=stack.bucket, Key=f"{prefix}{i:06d}.txt", Body=body(i, sizes[i]))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))
    digest = hashlib.sha256()
    for i in range(count):
        digest.update(body(i, sizes[i]))
    return sum(len(body(i, sizes[i])) for i in range(count)), digest.hexdigest()


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


def distributed(stack, count, min_kib, max_kib, concurrency, role, items_per_batch=1, mib_every=0):
    prefix = f"inbox/bench-dmap-{count}-{os.urandom(2).hex()}/"
    total, digest = put_inputs(stack, prefix, count, min_kib, max_kib, mib_every)
    item = stack.task_definition(1, image=WORKER, command=["exec", "--", "cat"])
    arn = machine(stack, "examples/pipelines/distributed-fan-out.asl.json",
                  {"TaskStateMachineArn": stack.task, "ItemTaskDefinitionArn": item, "MergeTaskDefinitionArn": item,
                   "MaxConcurrency": str(concurrency), "Bucket": stack.bucket,
                   "ItemsPerBatch": str(items_per_batch)}, role)
    before = prepare_input_hwm_kib()
    started = time.monotonic()
    execution = stack.sfn.start_execution(stateMachineArn=arn, input=json.dumps(
        {"prefix": {"bucket": stack.bucket, "prefix": prefix}}))["executionArn"]
    d = stack.wait(execution, timeout=24 * 3600)
    wall = time.monotonic() - started
    assert d["status"] == "SUCCEEDED", d
    verify_merge(stack, d, total, digest)
    # Per item: a sample of the Map Run's children (each a batch) and their Baton tasks.
    map_run = stack.sfn.list_map_runs(executionArn=execution)["mapRuns"][0]["mapRunArn"]
    children = [c["executionArn"] for c in stack.sfn.list_executions(mapRunArn=map_run, maxResults=50)["executions"]]
    sample = [x for child in children for x in stack.family(child)]
    t_child, l_child = cost(stack, sample)
    per_item = math.ceil(count / items_per_batch) / count / len(children)  # a child's share of one item
    t_parent, l_parent = cost(stack, stack.family(execution))  # the parent and its merge
    batched = f", {items_per_batch} a batch" if items_per_batch > 1 else ""
    return {"fan-out": f"Distributed Map, {count:,} items{batched}", "items": count, "bytes": total, "wall": wall,
            "per item": (t_child * per_item, l_child * per_item),
            "per fan-out": (t_parent, l_parent), "merge peak KiB": max(prepare_input_hwm_kib(), before)}


def verify_merge(stack, d, total, digest):
    """The merge's output is every input's bytes in item order: read it (the worker's
    output of the merge task: one object, or inline when small), compare its size and SHA-256."""
    output = json.loads(d["output"])
    chunks = ([output["inline"].encode()] if "inline" in output else stack.s3.get_object(
        Bucket=output["s3"]["bucket"], Key=output["s3"]["key"])["Body"].iter_chunks(1 << 20))
    got = hashlib.sha256()
    size = 0
    for chunk in chunks:
        got.update(chunk)
        size += len(chunk)
    assert (size, got.hexdigest()) == (total, digest), ("the merge is not every input in order", size, total)


def inline(stack, count, min_kib, max_kib, role):
    prefix = f"inbox/bench-inline-{count}-{os.urandom(2).hex()}/"
    total, digest = put_inputs(stack, prefix, count, min_kib, max_kib)
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
    verify_merge(stack, d, total, digest)
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
    lines = ["| fan-out | inputs | wall | items/s | transitions per item | Lambda calls per item | per fan-out (transitions, Lambda) "
             "| USD per 100,000 items (transitions + Lambda requests) | merge peak memory |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t, lam = r["per item"]
        usd = 100_000 * (t * PRICE_PER_TRANSITION + lam * PRICE_PER_LAMBDA_REQUEST)
        peak = f"{r['merge peak KiB'] / 1024:.0f} MiB" if r["merge peak KiB"] else "n/a (no merge of results files)"
        lines.append(f"| {r['fan-out']} | {r['bytes'] / 2**20:,.1f} MiB | {r['wall']:.0f} s | {r['items'] / r['wall']:.1f} | {t:.2f} | {lam:.3f} "
                     f"| {r['per fan-out'][0]}, {r['per fan-out'][1]} | {usd:.2f} | {peak} |")
    lines += ["", "Per item: the item's own executions (the inline Map's Baton task; the Distributed Map's child and "
              "its Baton task, shared by the items of its batch). Per fan-out: the parent execution (for the inline Map its Item and Uri states, one "
              "each per item, are in this count) and the merge's task.",
              "", "Prices: Step Functions Standard $0.025 per 1,000 transitions, Lambda $0.20 per million requests "
              "(us-east-1 list prices; Lambda duration, S3 requests and ECS not included)."]
    return lines


def run(items, min_kib=1, max_kib=1, concurrency=200, inline_items=200, items_per_batch=100, mib_every=1000):
    """Both fan-outs on the local stack (started here if it is not running): the table's rows."""
    started = stack_client.up()
    try:
        stack = stack_client.Stack(stack_client.read_env())
        import boto3
        iam = boto3.client("iam", endpoint_url=stack.env["AWS_ENDPOINT_URL"], region_name=stack.env["AWS_REGION"],
                           aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"])
        role = pipeline_role(iam, list_bucket=stack.bucket, results_bucket=stack.bucket)
        return [inline(stack, inline_items, min_kib, max_kib, role),
                distributed(stack, items, min_kib, max_kib, concurrency, role, items_per_batch, mib_every)]
    finally:
        if started:
            stack_client.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=int(os.environ.get("BATON_BENCH_ITEMS", "100000")))
    parser.add_argument("--min-kib", type=float, default=1)
    parser.add_argument("--max-kib", type=float, default=1)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--inline-items", type=int, default=200)
    parser.add_argument("--items-per-batch", type=int, default=100)
    parser.add_argument("--mib-every", type=int, default=1000, help="every Nth input is 1 MiB (0: none)")
    args = parser.parse_args()
    print("\n".join(table(run(args.items, args.min_kib, args.max_kib, args.concurrency, args.inline_items,
                                args.items_per_batch, args.mib_every))))


if __name__ == "__main__":
    main()
