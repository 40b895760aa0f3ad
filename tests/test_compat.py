"""Each fix of local/compat.py: the gap is still there in the pinned moto (when an
upgrade closes it, the test says which fix to delete) and the fix closes it."""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import REGION, ROOT, VENV_BIN, aws_env, client, free_port, stop, wait_for_port

ROLE = "arn:aws:iam::123456789012:role/baton-test"


class FakeWatch(BaseHTTPRequestHandler):
    """Stands in for `cargo lambda watch`: echoes the event, or fails like it does."""

    calls = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        event = json.loads(body)
        FakeWatch.calls.append((self.path, event))
        if b"please-be-slow" in body:
            time.sleep(4)
        if b"please-fail" in body:
            status, reply = 500, {"errorType": "Baton.InvalidInput", "errorMessage": "asked to fail"}
        elif isinstance(event, dict) and "Records" in event:
            # An SQS batch: report the records that ask for it as failed items.
            status, reply = 200, {"batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if "fail-item" in r["body"]]}
        else:
            status, reply = 200, {"echo": event}
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def fake_watch():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeWatch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def host(fake_watch, tmp_path_factory):
    """moto with Baton's fixes (local/moto_host.py)."""
    port = free_port()
    log = tmp_path_factory.mktemp("host") / "moto_host.log"
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), str(ROOT / "local/moto_host.py"), "--port", str(port),
         "--lambda-endpoint", fake_watch, "--lambda-binaries", json.dumps({"Echo": "echo-binary"})],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_port(port, proc, "moto_host", 60, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def ecs_setup(endpoint):
    ecs, ec2 = client(endpoint, "ecs"), client(endpoint, "ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    ecs.create_cluster(clusterName="baton")
    definition = ecs.register_task_definition(
        family="task1", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "worker", "image": "baton-worker", "memory": 512, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    return ecs, definition, subnet, group


def callback_machine(endpoint, name):
    ecs, definition, subnet, group = ecs_setup(endpoint)
    state = {
        "Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.waitForTaskToken",
        "Parameters": {
            "LaunchType": "FARGATE", "Cluster": "baton", "TaskDefinition": definition,
            "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": [subnet], "SecurityGroups": [group]}},
            "Overrides": {"ContainerOverrides": [{"Name": "worker", "Environment": [
                {"Name": "TASK_TOKEN", "Value.$": "$$.Task.Token"}]}]}},
        "End": True}
    sfn = client(endpoint, "stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=json.dumps({"StartAt": "Run", "States": {"Run": state}}),
                                   roleArn=ROLE)["stateMachineArn"]
    return sfn, ecs, arn


def settle(sfn, execution, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING" or time.monotonic() > deadline:
            return d
        time.sleep(0.1)


def lambda_role(endpoint):
    iam = client(endpoint, "iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    try:
        return iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except ClientError:
        return iam.get_role(RoleName="fn")["Role"]["Arn"]


def wait_for_task(ecs):
    for _ in range(100):
        arns = ecs.list_tasks(cluster="baton")["taskArns"]
        if arns:
            return ecs.describe_tasks(cluster="baton", tasks=arns)["tasks"][0]
        time.sleep(0.1)
    raise AssertionError("no ECS task was started")


def sqs_callback(endpoint, name, heartbeat=None, catch=None):
    """An execution waiting in an SQS .waitForTaskToken state: (sfn, execution, token).
    `catch`: its catchers, each going to a Pass state that ends the execution."""
    sfn, sqs = client(endpoint, "stepfunctions"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
             "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": True}
    states = {"W": state}
    if heartbeat:
        state["HeartbeatSeconds"] = heartbeat
    if catch:
        state["Catch"] = [{"ErrorEquals": [error], "ResultPath": "$.caught", "Next": "Caught"} for error in catch]
        states["Caught"] = {"Type": "Pass", "End": True}
    arn = sfn.create_state_machine(name=name, roleArn=ROLE,
                                   definition=json.dumps({"StartAt": "W", "States": states}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    message = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"][0]
    return sfn, execution, json.loads(message["Body"])["token"]


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def sync_machine(endpoint, name, memory="512"):
    """A one-state machine running task1 with ecs:runTask.sync (or, with a memory the
    local cluster cannot place, any ecs:runTask)."""
    ecs, ec2 = client(endpoint, "ecs"), client(endpoint, "ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    ecs.create_cluster(clusterName="baton")
    definition = ecs.register_task_definition(
        family=f"{name}-def", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory=memory,
        containerDefinitions=[{"name": "worker", "image": "baton-worker", "memory": int(memory), "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::ecs:runTask.sync",
             "Parameters": {"LaunchType": "FARGATE", "Cluster": "baton", "TaskDefinition": definition,
                            "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": [subnet],
                                                                             "SecurityGroups": [group]}}},
             "End": True}
    sfn = client(endpoint, "stepfunctions")
    arn = sfn.create_state_machine(name=name, definition=json.dumps({"StartAt": "Run", "States": {"Run": state}}),
                                   roleArn=ROLE)["stateMachineArn"]
    return sfn, ecs, arn, definition


def role_clients(endpoint, name, list_bucket):
    """An S3 client with the credentials of a fresh role, allowed GetObject on the
    bucket `data`, and ListBucket only if `list_bucket`."""
    iam, sts, s3 = client(endpoint, "iam"), client(endpoint, "sts"), client(endpoint, "s3")
    s3.create_bucket(Bucket="data")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/inbox/*"}]
    if list_bucket:
        statements.append({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
                           "Condition": {"StringLike": {"s3:prefix": ["inbox/*"]}}})
    iam.put_role_policy(RoleName=name, PolicyName="read",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    creds = sts.assume_role(RoleArn=role, RoleSessionName="task")["Credentials"]
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def missing_key_status(s3):
    statuses = []
    for call in (s3.head_object, s3.get_object):
        try:
            call(Bucket="data", Key="inbox/missing.txt")
            statuses.append(200)
        except ClientError as e:
            statuses.append(e.response["ResponseMetadata"]["HTTPStatusCode"])
    return statuses


# ------------------------------------------------------------------ the gaps


def test_gap_ecs_run_task_states_fail_in_plain_moto(moto):
    sfn, _, arn = callback_machine(moto, "gap-ecs")
    execution = sfn.start_execution(stateMachineArn=arn, name="gap-ecs", input="{}")["executionArn"]
    d = settle(sfn, execution)
    assert d["status"] == "FAILED" and d.get("error") == "States.Runtime", (
        f"moto now runs ecs:runTask states ({d['status']}): delete compat.fix_asl_ecs_parameter_normalisation")


def test_gap_send_task_failure_drops_the_cause_in_plain_moto(moto):
    sfn = client(moto, "stepfunctions")
    sqs = client(moto, "sqs")
    queue = sqs.create_queue(QueueName="gap-cause")["QueueUrl"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
             "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}}, "End": True}
    arn = sfn.create_state_machine(name="gap-cause", roleArn=ROLE,
                                   definition=json.dumps({"StartAt": "W", "States": {"W": state}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="gap-cause", input="{}")["executionArn"]
    message = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"][0]
    sfn.send_task_failure(taskToken=json.loads(message["Body"])["token"], error="Baton.X", cause="why")
    d = settle(sfn, execution)
    assert d["status"] == "FAILED" and "cause" not in d, (
        "moto now keeps SendTaskFailure's cause: delete compat.fix_send_task_failure_drops_cause")


def test_gap_submit_task_state_change_missing_in_plain_moto(moto):
    ecs = client(moto, "ecs")
    ecs.create_cluster(clusterName="gap")
    with pytest.raises(Exception) as raised:
        ecs.submit_task_state_change(cluster="gap", task="t", status="STOPPED")
    assert "not" in str(raised.value).lower() or "500" in str(raised.value) or isinstance(raised.value, ClientError), (
        "moto now implements SubmitTaskStateChange: delete compat.fix_ecs_submit_task_state_change_missing")


def test_gap_eventbridge_lambda_targets_fail_in_plain_moto(moto):
    events = client(moto, "events")
    events.put_rule(Name="gap-rule", EventPattern=json.dumps({"source": ["baton.gap"]}))
    events.put_targets(Rule="gap-rule", Targets=[
        {"Id": "fn", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:nothing"}])
    plain = client(moto, "events")
    plain.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(Exception):
        plain.put_events(Entries=[{"Source": "baton.gap", "DetailType": "x", "Detail": "{}"}])


def test_gap_short_tokens_and_closed_tokens_answered_wrongly_in_plain_moto(moto):
    sfn, execution, token = sqs_callback(moto, "gap-tokens")
    assert len(token) < 100, "moto now issues long tokens: delete compat.fix_task_tokens_are_short_uuids"
    sfn.send_task_success(taskToken=token, output="{}")
    settle(sfn, execution)
    closed = (error_code(lambda: sfn.send_task_success(taskToken=token, output="{}")),
              error_code(lambda: sfn.send_task_failure(taskToken=token, error="Baton.X")))
    assert closed == ("InvalidToken", None), (
        f"moto now answers {closed} for a closed token: delete compat.fix_closed_tokens_answer_invalid_token")


def test_gap_run_task_places_everything_in_plain_moto(moto):
    ecs, ec2 = client(moto, "ecs"), client(moto, "ec2")
    _, _, _, definition = sync_machine(moto, "gap-place", memory="61440")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    out = ecs.run_task(cluster="baton", taskDefinition=definition, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})
    assert out["tasks"] and not out["failures"], (
        "moto now reports RunTask failures: delete compat.fix_ecs_run_task_never_reports_failures")


def test_gap_sync_succeeds_on_any_stopped_task_in_plain_moto(monkeypatch):
    # Plain moto cannot run an ECS state at all (the normalisation gap above), so this
    # checks its .sync resolver directly: a STOPPED task with exit code 3 is returned
    # as the state's result instead of failing it.
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_ecs as ecs_module

    class StoppedWithExit3:
        def describe_tasks(self, **_):
            return {"tasks": [{"lastStatus": "STOPPED", "taskArn": "t", "clusterArn": "c",
                               "containers": [{"name": "worker", "exitCode": 3}]}]}

    class Env:
        stack = [{"Tasks": [{"TaskArn": "t", "ClusterArn": "c"}]}]

    class Part:
        region = "us-east-1"

    monkeypatch.setattr(ecs_module, "boto_client_for", lambda **_: StoppedWithExit3())
    state = ecs_module.StateTaskServiceEcs.__new__(ecs_module.StateTaskServiceEcs)
    state._normalise_response = lambda response, service_action_name: response.update(
        Tasks=[{"Containers": [{"ExitCode": c["exitCode"]} for c in response["tasks"][0]["containers"]]}])
    resolved = ecs_module.StateTaskServiceEcs._build_sync_resolver(state, Env(), Part(), {}, None)()
    assert resolved["Containers"][0]["ExitCode"] == 3, (
        "moto's .sync no longer succeeds on a non-zero exit: delete compat.fix_ecs_sync_succeeds_whatever_the_exit_code")

class GrowsWhileRead(dict):
    """A cluster's task dict that RunTask (another thread) adds to while it is read."""
    grow = 1

    def items(self):
        entries = iter(super().items())
        first = next(entries)
        if self.grow:
            self.grow -= 1
            self["arn:aws:ecs:us-east-1:123456789012:task/c/added-meanwhile"] = first[1]
        yield first
        yield from entries

    values = lambda self: (v for _, v in self.items())  # noqa: E731


def ecs_backend_with_a_task(backend_class):
    from types import SimpleNamespace

    backend = backend_class("us-east-1", "123456789012")
    backend.create_cluster("c")
    task = SimpleNamespace(task_arn="arn:aws:ecs:us-east-1:123456789012:task/c/t1", advance=lambda: None)
    backend.tasks["c"] = GrowsWhileRead({task.task_arn: task})
    return backend


def test_gap_ecs_task_reads_race_run_task_in_plain_moto():
    from moto.ecs.models import EC2ContainerServiceBackend

    backend = ecs_backend_with_a_task(EC2ContainerServiceBackend)
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        backend.describe_tasks("c", ["t1"])
        pytest.fail("moto's DescribeTasks now survives concurrent RunTask: delete compat.fix_ecs_task_reads_race_run_task")


def test_fixed_ecs_task_reads_survive_a_concurrent_run_task():
    import compat
    from moto.ecs.models import EC2ContainerServiceBackend

    class Backend(EC2ContainerServiceBackend):
        pass

    compat.fix_ecs_task_reads_race_run_task(Backend)
    backend = ecs_backend_with_a_task(Backend)
    assert [t.task_arn for t in backend.describe_tasks("c", ["t1"])] == ["arn:aws:ecs:us-east-1:123456789012:task/c/t1"]


def test_fixed_callbacks_skip_executions_still_starting():
    # An execution being started has no worker yet; a callback for another
    # execution's token must still find its endpoint (it was HTTP 500).
    from types import SimpleNamespace

    import compat

    endpoint = object()
    starting = SimpleNamespace(exec_worker=None)
    running = SimpleNamespace(exec_worker=SimpleNamespace(env=SimpleNamespace(
        callback_pool_manager={"tok": endpoint})))
    assert compat.callback_endpoint([starting, running], "tok") == (running, endpoint)
    assert compat.callback_endpoint([starting], "tok") is None


def test_gap_asl_drops_run_task_parameters_in_plain_moto():
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_ecs

    assert "CapacityProviderStrategy" not in state_task_service_ecs._SUPPORTED_API_PARAM_BINDINGS["runtask"], (
        "moto now passes CapacityProviderStrategy through: delete compat.fix_asl_ecs_drops_run_task_parameters")


def retried_callback(endpoint, name):
    """An SQS .waitForTaskToken state retried once on Baton.X: the tokens of both attempts."""
    sfn, sqs = client(endpoint, "stepfunctions"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    state = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
             "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
             "Retry": [{"ErrorEquals": ["Baton.X"], "IntervalSeconds": 1, "MaxAttempts": 1}], "End": True}
    arn = sfn.create_state_machine(name=name, roleArn=ROLE,
                                   definition=json.dumps({"StartAt": "W", "States": {"W": state}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    first = json.loads(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"][0]["Body"])["token"]
    sfn.send_task_failure(taskToken=first, error="Baton.X", cause="first attempt")
    second = json.loads(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)["Messages"][0]["Body"])["token"]
    return sfn, execution, first, second


def test_gap_retried_callback_states_reuse_their_token_in_plain_moto(moto):
    _, _, first, second = retried_callback(moto, "gap-retry-token")
    assert first == second, "moto now issues a token per attempt: delete compat.fix_retried_callback_states_reuse_their_token"


def test_gap_a_missing_key_is_404_to_everyone_in_plain_moto(moto):
    s3 = role_clients(moto, "gap-no-list", list_bucket=False)
    assert missing_key_status(s3) == [404, 404], (
        "moto now answers 403 without ListBucket: delete compat.fix_s3_missing_keys_are_404_to_everyone")


def upload_dates(endpoint, bucket):
    """When two uploads, begun a second apart, say they began; and the time between."""
    import datetime

    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket=bucket)
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    s3.create_multipart_upload(Bucket=bucket, Key="a")
    time.sleep(1.1)
    s3.create_multipart_upload(Bucket=bucket, Key="b")
    uploads = {u["Key"]: u["Initiated"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]}
    return before, uploads["a"], uploads["b"]


def test_gap_multipart_uploads_all_begun_in_2010_in_plain_moto(moto):
    _, a, b = upload_dates(moto, "gap-initiated")
    assert a == b and a.year == 2010, "moto now dates uploads: delete compat.fix_s3_multipart_uploads_all_begun_in_2010"


# ------------------------------------------------------------------ the fixes


def test_fixed_ecs_callback_task_runs_and_fails_with_its_cause(host):
    sfn, ecs, arn = callback_machine(host, "fixed-ecs")
    execution = sfn.start_execution(stateMachineArn=arn, name="fixed-ecs", input="{}")["executionArn"]
    task = wait_for_task(ecs)
    env = task["overrides"]["containerOverrides"][0]["environment"]
    token = next(e["value"] for e in env if e["name"] == "TASK_TOKEN")
    sfn.send_task_failure(taskToken=token, error="Baton.OutOfMemory", cause='{"exitCode":137}')
    d = settle(sfn, execution)
    assert (d["status"], d.get("error"), d.get("cause")) == ("FAILED", "Baton.OutOfMemory", '{"exitCode":137}')


def test_fixed_submit_task_state_change_records_exit_codes_and_stop_code(host):
    ecs, definition, subnet, group = ecs_setup(host)
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    arns = []
    for _ in range(3):
        arns.append(ecs.run_task(cluster="baton", taskDefinition=definition, launchType="FARGATE",
                                 networkConfiguration=network)["tasks"][0]["taskArn"])
    exited, never_started, stopped = arns
    ecs.submit_task_state_change(cluster="baton", task=exited, status="STOPPED", reason="Essential container in task exited",
                                 containers=[{"containerName": "worker", "exitCode": 3, "status": "STOPPED"}])
    ecs.submit_task_state_change(cluster="baton", task=never_started, status="STOPPED",
                                 reason="CannotPullContainerError: no such image",
                                 containers=[{"containerName": "worker", "status": "STOPPED", "reason": "CannotPullContainerError"}])
    ecs.stop_task(cluster="baton", task=stopped, reason="Task stopped by user")
    ecs.submit_task_state_change(cluster="baton", task=stopped, status="STOPPED",
                                 containers=[{"containerName": "worker", "exitCode": 143, "status": "STOPPED"}])
    tasks = {t["taskArn"]: t for t in ecs.describe_tasks(cluster="baton", tasks=arns)["tasks"]}
    assert tasks[exited]["lastStatus"] == "STOPPED"
    assert tasks[exited]["stopCode"] == "EssentialContainerExited"
    assert tasks[exited]["containers"][0]["exitCode"] == 3
    assert tasks[never_started]["stopCode"] == "TaskFailedToStart"
    assert "exitCode" not in tasks[never_started]["containers"][0]
    assert tasks[never_started]["stoppedReason"].startswith("CannotPullContainerError")
    assert tasks[stopped]["stopCode"] == "UserInitiated"
    assert tasks[stopped]["containers"][0]["exitCode"] == 143


def test_fixed_lambda_invocations_reach_cargo_lambda_watch(host):
    lam = client(host, "lambda")
    lam.create_function(FunctionName="stack-EchoFunction-abc", Runtime="provided.al2023", Role=lambda_role(host),
                        Handler="bootstrap", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    out = lam.invoke(FunctionName="stack-EchoFunction-abc", Payload=json.dumps({"hello": 1}))
    assert json.loads(out["Payload"].read()) == {"echo": {"hello": 1}}
    assert "FunctionError" not in out
    failed = lam.invoke(FunctionName="stack-EchoFunction-abc", Payload=json.dumps({"please-fail": 1}))
    assert failed.get("FunctionError") == "Handled"
    assert json.loads(failed["Payload"].read())["errorType"] == "Baton.InvalidInput"
    assert FakeWatch.calls[-1][0] == "/2015-03-31/functions/echo-binary/invocations"


def receive_all(sqs, queue, seconds):
    deadline, got = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        got += sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
    return got


def execution_end_events(endpoint, name):
    """Run a Pass state machine named `<name>-Pipeline` under a rule for the stack's
    state machines' status changes (a prefix of their ARN, as template.yaml's rule);
    the events the rule's queue received within a few seconds."""
    sfn, events, sqs = client(endpoint, "stepfunctions"), client(endpoint, "events"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=f"{name}-status")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{name}-status", EventPattern=json.dumps({
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"],
                   "stateMachineArn": [{"prefix": f"arn:aws:states:{REGION}:123456789012:stateMachine:{name}-"}]}}))
    events.put_targets(Rule=f"{name}-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    machine = sfn.create_state_machine(
        name=f"{name}-Pipeline", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    other = sfn.create_state_machine(
        name=f"other-{name}", roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    sfn.start_execution(stateMachineArn=other, name="run-other", input="{}")
    execution = sfn.start_execution(stateMachineArn=machine, name="run-1", input='{"input": "s3://b/k"}')["executionArn"]
    return execution, [json.loads(m["Body"]) for m in receive_all(sqs, queue, 4)]


def test_gap_no_execution_status_change_events_in_plain_moto(moto):
    _, got = execution_end_events(moto, "gap-status")
    assert got == [], "moto now emits execution status events: delete compat.fix_sfn_emits_no_execution_status_change_events"


def test_fixed_an_execution_that_ends_puts_its_status_change_event(host):
    execution, got = execution_end_events(host, "fixed-status")
    assert len(got) == 1, got
    event = got[0]
    assert (event["source"], event["detail-type"]) == ("aws.states", "Step Functions Execution Status Change")
    assert event["resources"] == [execution]
    detail = event["detail"]
    assert (detail["executionArn"], detail["name"], detail["status"]) == (execution, "run-1", "SUCCEEDED")
    assert detail["stopDate"] >= detail["startDate"] > 1_700_000_000_000, "epoch milliseconds, as AWS"
    assert json.loads(detail["input"]) == {"input": "s3://b/k"}


def test_fixed_eventbridge_invokes_lambda_asynchronously_as_aws_does(host):
    # AWS: a Lambda target is an asynchronous invocation. Once Lambda accepted the
    # event, the rule's RetryPolicy and DLQ do not apply: a function error gets the
    # function's async retries, then its OnFailure destination, or is dropped.
    lam, events, sqs = client(host, "lambda"), client(host, "events"), client(host, "sqs")
    fn = lam.create_function(FunctionName="stack-EchoFunction-rule", Runtime="provided.al2023", Role=lambda_role(host),
                             Handler="bootstrap", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    rule_dlq = sqs.create_queue(QueueName="rule-dead-letters")["QueueUrl"]
    on_failure = sqs.create_queue(QueueName="async-on-failure")["QueueUrl"]
    arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.put_function_event_invoke_config(FunctionName=fn, MaximumRetryAttempts=1,
                                         DestinationConfig={"OnFailure": {"Destination": arn(on_failure)}})
    events.put_rule(Name="to-lambda", EventPattern=json.dumps({"source": ["aws.ecs"], "detail": {"lastStatus": ["STOPPED"]}}))
    events.put_targets(Rule="to-lambda", Targets=[{"Id": "fn", "Arn": fn, "DeadLetterConfig": {"Arn": arn(rule_dlq)},
                                                   "RetryPolicy": {"MaximumRetryAttempts": 185}}])
    before = len(FakeWatch.calls)
    for detail in ({"lastStatus": "STOPPED", "n": 1}, {"lastStatus": "RUNNING", "n": 2},
                   {"lastStatus": "STOPPED", "please-fail": 1}):
        events.put_events(Entries=[{"Source": "aws.ecs", "DetailType": "ECS Task State Change",
                                    "Detail": json.dumps(detail)}])
    failed = receive_all(sqs, on_failure, 5)
    delivered = [body for _, body in FakeWatch.calls[before:]]
    assert any(b["detail"].get("n") == 1 for b in delivered), delivered
    assert all(isinstance(b["time"], str) and b["time"].endswith("Z") for b in delivered), "ISO-8601 times, as AWS sends"
    assert not any(b["detail"].get("n") == 2 for b in delivered), "a RUNNING event does not match the rule"
    assert sum("please-fail" in b["detail"] for b in delivered) == 2, "one attempt and MaximumRetryAttempts=1 retry"
    assert failed and json.loads(failed[0]["Body"])["requestPayload"]["detail"]["please-fail"] == 1
    assert not receive_all(sqs, rule_dlq, 1), "the rule's DLQ is only for events Lambda never accepted"


def esm_queue(host, name, visibility=1, max_receives=2):
    lam, sqs = client(host, "lambda"), client(host, "sqs")
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(visibility),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    fn = lam.create_function(FunctionName=f"stack-EchoFunction-{name}", Runtime="provided.al2023",
                             Role=lambda_role(host), Handler="bootstrap",
                             Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})["FunctionArn"]
    lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=fn, BatchSize=10,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    return sqs, queue, dlq


def test_gap_sqs_event_sources_never_retry_or_redrive_in_plain_moto(moto):
    # plain moto invokes once inside SendMessage (here without Docker, so it fails) and
    # never polls again: a failed message neither comes back nor reaches the DLQ.
    sqs, queue, dlq = esm_queue(moto, "gap-esm")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": 1}))
    assert not receive_all(sqs, dlq, 4), (
        "moto now retries SQS event sources into the DLQ: delete compat.fix_sqs_event_source_mappings_ignore_batch_failures")


def test_fixed_sqs_event_sources_retry_failed_items_then_dead_letter_them(host):
    sqs, queue, dlq = esm_queue(host, "fixed-esm")
    before = len(FakeWatch.calls)
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "ok"}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "fail-item"}))
    dead = receive_all(sqs, dlq, 6)
    bodies = [r["body"] for _, e in FakeWatch.calls[before:] if "Records" in e for r in e["Records"]]
    assert bodies.count(json.dumps({"n": "ok"})) == 1, "a handled message is deleted"
    assert bodies.count(json.dumps({"n": "fail-item"})) == 2, "a failed item comes back until maxReceiveCount"
    assert [json.loads(m["Body"]) for m in dead] == [{"n": "fail-item"}]


def test_fixed_sqs_event_sources_run_batches_side_by_side(host):
    # Lambda processes five batches at once: a slow batch does not hold the next.
    sqs, queue, _ = esm_queue(host, "fixed-esm-parallel", visibility=30)
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "please-be-slow"}))
    time.sleep(0.5)  # the slow batch is under way
    sent = time.monotonic()
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"n": "quick"}))
    while not any("quick" in r["body"] for _, e in list(FakeWatch.calls) if "Records" in e for r in e["Records"]):
        assert time.monotonic() - sent < 3, "the second batch waited for the slow one"
        time.sleep(0.05)


def test_fixed_tokens_are_as_long_as_aws_ones_and_closed_ones_time_out(host):
    # AWS: tokens up to 2,048 characters; a closed token answers TaskTimedOut on every
    # callback, and only a token Step Functions never issued answers InvalidToken.
    sfn, execution, token = sqs_callback(host, "fixed-tokens", heartbeat=60)
    assert 2000 <= len(token) <= 2048
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_success(taskToken=token, output="{}")
    assert settle(sfn, execution)["status"] == "SUCCEEDED"
    assert error_code(lambda: sfn.send_task_success(taskToken=token, output="{}")) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_failure(taskToken=token, error="Baton.X")) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_heartbeat(taskToken=token)) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_failure(taskToken="AQCEnot-a-token", error="Baton.X")) == "InvalidToken"


def test_fixed_run_task_failures_fail_the_state_with_amazon_ecs_unknown(host):
    # AWS: RunTask answering 200 with `failures` fails the state with AmazonECS.Unknown.
    sfn, ecs, arn, _ = sync_machine(host, "fixed-place", memory="61440")
    execution = sfn.start_execution(stateMachineArn=arn, name="fixed-place", input="{}")["executionArn"]
    d = settle(sfn, execution)
    assert (d["status"], d.get("error")) == ("FAILED", "AmazonECS.Unknown"), d
    assert json.loads(d["cause"])["Failures"][0]["reason"] == "RESOURCE:MEMORY"
    assert not ecs.list_tasks(cluster="baton", family="fixed-place-def")["taskArns"]


def test_fixed_sync_fails_on_a_non_zero_essential_exit_with_the_task_as_cause(host):
    # AWS: .sync on a task whose essential container exited non-zero fails the state
    # with States.TaskFailed, the cause holding the task description.
    for name, exit_code in (("fixed-sync-ok", 0), ("fixed-sync-exit", 3)):
        sfn, ecs, arn, _ = sync_machine(host, name)
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
        task = None
        for _ in range(100):
            arns = ecs.list_tasks(cluster="baton", family=f"{name}-def")["taskArns"]
            if arns:
                task = arns[0]
                break
            time.sleep(0.1)
        assert task, "no task started"
        ecs.submit_task_state_change(cluster="baton", task=task, status="STOPPED", reason="Essential container in task exited",
                                     containers=[{"containerName": "worker", "exitCode": exit_code, "status": "STOPPED"}])
        d = settle(sfn, execution, timeout=20)
        if exit_code == 0:
            assert d["status"] == "SUCCEEDED", d
        else:
            assert (d["status"], d.get("error")) == ("FAILED", "States.TaskFailed"), d
            cause = json.loads(d["cause"])
            assert cause["Containers"][0]["ExitCode"] == 3 and cause["StopCode"] == "EssentialContainerExited"


def test_fixed_run_task_parameters_reach_ecs(host):
    # Fargate Spot is chosen with CapacityProviderStrategy, which must reach RunTask.
    sfn, ecs, arn = callback_machine(host, "fixed-spot")
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
    parameters = definition["States"]["Run"]["Parameters"]
    del parameters["LaunchType"]
    parameters["CapacityProviderStrategy"] = [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}]
    parameters["StartedBy"] = "baton-test"
    spot = sfn.create_state_machine(name="fixed-spot-2", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    sfn.start_execution(stateMachineArn=spot, name="fixed-spot", input="{}")
    for _ in range(100):
        arns = ecs.list_tasks(cluster="baton", startedBy="baton-test")["taskArns"]
        if arns:
            break
        time.sleep(0.1)
    task = ecs.describe_tasks(cluster="baton", tasks=arns)["tasks"][0]
    assert (task["capacityProviderName"], task["startedBy"]) == ("FARGATE_SPOT", "baton-test")


def test_fixed_every_attempt_of_a_retried_callback_state_has_its_own_token(host):
    sfn, execution, first, second = retried_callback(host, "fixed-retry-token")
    assert first != second
    assert error_code(lambda: sfn.send_task_failure(taskToken=first, error="Baton.X")) == "TaskTimedOut"
    sfn.send_task_success(taskToken=second, output="{}")
    assert settle(sfn, execution)["status"] == "SUCCEEDED"


def test_fixed_a_missing_key_is_403_to_a_role_without_list_bucket(host):
    # S3: without s3:ListBucket a missing key is 403 AccessDenied; with it, 404.
    assert missing_key_status(role_clients(host, "fixed-no-list", list_bucket=False)) == [403, 403]
    assert missing_key_status(role_clients(host, "fixed-list", list_bucket=True)) == [404, 404]
    assert missing_key_status(client(host, "s3")) == [404, 404], "plain keys keep moto's answer"


def test_fixed_multipart_uploads_say_when_they_began(host):
    before, a, b = upload_dates(host, "fixed-initiated")
    assert before <= a < b, (before, a, b)
    assert (b - a).total_seconds() >= 1


def test_gap_heartbeat_timeouts_never_match_states_heartbeat_timeout_in_plain_moto(moto):
    sfn, execution, _ = sqs_callback(moto, "gap-heartbeat", heartbeat=1, catch=["States.HeartbeatTimeout"])
    d = settle(sfn, execution)
    assert (d["status"], d.get("error")) == ("FAILED", "States.Timeout"), (
        f"moto now matches States.HeartbeatTimeout ({d['status']}): delete "
        "compat.fix_sfn_heartbeat_timeouts_never_match_states_heartbeat_timeout")


def test_fixed_a_heartbeat_timeout_matches_both_timeout_catchers(host):
    # AWS: a States.HeartbeatTimeout catcher catches a missed heartbeat, and so does
    # States.Timeout (which also covers TimeoutSeconds).
    for name, catch in (("fixed-heartbeat", ["States.HeartbeatTimeout", "States.Timeout"]),
                        ("fixed-heartbeat-any", ["States.Timeout"])):
        sfn, execution, _ = sqs_callback(host, name, heartbeat=1, catch=catch)
        d = settle(sfn, execution)
        assert d["status"] == "SUCCEEDED", d
        assert json.loads(d["output"])["caught"]["Error"] == "States.Timeout"
    # A state that only catches something else still fails with States.Timeout.
    sfn, execution, _ = sqs_callback(host, "fixed-heartbeat-other", heartbeat=1, catch=["Baton.X"])
    d = settle(sfn, execution)
    assert (d["status"], d.get("error")) == ("FAILED", "States.Timeout")


def test_gap_stop_execution_leaves_a_waiting_execution_running_in_plain_moto(moto):
    sfn, execution, _ = sqs_callback(moto, "gap-stop", heartbeat=60)
    sfn.stop_execution(executionArn=execution)
    time.sleep(1)
    status = sfn.describe_execution(executionArn=execution)["status"]
    assert status == "RUNNING", (
        f"moto now ends a stopped execution ({status}): delete compat.fix_sfn_stop_execution_waits_for_the_callback")


def test_fixed_stop_execution_aborts_at_once_and_closes_the_token(host):
    # AWS: StopExecution → ABORTED at once; the worker's next heartbeat or callback gets
    # TaskTimedOut; one status change event says ABORTED.
    sqs, events = client(host, "sqs"), client(host, "events")
    queue = sqs.create_queue(QueueName="fixed-stop-status")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="fixed-stop-status", EventPattern=json.dumps({
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [{"prefix": f"arn:aws:states:{REGION}:123456789012:stateMachine:fixed-stop"}]}}))
    events.put_targets(Rule="fixed-stop-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    sfn, execution, token = sqs_callback(host, "fixed-stop", heartbeat=2)
    sfn.send_task_heartbeat(taskToken=token)
    sfn.stop_execution(executionArn=execution)
    d = sfn.describe_execution(executionArn=execution)
    assert d["status"] == "ABORTED" and d["stopDate"] >= d["startDate"], d
    assert error_code(lambda: sfn.send_task_heartbeat(taskToken=token)) == "TaskTimedOut"
    assert error_code(lambda: sfn.send_task_success(taskToken=token, output="{}")) == "TaskTimedOut"
    got = [json.loads(m["Body"]) for m in receive_all(sqs, queue, 5)]  # past the 2 s heartbeat window
    assert [e["detail"]["status"] for e in got] == ["ABORTED"], got
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    assert error_code(lambda: sfn.stop_execution(executionArn=execution)) is None, "stopping again is harmless"


def stop_a_running_task(endpoint):
    """RunTask, report it RUNNING as the runner does, StopTask: (ecs, arn, the task as described)."""
    ecs, definition, subnet, group = ecs_setup(endpoint)
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    arn = ecs.run_task(cluster="baton", taskDefinition=definition, launchType="FARGATE",
                       networkConfiguration=network)["tasks"][0]["taskArn"]
    ecs.stop_task(cluster="baton", task=arn, reason="Baton: execution e-1 ended (ABORTED)")
    return ecs, arn, ecs.describe_tasks(cluster="baton", tasks=[arn])["tasks"][0]


def test_gap_stop_task_reports_stopped_at_once_in_plain_moto(moto):
    _, _, task = stop_a_running_task(moto)
    assert task["lastStatus"] == "STOPPED", (
        "moto now keeps a stopping task's last status: delete compat.fix_ecs_stop_task_reports_stopped_at_once")


def test_fixed_stop_task_asks_and_the_task_reports_stopped_when_it_has(host):
    # ECS: StopTask sets desiredStatus STOPPED and the reason; lastStatus follows once
    # the containers are gone (the runner's report), with stopCode UserInitiated.
    ecs, arn, task = stop_a_running_task(host)
    assert (task["desiredStatus"], task["stoppedReason"]) == ("STOPPED", "Baton: execution e-1 ended (ABORTED)")
    assert task["lastStatus"] != "STOPPED", task["lastStatus"]
    ecs.submit_task_state_change(cluster="baton", task=arn, status="STOPPED", reason="Baton: execution e-1 ended (ABORTED)",
                                 containers=[{"containerName": "worker", "exitCode": 137, "status": "STOPPED"}])
    task = ecs.describe_tasks(cluster="baton", tasks=[arn])["tasks"][0]
    assert (task["lastStatus"], task["stopCode"]) == ("STOPPED", "UserInitiated")


def test_fixed_a_stopped_executions_worker_stops_its_job_at_its_next_heartbeat(host):
    # The worker's own path (the watchdog's StopTask is the other): after StopExecution
    # its next heartbeat answers TaskTimedOut, and it stops its job and exits (code 3)
    # instead of running on until the end of a 60 s job.
    client(host, "s3").create_bucket(Bucket="worker-stop")
    sfn, execution, token = sqs_callback(host, "fixed-worker-stop", heartbeat=60)
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    worker = subprocess.Popen(
        [str(Path(target) / "debug" / "baton-worker")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, **aws_env(host), TASK_TOKEN=token, BATON_JOB="sleep", BATON_SLEEP_SECONDS="60",
                 BATON_HEARTBEAT_SECONDS="1", BATON_INPUT='{"inline": "tick"}',
                 BATON_OUTPUT="s3://worker-stop/executions/fixed-worker-stop/task1/"))
    try:
        time.sleep(2)
        sfn.stop_execution(executionArn=execution)
        stopped = time.monotonic()
        code = worker.wait(timeout=15)
        took = time.monotonic() - stopped
    finally:
        worker.kill()
    log = worker.stdout.read()
    assert code == 3 and "heartbeat found the token closed" in log, log[-2000:]
    assert took < 5, f"{took:.1f} s after StopExecution"


def nested(endpoint, name):
    """A parent that runs a child state machine through startExecution.sync:2 twice (the
    child succeeds, then fails with Baton.X): the parent's two execution descriptions."""
    sfn = client(endpoint, "stepfunctions")
    child = sfn.create_state_machine(name=f"{name}-child", roleArn=ROLE, definition=json.dumps({
        "StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "F"}], "Default": "P"},
            "P": {"Type": "Pass", "Parameters": {"doubled.$": "States.MathAdd($.x, $.x)"}, "End": True},
            "F": {"Type": "Fail", "Error": "Baton.X", "Cause": '{"why": "asked to"}'}}}))["stateMachineArn"]
    parent = sfn.create_state_machine(name=f"{name}-parent", roleArn=ROLE, definition=json.dumps({
        "StartAt": "S", "States": {
            "S": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn": child, "Input": {"x.$": "$.x", "fail.$": "$.fail",
                                                                    "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}},
                  "ResultSelector": {"output.$": "$.Output"},
                  "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failed", "Next": "Unwrap"}], "End": True},
            "Unwrap": {"Type": "Pass", "Parameters": {"child.$": "States.StringToJson($.failed.Cause)"}, "End": True}}}))["stateMachineArn"]
    ends = []
    for fail in (False, True):
        execution = sfn.start_execution(stateMachineArn=parent, name=f"{name}-{fail}",
                                        input=json.dumps({"x": 21, "fail": fail}))["executionArn"]
        ends.append(settle(sfn, execution, timeout=20))
    return ends


def test_gap_nested_workflows_fail_in_plain_moto(moto):
    ends = nested(moto, "gap-nested")
    assert [(d["status"], d.get("error")) for d in ends] != [("SUCCEEDED", None)] * 2, (
        "moto now runs nested workflows: delete compat.fix_asl_states_parameter_normalisation "
        "and compat.fix_sfn_start_execution_without_a_name, and check whether a stopped parent now stops "
        "its .sync child (compat.fix_sfn_stopped_parents_leave_sync_children_running, which plain moto "
        "cannot show while nested workflows fail there)")
    sfn = client(moto, "stepfunctions")
    machine = ends[0]["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, input='{"x": 1, "fail": false}')
    assert error_code(lambda: sfn.start_execution(stateMachineArn=machine, input='{"x": 2, "fail": false}')) == \
        "ExecutionAlreadyExists", "moto now names unnamed executions: delete compat.fix_sfn_start_execution_without_a_name"


def test_fixed_a_nested_workflow_returns_its_output_and_its_error_in_the_cause(host):
    # AWS (connect-stepfunctions, .sync:2): the parent's task gets the child's output as
    # JSON in Output; a failed child fails it with States.TaskFailed whose cause is the
    # child's DescribeExecution (Error and Cause inside). Unnamed executions get UUIDs.
    succeeded, failed = nested(host, "fixed-nested")
    assert succeeded["status"] == "SUCCEEDED", succeeded
    assert json.loads(succeeded["output"])["output"] == {"doubled": 42}
    assert failed["status"] == "SUCCEEDED", failed
    child = json.loads(failed["output"])["child"]
    assert (child["Status"], child["Error"], json.loads(child["Cause"])) == ("FAILED", "Baton.X", {"why": "asked to"})
    assert len(child["Name"]) == 36, child["Name"]


def stopped_parent(endpoint, name):
    """A parent waiting on a .sync:2 child (a 60 s Wait), stopped: the child's status a
    moment later."""
    sfn = client(endpoint, "stepfunctions")
    child = sfn.create_state_machine(name=f"{name}-child", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}))["stateMachineArn"]
    parent = sfn.create_state_machine(name=f"{name}-parent", roleArn=ROLE, definition=json.dumps({
        "StartAt": "S", "States": {"S": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                                         "Parameters": {"StateMachineArn": child, "Input": {}}, "End": True}}}))["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=parent, name=f"{name}-1", input="{}")["executionArn"]
    for _ in range(100):
        running = sfn.list_executions(stateMachineArn=child)["executions"]
        if running:
            break
        time.sleep(0.1)
    sfn.stop_execution(executionArn=execution)
    time.sleep(1)
    return sfn.describe_execution(executionArn=running[0]["executionArn"])["status"]


def test_fixed_a_stopped_parent_stops_its_sync_child(host):
    # AWS: the Run a Job (.sync) pattern cancels its job when the state's execution
    # stops; for a nested workflow that is StopExecution on the child (its documented
    # IAM policy grants states:StopExecution on the child's executions).
    assert stopped_parent(host, "fixed-stop-child") == "ABORTED"
