"""What one Baton step costs on Step Functions' bill, before and after issue 28, measured
side by side on the same local stack: state transitions (each state entered, retries
included: "Step Functions counts a state transition each time a step of your workflow
is executed", AWS's pricing page) and Lambda invocations, per task.

"Before" is the reusable task as it was (bench/baseline/task-before-issue-28.asl.json:
two Pass states for its settings, and OffloadOutput after every task); "after" is
statemachine/task.asl.json. Both are deployed with the stack's own substitutions, which
are read back from the deployed task state machine, and run the same task on the same
input, by Baton's worker and by a foreign worker.

Reproduce: `make local-up && .venv/bin/python bench/step_cost.py` (or in `make bench`).
"""

import json
import re
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from baton_local import stack_client

ROOT = Path(__file__).resolve().parent.parent
BEFORE = ROOT / "bench" / "baseline" / "task-before-issue-28.asl.json"
AFTER = ROOT / "statemachine" / "task.asl.json"
PRICE_PER_TRANSITION = 0.025 / 1000  # Step Functions Standard, USD per transition, us-east-1 list price
PRICE_PER_LAMBDA_REQUEST = 0.20 / 1_000_000  # Lambda requests, USD, list price (duration extra)
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def substitutions(template_text: str, deployed: dict) -> dict:
    """The values the stack gave each `${Name}` of a definition, read by walking the
    template and the deployed definition side by side."""
    # Bare placeholders (numbers) become strings, so that the template parses.
    template = json.loads(re.sub(r'(?<!")\$\{(\w+)\}', r'"${\1}"', template_text))
    found = {}

    def walk(t, d):
        if isinstance(t, dict) and isinstance(d, dict):
            for k in t:
                if k in d:
                    walk(t[k], d[k])
        elif isinstance(t, list) and isinstance(d, list):
            for a, b in zip(t, d):
                walk(a, b)
        elif isinstance(t, str) and PLACEHOLDER.fullmatch(t):
            found[PLACEHOLDER.fullmatch(t).group(1)] = d
    walk(template, deployed)
    return found


def render(template_text: str, values: dict) -> str:
    def value(m):
        v = values[m.group(1)]
        return v if isinstance(v, str) else json.dumps(v)
    return PLACEHOLDER.sub(value, template_text)


def cost_of(stack, execution: str) -> dict:
    """States entered and Lambda functions invoked by one execution of the task."""
    events = stack.history(execution)
    return {
        "transitions": sum(1 for e in events if e["type"].endswith("StateEntered")),
        "lambdas": sum(1 for e in events if e["type"] == "TaskScheduled"
                       and e["taskScheduledEventDetails"]["resourceType"] == "lambda"),
    }


def measure(stack, runs: int = 10) -> list:
    deployed = stack.sfn.describe_state_machine(stateMachineArn=stack.task)
    values = substitutions(AFTER.read_text(), json.loads(deployed["definition"]))
    machines = {}
    for label, path in (("before", BEFORE), ("after", AFTER)):
        machines[label] = stack.sfn.create_state_machine(
            name=f"step-cost-{label}-{uuid.uuid4().hex[:6]}", definition=render(path.read_text(), values),
            roleArn=deployed["roleArn"])["stateMachineArn"]
        stack.watch_executions_of(machines[label])
    text = stack.put_text("inbox/step-cost.txt", b"one line\n" * 100)
    workers = {
        "Baton's worker": stack.task_definition(1, job="copy"),
        "a foreign worker": stack.task_definition(1, image="local:.venv/bin/python",
                                                  command=["tests/programs/foreign_worker.py"]),
    }
    rows = []
    for worker, task_definition in workers.items():
        for label, machine in machines.items():
            def one(_):
                arn = stack.sfn.start_execution(
                    stateMachineArn=machine, name=f"cost-{label}-{uuid.uuid4().hex[:8]}",
                    input=json.dumps({"taskDefinition": task_definition, "input": text}))["executionArn"]
                d = stack.wait(arn, 180)
                assert d["status"] == "SUCCEEDED", d
                return cost_of(stack, arn)
            with ThreadPoolExecutor(5) as pool:
                costs = list(pool.map(one, range(runs)))
            rows.append({"worker": worker, "definition": label, "runs": runs,
                         "transitions": sum(c["transitions"] for c in costs) / runs,
                         "lambdas": sum(c["lambdas"] for c in costs) / runs})
    return rows


def table(rows: list) -> list:
    lines = ["| worker | reusable task | runs | state transitions per task | Lambda invocations per task "
             "| USD per 100,000 tasks (transitions + Lambda requests) | × before |", "|---|---|---:|---:|---:|---:|---:|"]
    before = {}
    for r in rows:
        usd = 100_000 * (r["transitions"] * PRICE_PER_TRANSITION + r["lambdas"] * PRICE_PER_LAMBDA_REQUEST)
        before.setdefault(r["worker"], usd)
        lines.append(f"| {r['worker']} | {r['definition']} | {r['runs']} | {r['transitions']:.0f} | {r['lambdas']:.0f} "
                     f"| {usd:.2f} | {usd / before[r['worker']]:.2f} |")
    lines.append("")
    lines.append("Transitions: `*StateEntered` events of the task's execution (its retries would add more). "
                 "Prices: Step Functions Standard $0.025 per 1,000 transitions; Lambda $0.20 per million requests "
                 "(us-east-1 list prices; Lambda duration and ECS are not included).")
    return lines


def run(runs: int = 10) -> list:
    started = stack_client.up()
    try:
        return measure(stack_client.Stack(stack_client.read_env()), runs)
    finally:
        if started:
            stack_client.down()


def main() -> None:
    print("\n".join(table(run(int(sys.argv[1]) if len(sys.argv) > 1 else 10))))


if __name__ == "__main__":
    main()
