"""Benchmarks on the local stack: how fast the watchdog turns a container's death into
a FAILED execution, and how the pipeline behaves with many executions at once."""

import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from baton_local import stack_client

ROOT = Path(__file__).resolve().parent.parent

PRICE_PER_TRANSITION = 0.025 / 1000  # Step Functions Standard, USD, us-east-1 list price


def small_text(stack) -> str:
    body = ("the quick brown fox jumps over the lazy dog\n" * 20000).encode()
    return stack.put_text("inbox/bench-small.txt", body)


def watchdog_detection(stack, deaths: int = 20):
    """p50 and p95 of container death → execution FAILED, over `deaths` crashes."""
    machine = stack.variant(task1=stack.task_definition(1, image="local:/bin/sh", command=["-c", "sleep 1; exit 3"]))
    text = small_text(stack)
    executions = [stack.start(machine, text) for _ in range(deaths)]
    step_delays, delays = [], []
    for execution in executions:
        d = stack.wait(execution, 120)
        assert d.get("error") == "Baton.ContainerExited", d
        task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[stack.task_arns(execution)[0]])["tasks"][0]
        # The step (the task state machine's execution) fails when the watchdog
        # answers; the pipeline when Step Functions hands the child's end to it.
        step = stack.sfn.describe_execution(executionArn=stack.family(execution)[1])
        step_delays.append((step["stopDate"] - task["stoppedAt"]).total_seconds())
        delays.append((d["stopDate"] - task["stoppedAt"]).total_seconds())
    task = json.loads(stack.sfn.describe_state_machine(stateMachineArn=stack.task)["definition"])
    heartbeat = task["States"]["PrepareInput"]["Parameters"]["Payload"]["defaults"]["heartbeatSeconds"]

    def p(values, q):
        values = sorted(values)
        return values[int(q * (len(values) - 1))]
    return {"p50": p(delays, 0.5), "p95": p(delays, 0.95), "step_p50": p(step_delays, 0.5),
            "step_p95": p(step_delays, 0.95), "heartbeat": heartbeat, "n": deaths}


def pipeline_scale(stack, levels=(10, 25, 50)):
    text = small_text(stack)
    rows = []
    for n in levels:
        started = time.monotonic()
        executions = [stack.start(stack.pipeline, text) for _ in range(n)]
        with ThreadPoolExecutor(min(n, 32)) as pool:
            statuses = list(pool.map(lambda e: stack.wait(e, 600)["status"], executions))
        wall = time.monotonic() - started
        transitions = statistics.mean(
            sum(1 for f in stack.family(x) for e in stack.history(f) if e["type"].endswith("StateEntered"))
            for x in executions
        )
        rows.append({"n": n, "succeeded": statuses.count("SUCCEEDED"), "wall": wall, "transitions": transitions})
    return rows


def measure():
    started_stack = stack_client.up()
    try:
        stack = stack_client.Stack(stack_client.read_env())
        return watchdog_detection(stack), pipeline_scale(stack)
    finally:
        if started_stack:
            stack_client.down()


def tables(detection, scale) -> list:
    lines = [
        "| watchdog: container death → FAILED | Baton (local stack) | without Baton: the HeartbeatSeconds backstop | × |",
        "|---|---:|---:|---:|",
    ]
    for q in ("p50", "p95"):
        for what, key in (("the step's execution", f"step_{q}"), ("the pipeline's execution", q)):
            lines.append(f"| {q} over {detection['n']} deaths, {what} | {detection[key]:.3f} s | {detection['heartbeat']} s "
                         f"| {detection[key] / detection['heartbeat']:.5f} |")
    lines += [
        "",
        "| concurrent executions | succeeded | wall time | per execution | state transitions each | list price each |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in scale:
        lines.append(f"| {r['n']} | {r['succeeded']}/{r['n']} | {r['wall']:.1f} s | {r['wall'] / r['n']:.2f} s "
                     f"| {r['transitions']:.0f} | ${r['transitions'] * PRICE_PER_TRANSITION:.6f} |")
    return lines


if __name__ == "__main__":
    print("\n".join(tables(*measure())))
