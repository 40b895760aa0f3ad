"""compat.asl's fix_asl_integrations_call_with_fixed_keys: moto's interpreter calls every
integration with the fixed keys `ak`/`sk`; with the fix it calls with a session of the
state machine's role (or of the role a state's Credentials names), so that, with the
IAM hook installed, the role's policies decide each call as on AWS."""

import json
import re
from pathlib import Path

import pytest

from baton_local.testing import client
from compat_helpers import ecs_setup, settle
from iam_host import iam_host  # noqa: F401  (a fixture)

ACCOUNT = "123456789012"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def role(endpoint, name, *statements):
    """A role Step Functions may assume, with one inline policy of `statements` (none: no policy)."""
    iam = client(endpoint, "iam")
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": list(statements)}))
    return arn


def run(endpoint, name, role_arn, state, timeout=15):
    """Run a one-state machine with the role: its finished description."""
    sfn = client(endpoint, "stepfunctions")
    arn = sfn.create_state_machine(name=name, roleArn=role_arn, definition=json.dumps(
        {"StartAt": "S", "States": {"S": {**state, "End": True}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    return settle(sfn, execution, timeout)


def caller_identity(endpoint, name, role_arn, credentials_role=None):
    """Who the interpreter's `aws-sdk:sts:getCallerIdentity` call was made as."""
    state = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sts:getCallerIdentity", "Parameters": {}}
    if credentials_role:
        state["Credentials"] = {"RoleArn": credentials_role}
    d = run(endpoint, name, role_arn, state)
    assert d["status"] == "SUCCEEDED", d
    return json.loads(d["output"])["Arn"]


def test_interpreter_client_modules_are_every_module_that_imports_the_factory():
    import moto

    from baton_local.compat.asl import INTERPRETER_CLIENT_MODULES

    root = Path(moto.__file__).parent
    importers = {
        "moto." + ".".join(path.relative_to(root).with_suffix("").parts)
        for path in (root / "stepfunctions").rglob("*.py")
        if re.search(r"\bboto_client_for\b", path.read_text(encoding="utf-8"))
    }
    assert importers == set(INTERPRETER_CLIENT_MODULES), (
        "moto's interpreter imports boto_client_for elsewhere now: update "
        "compat.asl.INTERPRETER_CLIENT_MODULES (fix_asl_integrations_call_with_fixed_keys)")


def test_gap_integrations_call_with_fixed_keys_in_plain_moto(moto):
    machine_role = role(moto, "gap-sessions-machine")
    arn = caller_identity(moto, "gap-sessions", machine_role)
    assert "assumed-role" not in arn, (
        f"moto's interpreter now calls as {arn}: delete compat.fix_asl_integrations_call_with_fixed_keys")


def test_fixed_integrations_call_with_the_execution_role_or_the_states_credentials(host):
    machine_role = role(host, "sessions-machine")
    state_role = role(host, "sessions-state")
    assert caller_identity(host, "sessions-role", machine_role) == \
        f"arn:aws:sts::{ACCOUNT}:assumed-role/sessions-machine/StepFunctions"
    assert caller_identity(host, "sessions-credentials", machine_role, credentials_role=state_role) == \
        f"arn:aws:sts::{ACCOUNT}:assumed-role/sessions-state/StepFunctions"


def test_fixed_the_roles_policies_decide_under_the_iam_hook(iam_host):  # noqa: F811
    endpoint = iam_host.endpoint
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="sessions-data")
    s3.put_object(Bucket="sessions-data", Key="in/x", Body=b"{}")
    state = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
             "Parameters": {"Bucket": "sessions-data", "Key": "in/x"},
             # (moto's execution output cannot hold the answer's datetimes)
             "ResultSelector": {"Length.$": "$.ContentLength"}}

    denied = run(endpoint, "sessions-denied", role(endpoint, "sessions-none"), state)
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/sessions-none/StepFunctions"
    # The error as moto's aws-sdk integration names S3's AccessDenied (s3.AccessDeniedException).
    assert denied["status"] == "FAILED" and "AccessDenied" in denied["error"], denied
    assert denied["cause"].startswith(
        f"User: {session} is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::sessions-data/in/x"), \
        denied
    assert "Status Code: 403" in denied["cause"]
    refused = [d for d in iam_host.decisions("s3:GetObject") if d.request.principal == session]
    assert [d.allowed for d in refused] == [False]

    allowed = run(endpoint, "sessions-allowed", role(endpoint, "sessions-reader", {
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::sessions-data/in/*"}), state)
    assert allowed["status"] == "SUCCEEDED" and json.loads(allowed["output"]) == {"Length": 2}, allowed
    reader = f"arn:aws:sts::{ACCOUNT}:assumed-role/sessions-reader/StepFunctions"
    assert [d.allowed for d in iam_host.decisions("s3:GetObject") if d.request.principal == reader] == [True]


def test_fixed_run_task_is_the_roles_and_the_description_after_it_is_not(iam_host):  # noqa: F811
    # ecs:runTask needs ecs:RunTask only (no ecs:DescribeTasks: that is for .sync);
    # moto describes the task it started to build the state's output.
    endpoint = iam_host.endpoint
    _, definition, subnet, group = ecs_setup(endpoint)
    state = {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask", "Parameters": {
        "LaunchType": "FARGATE", "Cluster": "baton", "TaskDefinition": definition,
        "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": [subnet], "SecurityGroups": [group]}}}}
    cluster = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/baton"

    denied = run(endpoint, "sessions-ecs-denied", role(endpoint, "sessions-ecs-none"), state)
    assert denied["status"] == "FAILED", denied
    assert "AccessDeniedException" in denied["cause"] and (
        f"assumed-role/sessions-ecs-none/StepFunctions is not authorized to perform: ecs:RunTask on resource: "
        f"{definition}") in denied["cause"], denied

    allowed = run(endpoint, "sessions-ecs-allowed", role(endpoint, "sessions-ecs-runner", {
        "Effect": "Allow", "Action": "ecs:RunTask", "Resource": definition,
        "Condition": {"ArnEquals": {"ecs:cluster": cluster}}}), state)
    assert allowed["status"] == "SUCCEEDED", allowed
    assert json.loads(allowed["output"])["Tasks"][0]["TaskDefinitionArn"] == definition
    runner = f"arn:aws:sts::{ACCOUNT}:assumed-role/sessions-ecs-runner/StepFunctions"
    assert [d.allowed for d in iam_host.decisions("ecs:RunTask") if d.request.principal == runner] == [True]
    assert not [d for d in iam_host.decisions("ecs:DescribeTasks") if d.request.principal == runner]

    # .sync polls DescribeTasks with the role: without ecs:DescribeTasks it is refused.
    polled = run(endpoint, "sessions-ecs-sync", role(endpoint, "sessions-ecs-sync", {
        "Effect": "Allow", "Action": "ecs:RunTask", "Resource": definition,
        "Condition": {"ArnEquals": {"ecs:cluster": cluster}}}),
        {**state, "Resource": "arn:aws:states:::ecs:runTask.sync"})
    assert polled["status"] == "FAILED", polled
    assert ("assumed-role/sessions-ecs-sync/StepFunctions is not authorized to perform: ecs:DescribeTasks"
            in polled["cause"]), polled

    # An aws-sdk:ecs:describeTasks state is the role's own call, whatever the ECS
    # integration above may skip: without ecs:DescribeTasks it is refused.
    task = json.loads(allowed["output"])["Tasks"][0]["TaskArn"]
    sdk = run(endpoint, "sessions-ecs-sdk", role(endpoint, "sessions-ecs-sdk"), {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ecs:describeTasks",
        "Parameters": {"Cluster": cluster, "Tasks": [task]}})
    assert sdk["status"] == "FAILED", sdk
    assert "assumed-role/sessions-ecs-sdk/StepFunctions is not authorized to perform: ecs:DescribeTasks" in sdk["cause"]


def test_the_interpreters_calls_are_made_again_when_the_connection_drops_not_when_answered():
    # 1,000 children polling at once: a pooled connection the server had closed failed
    # a nested StartExecution (States.Runtime). A dropped connection is tried again; any
    # answer, an error included, is the state's at once.
    from botocore.exceptions import ClientError, ConnectionClosedError

    from baton_local.compat.asl import _retrying_connections

    class Client:
        def __init__(self, failures):
            self.calls, self.failures = 0, list(failures)

        def _make_api_call(self, operation, params):
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            return {"operation": operation}

    dropped = ConnectionClosedError(endpoint_url="http://localhost:5000")
    client = _retrying_connections(Client([dropped, dropped]))
    assert client._make_api_call("StartExecution", {}) == {"operation": "StartExecution"} and client.calls == 3
    refused = ClientError({"Error": {"Code": "ExecutionLimitExceeded", "Message": "no"}}, "StartExecution")
    client = _retrying_connections(Client([refused]))
    with pytest.raises(ClientError):
        client._make_api_call("StartExecution", {})
    assert client.calls == 1
    client = _retrying_connections(Client([dropped] * 5), attempts=5)
    with pytest.raises(ConnectionClosedError):
        client._make_api_call("StartExecution", {})
    assert client.calls == 5
