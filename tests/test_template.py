"""Checks on template.yaml and statemachine/ that no linter makes: the ASL inside
AWS::Serverless::StateMachine, the ECS override budget, and unscoped IAM."""

import json

import pytest

from template_model import baton_error_names, iam_statements, load_template, placeholders, render, state_machines

TEMPLATE = load_template()
MACHINES = state_machines(TEMPLATE)

KNOWN_RESOURCES = {
    "arn:aws:states:::lambda:invoke",
    "arn:aws:states:::ecs:runTask.waitForTaskToken",
    "arn:aws:states:::ecs:runTask.sync",
}

ECS_OVERRIDES_MAX_CHARS = 8192
TASK_TOKEN_MAX_CHARS = 1024
# Room the override must leave for BATON_INPUT: prepare-input and offload-output
# stage anything bigger in S3, so a pointer Payload is the most that must fit.
POINTER_PAYLOAD_ROOM = 1024
# Longest values the state machines put in the other variables.
DYNAMIC_VALUE_MAX = {"TASK_TOKEN": TASK_TOKEN_MAX_CHARS, "BATON_OUTPUT": 256, "S3_KEY": 256, "BATON_INPUT": 0}

# Actions that AWS does not let a policy scope to a resource, and why each is needed.
UNSCOPED_ACTIONS = {
    "states:SendTaskSuccess": "task-token callbacks have no resource type; the worker reports its output",
    "states:SendTaskFailure": "task-token callbacks have no resource type; the worker and the watchdog fail tasks",
    "states:SendTaskHeartbeat": "task-token callbacks have no resource type; the worker's heartbeats",
    "ecr:GetAuthorizationToken": "registry login has no resource type; the ECS agent pulls the worker image",
    "logs:CreateLogDelivery": "Step Functions log delivery to CloudWatch Logs: no resource-level permissions",
    "logs:GetLogDelivery": "same",
    "logs:UpdateLogDelivery": "same",
    "logs:DeleteLogDelivery": "same",
    "logs:ListLogDeliveries": "same",
    "logs:PutResourcePolicy": "same",
    "logs:DescribeResourcePolicies": "same",
    "logs:DescribeLogGroups": "same",
}


def all_states(definition):
    """Every state, nested ones (Map, Parallel) included."""
    for name, state in definition["States"].items():
        yield name, state, definition
        for branch in state.get("Branches", []) + ([state["Iterator"]] if "Iterator" in state else []):
            yield from all_states(branch)


def targets(state):
    out = [state.get("Next"), state.get("Default")]
    out += [c.get("Next") for c in state.get("Choices", [])]
    out += [c.get("Next") for c in state.get("Catch", [])]
    return [t for t in out if t]


@pytest.fixture(params=[name for name, _ in MACHINES])
def machine(request):
    resource = dict(MACHINES)[request.param]
    return request.param, resource, render(resource)


def test_there_are_two_state_machines():
    assert {name for name, _ in MACHINES} == {"PipelineStateMachine", "SyncStateMachine"}


def test_substitutions_match_the_placeholders(machine):
    name, _, (_, text, names) = machine
    used = placeholders(text)
    assert used <= names, f"{name}: placeholders without a substitution: {used - names}"


def test_definitions_are_json_after_substitution(machine):
    _, _, (definition, _, _) = machine
    assert definition["StartAt"] in definition["States"]


def test_every_transition_lands_on_a_state_and_every_state_is_reachable(machine):
    name, _, (definition, _, _) = machine
    states = definition["States"]
    for state_name, state in states.items():
        for target in targets(state):
            assert target in states, f"{name}.{state_name} → {target}: no such state"
        terminal = state["Type"] in ("Succeed", "Fail", "Choice") or state.get("End")
        assert terminal or "Next" in state, f"{name}.{state_name} has neither Next nor End"
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += targets(states[current])
    assert seen == set(states), f"{name}: unreachable states {set(states) - seen}"


def test_resources_are_known_integrations(machine):
    name, _, (definition, _, _) = machine
    for state_name, state, _ in all_states(definition):
        if state["Type"] == "Task":
            assert state["Resource"] in KNOWN_RESOURCES, f"{name}.{state_name}: {state['Resource']}"


def test_error_names_are_known(machine):
    # Lambda.* beside the Baton.*, States.* and ECS.*: the Lambda integration's
    # own transient errors, which AWS recommends retrying.
    name, _, (definition, _, _) = machine
    baton = baton_error_names()
    for state_name, state, _ in all_states(definition):
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                family = error.split(".")[0]
                assert family in ("Baton", "States", "ECS", "Lambda"), f"{name}.{state_name}: {error}"
                if family == "Baton":
                    assert error in baton, f"{name}.{state_name}: {error} is not a Baton error name"


def test_callback_tasks_pass_the_token_and_beat(machine):
    name, _, (definition, _, _) = machine
    for state_name, state, _ in all_states(definition):
        if state.get("Resource") == "arn:aws:states:::ecs:runTask.waitForTaskToken":
            env = state["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
            token = [e for e in env if e["Name"] == "TASK_TOKEN"]
            assert token and token[0]["Value.$"] == "$$.Task.Token", f"{name}.{state_name}"
            assert isinstance(state["HeartbeatSeconds"], int) and isinstance(state["TimeoutSeconds"], int)


def override_chars(overrides):
    """Characters of the overrides ECS receives, every dynamic value at its longest."""
    rendered = {"containerOverrides": []}
    for container in overrides["ContainerOverrides"]:
        environment = []
        for entry in container.get("Environment", []):
            value = entry.get("Value")
            if value is None:
                value = "x" * DYNAMIC_VALUE_MAX[entry["Name"]]
            environment.append({"name": entry["Name"], "value": value})
        rendered["containerOverrides"].append({"name": container["Name"], "environment": environment})
    return len(json.dumps(rendered, separators=(",", ":")))


def test_ecs_overrides_fit_the_budget_with_the_longest_token(machine):
    name, _, (definition, _, _) = machine
    checked = 0
    for state_name, state, _ in all_states(definition):
        if state.get("Resource", "").startswith("arn:aws:states:::ecs:runTask"):
            chars = override_chars(state["Parameters"]["Overrides"])
            assert chars + POINTER_PAYLOAD_ROOM <= ECS_OVERRIDES_MAX_CHARS, f"{name}.{state_name}: {chars}"
            checked += 1
    assert checked == 2


def test_wildcard_resources_only_for_unscopable_actions():
    found = {}
    for logical_id, statement in iam_statements(TEMPLATE):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert statement["Effect"] == "Allow"
            for action in actions:
                assert action in UNSCOPED_ACTIONS, f"{logical_id}: {action} on '*' can be scoped"
                found.setdefault(action, []).append(logical_id)
    # Every exception listed is used, so the list stays true.
    assert set(found) == set(UNSCOPED_ACTIONS), set(UNSCOPED_ACTIONS) - set(found)


def test_no_wildcard_actions():
    for logical_id, statement in iam_statements(TEMPLATE):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in actions:
            assert "*" not in action, f"{logical_id}: {action}"


def test_the_bucket_is_private_encrypted_and_tls_only():
    resources = TEMPLATE["Resources"]
    bucket = resources["DataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    deny = resources["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_watchdog_rule_has_retries_and_a_dead_letter_queue():
    rule = TEMPLATE["Resources"]["TaskStoppedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["lastStatus"] == ["STOPPED"]
    assert rule["EventPattern"]["detail"]["clusterArn"]
    target = rule["Targets"][0]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"]["Arn"]
