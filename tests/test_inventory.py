"""Every AWS call Baton makes has its row in docs/aws-inventory.md, with the
parameters it sends: the Rust SDK calls (read from the source), the Step Functions
integrations and their parameters (read from the state machines and examples), and the
template's IAM actions. An optimized integration may be given only the parameters
its documented list holds."""

import json
import re
from pathlib import Path

import botocore.session
import pytest

from template_model import iam_statements, load_template

ROOT = Path(__file__).resolve().parent.parent
INVENTORY = (ROOT / "docs/aws-inventory.md").read_text()
# The components' source: not the local stack (local/fargate) nor test support.
SOURCES = ["crates/baton/src", "crates/baton-cli/src", "functions", "worker-image/src"]
# The SDK crates Baton uses, as botocore names the services.
SERVICES = {"ecs": "ecs", "s3": "s3", "sfn": "stepfunctions", "eventbridge": "events", "cloudformation": "cloudformation",
            "cloudwatchlogs": "logs"}
# IAM prefixes of those services, for the inventory's `prefix:Operation` names.
IAM_PREFIX = {"ecs": "ecs", "s3": "s3", "stepfunctions": "states", "events": "events", "cloudformation": "cloudformation",
              "logs": "logs"}
# Builder calls that are not request parameters.
NOT_PARAMETERS = {"into_paginator", "customize", "config_override", "items", "page_size"}


def section(title):
    text = INVENTORY.split(f"## {title}\n", 1)[1]
    return text.split("\n## ", 1)[0]


def rows(title):
    """{first cell without backticks: [cells]} of a section's table."""
    table = {}
    for line in section(title).splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            table[cells[0].strip("`")] = cells
    return table


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name):
    head, *rest = name.removeprefix("set_").split("_")
    return head + "".join(part.title() for part in rest)


def operations():
    """{snake_case operation: [iam-prefixed PascalCase name]} for the services used."""
    session = botocore.session.get_session()
    found = {}
    for service in SERVICES.values():
        for name in session.get_service_model(service).operation_names:
            found.setdefault(snake(name), []).append(f"{IAM_PREFIX[service]}:{name}")
    return found


def builder_chain(text, start):
    """The methods called on a fluent builder from `start` to `.send()`, at the
    chain's own level (arguments are skipped)."""
    names, depth, i = [], 0, start
    while i < len(text):
        if depth == 0 and (text.startswith(".send()", i) or text[i] == ";"):
            break
        char = text[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0 and char == ".":
            match = re.match(r"\.([a-z_][a-z0-9_]*)\(", text[i:])
            if match:
                names.append(match.group(1))
        i += 1
    return names


def sdk_calls():
    """(file, call, [parameters]) for every SDK operation called in the components'
    source, outside their unit tests."""
    ops = operations()
    for root in SOURCES:
        for path in sorted((ROOT / root).rglob("*.rs")):
            if "/tests/" in str(path):
                continue
            text = path.read_text().split("#[cfg(test)]")[0]
            for match in re.finditer(r"\.([a-z_]+)\(\)", text):
                if match.group(1) in ops:
                    params = [camel(p) for p in builder_chain(text, match.end()) if p not in NOT_PARAMETERS]
                    yield path.relative_to(ROOT), ops[match.group(1)], params


def test_the_integration_scan_finds_the_distributed_maps_s3_calls():
    found = {resource for _, resource, _ in integrations()}
    assert {"arn:aws:states:::s3:listObjectsV2", "arn:aws:states:::s3:getObject", "arn:aws:states:::s3:putObject"} <= found


def test_the_scan_finds_the_calls_it_should():
    found = {name for _, names, _ in sdk_calls() for name in names}
    assert {"ecs:ListTasks", "states:SendTaskFailure", "s3:GetObject", "s3:UploadPart"} <= found


def test_every_sdk_call_and_parameter_has_its_row():
    table = rows("SDK calls (Rust)")
    problems = []
    for path, names, params in sdk_calls():
        row = next((table[name] for name in names if name in table), None)
        if row is None:
            problems.append(f"{path}: {' or '.join(names)} has no row")
            continue
        sent = row[2]
        problems += [f"{path}: {names[0]} sends {p}, not in its row" for p in params if f"`{p}`" not in sent]
    assert not problems, "\n".join(problems)


def task_states(definition):
    for state in definition.get("States", {}).values():
        yield state
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from task_states(state[key])
        for branch in state.get("Branches", []):
            yield from task_states(branch)


def integrations():
    """(file, resource, [parameter names]) of every Task state, and of every
    Distributed Map's ItemReader and ResultWriter (Step Functions calls S3 for them)."""
    files = sorted((ROOT / "statemachine").glob("*.asl.json")) + sorted((ROOT / "examples/pipelines").glob("*.asl.json"))
    for path in files:
        text = re.sub(r"\$\{[A-Za-z0-9]+\}", "0", path.read_text())
        for state in task_states(json.loads(text)):
            calls = [state] if state.get("Type") == "Task" else []
            calls += [state[key] for key in ("ItemReader", "ResultWriter") if key in state]
            for call in calls:
                params = [key.removesuffix(".$") for key in call.get("Parameters", {})]
                yield path.relative_to(ROOT), call["Resource"], params


def test_every_integration_and_its_parameters_have_their_row():
    table = rows("Step Functions integrations (state machines and examples)")
    problems = []
    for path, resource, params in integrations():
        row = table.get(resource)
        if row is None:
            problems.append(f"{path}: {resource} has no row")
            continue
        problems += [f"{path}: {resource} sends {p}, not in its row" for p in params if f"`{p}`" not in row[2]]
    assert not problems, "\n".join(problems)


def test_optimized_integrations_get_only_their_documented_parameters():
    table = rows("Step Functions integrations (state machines and examples)")
    problems = []
    for path, resource, params in integrations():
        if ":::aws-sdk:" in resource or resource not in table:
            continue  # an SDK integration takes the API's own parameters
        documented = table[resource][3]
        problems += [f"{path}: {resource} is given {p}, which AWS does not document for it" for p in params if f"`{p}`" not in documented]
    assert not problems, "\n".join(problems)


def test_every_iam_action_of_the_template_has_its_row():
    table = rows("IAM actions in the template")
    actions = set()
    template = load_template()
    for _, statement in iam_statements(template):
        action = statement.get("Action", [])
        actions.update([action] if isinstance(action, str) else action)
    for resource in template["Resources"].values():
        if resource["Type"] in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                actions.update([action] if isinstance(action, str) else action)
    missing = sorted(action for action in actions if action not in table)
    assert not missing, f"docs/aws-inventory.md has no row for {missing}"


@pytest.mark.parametrize("title", ["SDK calls (Rust)", "Step Functions integrations (state machines and examples)", "IAM actions in the template"])
def test_every_row_names_its_source(title):
    empty = [name for name, cells in rows(title).items() if not cells[-1] or cells[-1] == "none"]
    assert not empty, f"rows without a source: {empty}"
