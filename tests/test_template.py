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
    "arn:aws:states:::states:startExecution.sync:2",
    # A failed step's own error and cause, read from its execution (its description
    # through States.TaskFailed's cause is cut at 32,768 characters).
    "arn:aws:states:::aws-sdk:sfn:describeExecution",
}

ECS_OVERRIDES_MAX_CHARS = 8192
# Task tokens are up to 2,048 characters (SFN API reference and service model, TaskToken).
TASK_TOKEN_MAX_CHARS = 2048
# Room the override must leave for BATON_INPUT: prepare-input and offload-output
# stage anything bigger in S3, so a pointer Payload is the most that must fit.
POINTER_PAYLOAD_ROOM = 1024
# Longest values the state machines put in the other variables.
DYNAMIC_VALUE_MAX = {"TASK_TOKEN": TASK_TOKEN_MAX_CHARS, "BATON_OUTPUT": 256, "S3_KEY": 256, "BATON_INPUT": 0,
                     "BATON_EXECUTION": 256}

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

# Actions that AWS authorises on "*" for the calls Baton makes, allowed there only
# with the condition that bounds them (required: the statement is refused without it).
CLUSTER = {"Fn::GetAtt": ["Cluster", "Arn"]}
CONDITIONED_UNSCOPED_ACTIONS = {
    # ListTasks without a containerInstance is authorised on "*" (ECS developer guide,
    # identity-based policy example "list tasks in a cluster": Resource "*", Condition
    # ArnEquals ecs:cluster; real accounts refuse a grant on container-instance/... with
    # "not authorized to perform: ecs:ListTasks on resource: *"). The watchdog's
    # cleanups list the cluster's running tasks.
    "ecs:ListTasks": {"ArnEquals": {"ecs:cluster": CLUSTER}},
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


def test_there_are_the_two_pipelines_and_the_reusable_task():
    assert {name for name, _ in MACHINES} == {"PipelineStateMachine", "SyncStateMachine", "TaskStateMachine"}


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
                assert family in ("Baton", "States", "ECS", "AmazonECS", "Lambda", "StepFunctions"), f"{name}.{state_name}: {error}"
                if family == "Baton":
                    assert error in baton, f"{name}.{state_name}: {error} is not a Baton error name"


def test_callback_tasks_pass_the_token_and_beat(machine):
    name, _, (definition, _, _) = machine
    for state_name, state, _ in all_states(definition):
        if state.get("Resource") == "arn:aws:states:::ecs:runTask.waitForTaskToken":
            env = state["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
            token = [e for e in env if e["Name"] == "TASK_TOKEN"]
            assert token and token[0]["Value.$"] == "$$.Task.Token", f"{name}.{state_name}"
            if name == "TaskStateMachine":
                # Per task, from the input, defaulting to the stack's parameters.
                assert (state["HeartbeatSecondsPath"], state["TimeoutSecondsPath"]) == (
                    "$.task.heartbeatSeconds", "$.task.timeoutSeconds")
                defaults = definition["States"]["PrepareInput"]["Parameters"]["Payload"]["defaults"]
                assert isinstance(defaults["heartbeatSeconds"], int) and isinstance(defaults["timeoutSeconds"], int)
            else:
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
        # A container named by the input (the reusable task): ECS allows 255 characters.
        name = container.get("Name", "x" * 255)
        rendered["containerOverrides"].append({"name": name, "environment": environment})
    return len(json.dumps(rendered, separators=(",", ":")))


def test_ecs_overrides_fit_the_budget_with_the_longest_token(machine):
    name, _, (definition, _, _) = machine
    checked = 0
    for state_name, state, _ in all_states(definition):
        if state.get("Resource", "").startswith("arn:aws:states:::ecs:runTask"):
            chars = override_chars(state["Parameters"]["Overrides"])
            assert chars + POINTER_PAYLOAD_ROOM <= ECS_OVERRIDES_MAX_CHARS, f"{name}.{state_name}: {chars}"
            checked += 1
    # The callback pipeline runs its tasks through the reusable task state machine.
    assert checked == {"TaskStateMachine": 1, "SyncStateMachine": 2, "PipelineStateMachine": 0}[name]


def wildcard_problems(statements):
    """What is wrong with the statements' grants on "*", and which allowed actions
    were found there (every listed exception must be used, so the lists stay true)."""
    problems, found = [], set()
    for logical_id, statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" not in resources:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] != "Allow":
            problems.append(f"{logical_id}: a Deny on '*'")
        for action in actions:
            if action in CONDITIONED_UNSCOPED_ACTIONS:
                if statement.get("Condition") != CONDITIONED_UNSCOPED_ACTIONS[action]:
                    problems.append(f"{logical_id}: {action} on '*' without {CONDITIONED_UNSCOPED_ACTIONS[action]}")
            elif action not in UNSCOPED_ACTIONS:
                problems.append(f"{logical_id}: {action} on '*' can be scoped")
            found.add(action)
    return problems, found


def test_wildcard_resources_only_for_unscopable_actions():
    problems, found = wildcard_problems(iam_statements(TEMPLATE))
    assert not problems
    assert found == set(UNSCOPED_ACTIONS) | set(CONDITIONED_UNSCOPED_ACTIONS), \
        (set(UNSCOPED_ACTIONS) | set(CONDITIONED_UNSCOPED_ACTIONS)) - found


def test_list_tasks_on_star_needs_its_cluster_condition():
    statements = list(iam_statements(TEMPLATE))
    listing = [(i, s) for i, s in statements if s["Action"] == "ecs:ListTasks"]
    assert [i for i, _ in listing] == ["TaskWatchdogFunction"], listing
    for logical_id, statement in listing:
        assert statement["Resource"] == "*", f"{logical_id}: ListTasks is authorised on '*', not on container instances"
        # The check refuses the grant without its condition, or with another one.
        for condition in (None, {"StringEquals": {"ecs:cluster": CLUSTER}}, {"ArnEquals": {"ecs:cluster": "*"}}):
            mutated = dict(statement)
            mutated.pop("Condition")
            if condition is not None:
                mutated["Condition"] = condition
            problems, _ = wildcard_problems([(logical_id, mutated)])
            assert problems, condition


def test_task_grants_are_on_the_clusters_tasks():
    # DescribeTasks and StopTask are authorised on the task (Service Authorization
    # Reference, Amazon ECS: resource type "task", arn:...:task/${ClusterName}/${TaskId}).
    task_arn = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*"
    seen = set()
    for logical_id, statement in iam_statements(TEMPLATE):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        for action in set(actions) & {"ecs:DescribeTasks", "ecs:StopTask"}:
            assert statement["Resource"] == {"Fn::Sub": task_arn}, f"{logical_id}: {action} on {statement['Resource']}"
            seen.add((logical_id, action))
    assert ("TaskWatchdogFunction", "ecs:DescribeTasks") in seen and ("TaskWatchdogFunction", "ecs:StopTask") in seen


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


def test_the_watchdog_gets_its_events_durably_through_sqs():
    # EventBridge invokes a Lambda target asynchronously: once Lambda accepts the
    # event, the rule's retries and DLQ no longer apply, and a failed handler gets two
    # retries before the event is dropped. A queue in between keeps the event until
    # it is handled, for hours, and then in a dead-letter queue with an alarm.
    resources = TEMPLATE["Resources"]
    rule = resources["TaskStoppedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["lastStatus"] == ["STOPPED"]
    assert rule["EventPattern"]["detail"]["clusterArn"]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["WatchdogQueue", "Arn"]}, "the rule targets the queue, not the function"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["WatchdogDeadLetterQueue", "Arn"]}
    queue = resources["WatchdogQueue"]["Properties"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["WatchdogDeadLetterQueue", "Arn"]}
    timeout = TEMPLATE["Globals"]["Function"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * timeout, "Lambda's advice for SQS event sources"
    assert redrive["maxReceiveCount"] * queue["VisibilityTimeout"] >= 2 * 3600, "retried for hours"
    source = resources["TaskWatchdogFunction"]["Properties"]["Events"]["StoppedTasks"]
    assert source["Type"] == "SQS"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert not any(r["Type"] == "AWS::Lambda::Permission" for r in resources.values()), "nothing invokes it directly"
    alarm = resources["WatchdogDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["WatchdogDeadLetterQueue", "QueueName"]}
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_only_the_watchdog_and_named_operators_read_the_queues_of_live_tokens():
    statements = TEMPLATE["Resources"]["WatchdogQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert "sqs:ReceiveMessage" in deny["Action"] and deny["Principal"] == "*"
    allowed = json.dumps(deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
    assert "TaskWatchdogFunctionRole" in allowed and "DeadLetterReaderArns" in allowed

def functions():
    return {k: r for k, r in TEMPLATE["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def test_reserved_concurrency_is_off_by_default():
    # Lambda keeps 100 units unreserved: reserving any by default fails to deploy on
    # accounts whose quota is below 100 + the reservations (new accounts have 10).
    parameter = TEMPLATE["Parameters"]["ReservedConcurrency"]
    assert parameter["Default"] == 0
    condition = TEMPLATE["Conditions"]["ReserveConcurrency"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReservedConcurrency"}, 0]}]}
    for logical_id, function in functions().items():
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        assert reserved == {"Fn::If": ["ReserveConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}, \
            f"{logical_id}: {reserved}"


def machine_policy(logical_id):
    resource = TEMPLATE["Resources"][logical_id]
    return [s for p in resource["Properties"]["Policies"] for s in p["Statement"]]


def test_run_task_allows_every_revision_of_the_task_families(machine):
    # RunTask is authorised per revision: executions in flight during a stack update
    # still name the old revision.
    name, _, _ = machine
    families = {TEMPLATE["Resources"][t]["Properties"]["Family"]["Fn::Sub"] for t in ("Task1Definition", "Task2Definition")}
    statements = [s for s in machine_policy(name) if s["Action"] == "ecs:RunTask"]
    if name == "PipelineStateMachine":
        assert not statements, "the pipeline runs tasks only through TaskStateMachine"
        return
    assert statements
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        arns = {r["Fn::Sub"] for r in resources}
        if name == "TaskStateMachine":
            # Users' task definitions too: any family named <stack>-*, which covers the stack's.
            expected = {"arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${AWS::StackName}-*:*"}
            assert all(f.startswith("${AWS::StackName}-") for f in families)
        else:
            expected = {"arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/" + f + ":*"
                        for f in families}
        assert arns == expected, arns
        assert statement["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["Cluster", "Arn"]}}}


def test_propagated_tags_are_allowed_at_launch(machine):
    # PropagateTags copies the task definition's tags onto the task; RunTask then needs
    # ecs:TagResource with ecs:CreateAction = RunTask, or every task fails AccessDenied.
    name, _, (definition, _, _) = machine
    propagates = any(s.get("Parameters", {}).get("PropagateTags") for _, s, _ in all_states(definition))
    tagging = [s for s in machine_policy(name) if s["Action"] == "ecs:TagResource"]
    if propagates:
        assert tagging, f"{name}: PropagateTags without ecs:TagResource"
        assert tagging[0]["Condition"] == {"StringEquals": {"ecs:CreateAction": "RunTask"}}


def test_ecs_states_retry_run_task_failures(machine):
    # RunTask answering 200 with `failures` (capacity, ENI limits) fails the state with
    # AmazonECS.Unknown (Step Functions, "Run Amazon ECS or Fargate tasks").
    name, _, (definition, _, _) = machine
    for state_name, state, _ in all_states(definition):
        if state.get("Resource", "").startswith("arn:aws:states:::ecs:runTask"):
            retried = [e for r in state.get("Retry", []) for e in r["ErrorEquals"]]
            assert "AmazonECS.Unknown" in retried, f"{name}.{state_name}"


def test_heartbeat_window_covers_start_up_and_stays_below_the_timeout():
    parameters = TEMPLATE["Parameters"]
    heartbeat, timeout = parameters["HeartbeatSeconds"], parameters["TimeoutSeconds"]
    # Fargate start-up (ENI, image pull) counts against the first heartbeat: 45-50 s
    # cold in public measurements; the minimum leaves more than twice that.
    assert heartbeat["MinValue"] >= 120 and heartbeat["Default"] >= heartbeat["MinValue"]
    # Step Functions rejects HeartbeatSeconds >= TimeoutSeconds; CloudFormation checks
    # parameter ranges before it deploys anything, so the ranges must not overlap.
    assert heartbeat["MaxValue"] < timeout["MinValue"] <= timeout["Default"]
    assert heartbeat["Default"] < timeout["Default"]


def role_statements(logical_id):
    resource = TEMPLATE["Resources"][logical_id]
    props = resource["Properties"]
    if resource["Type"] == "AWS::IAM::Role":
        return [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]
    return [s for p in props["Policies"] for s in p["Statement"]]


@pytest.mark.parametrize("logical_id", ["TaskRole", "PrepareInputFunction"])
def test_readers_may_not_list_the_bucket(logical_id):
    # S3 answers 403 for a missing key to a caller without s3:ListBucket; a grant
    # limited by s3:prefix would not turn it into 404 (the check behind a missing key
    # carries no prefix: docs/aws-conformance.md row 6), and one without a condition
    # would let a task list every execution's keys. The worker reports 403 and 404 on
    # a read as the same Baton.InputIntegrity.
    # prepare-input may list only where a Distributed Map's results are, to find their
    # manifest.json (FindMapResults): limited by s3:prefix, so a missing input is still 403.
    statements = role_statements(logical_id)
    assert [s for s in statements if "s3:GetObject" in s["Action"]], logical_id
    listing = [s for s in statements if "s3:ListBucket" in s["Action"]]
    if logical_id == "PrepareInputFunction":
        assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": "executions/*/items/*"}}], listing
    else:
        assert not listing, logical_id


def test_fargate_spot_is_a_real_choice(machine):
    # The Spot branch of the retry policy can only fire when tasks can run on Spot:
    # every ECS state runs on the chosen capacity provider, which the cluster offers.
    name, resource, (definition, _, _) = machine
    cluster = TEMPLATE["Resources"]["Cluster"]["Properties"]
    assert set(cluster["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    assert set(TEMPLATE["Parameters"]["CapacityProvider"]["AllowedValues"]) == {"FARGATE", "FARGATE_SPOT"}
    ecs_states = [s for _, s, _ in all_states(definition) if s.get("Resource", "").startswith("arn:aws:states:::ecs:")]
    if ecs_states:
        assert resource["Properties"]["DefinitionSubstitutions"]["CapacityProvider"] == {"Ref": "CapacityProvider"}
    for state_name, state, _ in all_states(definition):
        if state.get("Resource", "").startswith("arn:aws:states:::ecs:runTask"):
            parameters = state["Parameters"]
            assert "LaunchType" not in parameters, f"{name}.{state_name}: LaunchType excludes a capacity provider"
            assert parameters["CapacityProviderStrategy"] == [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]


def test_sync_failures_get_typed_errors_and_retries():
    # A .sync task whose essential container exits non-zero (or never runs) fails with
    # States.TaskFailed and its description as cause; a token-less worker never raises
    # Baton.*. So every .sync state catches States.TaskFailed into the watchdog's
    # reading of that cause, which decides the Baton.* error and a retry.
    resource = dict(MACHINES)["SyncStateMachine"]
    definition, _, _ = render(resource)
    states = definition["States"]
    sync_states = [n for n, s in states.items() if s.get("Resource") == "arn:aws:states:::ecs:runTask.sync"]
    assert sync_states
    for name in sync_states:
        catches = states[name]["Catch"]
        assert [c["ErrorEquals"] for c in catches] == [["States.TaskFailed"]], f"{name}: Baton.* can never match here"
        verdict = states[catches[0]["Next"]]
        assert verdict["Parameters"]["FunctionName"] == "sample-TaskWatchdogFunctionArn"
        assert verdict["Parameters"]["Payload"] == {"stoppedTask.$": "$.error.Cause"}
        choice = states[verdict["Next"]]
        assert choice["Type"] == "Choice" and choice["Default"] == "Failed"
        again = states[states[choice["Choices"][0]["Next"]]["Next"]]
        assert again["Next"] == name, "a retry runs the task again"
    assert states["Failed"]["ErrorPath"] == "$.error.Error"


def test_each_task_runs_the_users_image_and_command_when_given():
    # A user's own containers without editing the template: the image and command
    # are parameters, defaulting to the worker image and its built-in jobs.
    resources = TEMPLATE["Resources"]
    for n in ("1", "2"):
        container = resources[f"Task{n}Definition"]["Properties"]["ContainerDefinitions"][0]
        assert container["Image"] == {"Fn::If": [f"HasTask{n}Image", {"Ref": f"Task{n}Image"}, {"Ref": "WorkerImageUri"}]}
        assert container["Command"] == {"Fn::If": [f"HasTask{n}Command", {"Ref": f"Task{n}Command"}, {"Ref": "AWS::NoValue"}]}
        assert TEMPLATE["Parameters"][f"Task{n}Image"]["Default"] == ""
        assert container["ReadonlyRootFilesystem"] is True
        assert container["MountPoints"] == [{"SourceVolume": "scratch", "ContainerPath": "/tmp"}], "a writable /tmp"


def test_the_pipeline_is_built_from_the_reusable_task():
    # Each task of the shipped pipeline is one startExecution.sync:2 state on
    # TaskStateMachine, its data in its own step folder of this execution's, not
    # caught: a failed step fails the pipeline at its own state, which RedriveExecution
    # starts again (a Fail state would be re-entered and fail again), in a child
    # execution whose name carries the redrive count (StartExecution refuses a closed
    # execution's name for 90 days).
    resource = dict(MACHINES)["PipelineStateMachine"]
    definition, _, _ = render(resource)
    assert resource["Properties"]["DefinitionSubstitutions"]["TaskStateMachineArn"] == {"Ref": "TaskStateMachine"}
    steps = {n: s for n, s in definition["States"].items() if s.get("Resource") == "arn:aws:states:::states:startExecution.sync:2"}
    assert list(steps) == ["Task1", "Task2"]
    assert list(definition["States"]) == ["Task1", "Task2", "Done"], "nothing but the steps"
    assert [s["Parameters"]["Input"]["step"] for s in steps.values()] == ["task1", "task2"]
    for name, state in steps.items():
        assert state["Parameters"]["StateMachineArn"] == "sample-TaskStateMachineArn"
        assert state["Parameters"]["Input"]["execution.$"] == "$$.Execution.Name"
        assert "Catch" not in state, "a caught step would end in a Fail state, which a redrive fails again"
        # A nested start refused at the open-executions limit is retried (Step Functions
        # guide, "Start workflow executions from a task state"), under either spelling.
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert retried == {"StepFunctions.ExecutionLimitExceeded", "StepFunctions.ExecutionLimitExceededException"}
        step = state["Parameters"]["Input"]["step"]
        assert state["Parameters"]["Name.$"] == (
            f"States.Format('{{}}-{{}}-{{}}', States.Hash($$.Execution.Id, 'MD5'), '{step}', $$.Execution.RedriveCount)")
    # The reusable task raises a Baton.* error from the state that failed, not through
    # a Fail state: a redrive runs that state again.
    task, _, _ = render(dict(MACHINES)["TaskStateMachine"])
    for name in ("PrepareInput", "RunTask", "OffloadOutput"):
        caught = {e for c in task["States"][name].get("Catch", []) for e in c["ErrorEquals"]}
        assert not {e for e in caught if e.startswith("Baton.") and e != "Baton.TaskStopped"}, (name, caught)
    statements = {s["Sid"]: s for s in machine_policy("PipelineStateMachine")}
    assert statements["RunBatonTasks"]["Resource"] == {"Ref": "TaskStateMachine"}
    assert set(statements["FollowAndStopBatonTasks"]["Action"]) == {"states:DescribeExecution", "states:StopExecution"}
    assert statements["SyncIntegrationRule"]["Resource"]["Fn::Sub"].endswith(
        ":rule/StepFunctionsGetEventsForStepFunctionsExecutionRule")
