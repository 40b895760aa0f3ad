"""The local Fargate runner gives each task its task role's credentials, as ECS does:
a session of the role (the task definition's `taskRoleArn`, or RunTask's
`overrides.taskRoleArn`) from STS AssumeRole, never the runner's own keys; no
credentials at all for a task without a task role; and a task whose role cannot be
assumed fails to start (`ResourceInitializationError`) instead of running.

Not a moto fix: the local stack's ECS is the runner (local/fargate), tested here
against moto with Baton's fixes (baton_local.moto_host; once more with IAM enforced by
role) with `local:` Python programs that report what they were given."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from baton_local.testing import REGION, ROOT, VENV_BIN, aws_env, client, free_port, stop, wait_for_port

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RUNNER = TARGET / "debug" / "local-fargate"
CREDENTIAL_VARIABLES = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]

# The task: what it was given, who STS says it is with that, and whether S3 lets it
# write to BUCKET (when it is set).
PROGRAM = r"""
import json, os
import boto3, botocore.exceptions
seen = {k: os.environ.get(k) for k in (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_ENDPOINT_URL", "AWS_REGION")}
try:
    seen["caller"] = boto3.client("sts").get_caller_identity()["Arn"]
except botocore.exceptions.NoCredentialsError as error:
    seen["caller"], seen["error"] = None, type(error).__name__
if os.environ.get("BUCKET") and seen["caller"]:
    try:
        boto3.client("s3").put_object(Bucket=os.environ["BUCKET"], Key="from-the-task", Body=b"x")
        seen["put"] = "ok"
    except botocore.exceptions.ClientError as error:
        seen["put"] = error.response["Error"]["Code"]
print("TASK-REPORT " + json.dumps(seen), flush=True)
"""


def moto_host(log):
    """moto with Baton's fixes on a free port, IAM enforced by role: (endpoint, process)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_LOCAL_IAM")}
    env["BATON_LOCAL_IAM"] = "enforce"
    proc = subprocess.Popen([str(VENV_BIN / "python"), "-m", "baton_local.moto_host", "--port", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_for_port(port, proc, "moto_host", 60, log)
    except BaseException:
        stop(proc)
        raise
    return f"http://127.0.0.1:{port}", proc


@pytest.fixture(scope="module")
def endpoint(host):
    """moto with Baton's fixes, IAM not enforced (conftest's `host`)."""
    return host


@pytest.fixture(scope="module")
def enforcing_endpoint(tmp_path_factory):
    """The same, with IAM enforced by role (baton_local.iam.moto_hook), as `make test-e2e` runs it."""
    endpoint, proc = moto_host(tmp_path_factory.mktemp("moto-iam") / "moto_host.log")
    yield endpoint
    stop(proc)


@pytest.fixture(scope="module")
def built():
    subprocess.run(["cargo", "build", "--locked", "-p", "local-fargate", "--bin", "local-fargate"],
                   cwd=ROOT, check=True, env=dict(os.environ, CARGO_TARGET_DIR=str(TARGET)))
    return RUNNER


class Cluster:
    def __init__(self, endpoint, name):
        self.endpoint, self.name = endpoint, name
        self.ecs, self.iam, ec2 = client(endpoint, "ecs"), client(endpoint, "iam"), client(endpoint, "ec2")
        self.arn = self.ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]
        self.network = {"awsvpcConfiguration": {
            "subnets": [ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
            "securityGroups": [ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]]}}

    def role(self, name):
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        return self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    def definition(self, family, role=None, environment=None):
        extra = {"taskRoleArn": role} if role else {}
        return self.ecs.register_task_definition(
            family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "worker", "image": f"local:{VENV_BIN / 'python'}",
                                   "command": ["-c", PROGRAM], "essential": True,
                                   "environment": [{"name": k, "value": v} for k, v in (environment or {}).items()]}],
            **extra,
        )["taskDefinition"]["taskDefinitionArn"]

    def run(self, definition, **overrides):
        out = self.ecs.run_task(cluster=self.name, taskDefinition=definition, launchType="FARGATE",
                                networkConfiguration=self.network, overrides=overrides)
        assert not out["failures"], out["failures"]
        return out["tasks"][0]["taskArn"]

    def stopped(self, task_arn, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.ecs.describe_tasks(cluster=self.name, tasks=[task_arn])["tasks"][0]
            if task["lastStatus"] == "STOPPED":
                return task
            time.sleep(0.2)
        raise AssertionError(f"{task_arn} did not stop within {timeout}s")


@pytest.fixture
def runner(endpoint, built, tmp_path):
    """Start the runner on a cluster of its own (on `on`, else the module's moto); yields
    (cluster, logs folder)."""
    procs = []

    def start(cluster_name, on=endpoint, **env):
        cluster = Cluster(on, cluster_name)
        logs = tmp_path / cluster_name
        logs.mkdir()
        log = tmp_path / f"{cluster_name}-runner.log"
        # Only what the runner needs: the endpoint and the static (administrator) keys.
        runner_env = dict(aws_env(on), PATH=os.environ["PATH"], HOME=os.environ.get("HOME", "/"), **env)
        proc = subprocess.Popen([str(built), "--cluster", cluster.arn, "--worker", shutil.which("true"),
                                 "--logs", str(logs), "--root", str(tmp_path), "--poll-ms", "100"],
                                env=runner_env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        procs.append(proc)
        return cluster, logs

    yield start
    for proc in procs:
        stop(proc)


def report(logs, task_arn):
    text = (logs / f"{task_arn.rsplit('/', 1)[1]}.log").read_text()
    lines = [line for line in text.splitlines() if line.startswith("TASK-REPORT ")]
    assert lines, f"the task printed no report:\n{text}"
    return json.loads(lines[-1].removeprefix("TASK-REPORT "))


def identity(endpoint, seen):
    """Who STS says the holder of the task's keys is."""
    return boto3.client("sts", endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=seen["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=seen["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=seen["AWS_SESSION_TOKEN"]).get_caller_identity()["Arn"]


def test_a_task_holds_a_session_of_its_task_role(endpoint, runner):
    cluster, logs = runner("roles")
    role = cluster.role("job-role")
    task_arn = cluster.run(cluster.definition("with-role", role))
    task = cluster.stopped(task_arn)
    assert task["stopCode"] == "EssentialContainerExited", task
    assert task["containers"][0]["exitCode"] == 0, task
    seen = report(logs, task_arn)
    assert seen["AWS_ACCESS_KEY_ID"] not in (None, "test"), seen
    assert seen["AWS_SECRET_ACCESS_KEY"] != "test" and seen["AWS_SESSION_TOKEN"], seen
    assert seen["AWS_PROFILE"] is None, seen
    # The endpoint and region are the runner's.
    assert seen["AWS_ENDPOINT_URL"] == endpoint and seen["AWS_REGION"] == REGION, seen
    # Keys moto's STS issued for the role, a session named after the task (as ECS names it).
    session = f"arn:aws:sts::123456789012:assumed-role/job-role/{task_arn.rsplit('/', 1)[1]}"
    assert seen["caller"] == session, seen
    assert identity(endpoint, seen) == session


def test_overrides_task_role_wins_over_the_definitions(endpoint, runner):
    cluster, logs = runner("override")
    definition = cluster.definition("overridden", cluster.role("definition-role"))
    task_arn = cluster.run(definition, taskRoleArn=cluster.role("override-role"))
    cluster.stopped(task_arn)
    seen = report(logs, task_arn)
    assert seen["caller"].startswith("arn:aws:sts::123456789012:assumed-role/override-role/"), seen


def test_tasks_of_one_role_share_its_session_for_a_while(endpoint, runner):
    cluster, logs = runner("shared")
    definition = cluster.definition("shared", cluster.role("shared-role"))
    first, second = cluster.run(definition), cluster.run(definition)
    cluster.stopped(first), cluster.stopped(second)
    a, b = report(logs, first), report(logs, second)
    # One AssumeRole for both (they start together): the session of the one that asked.
    assert a["AWS_ACCESS_KEY_ID"] == b["AWS_ACCESS_KEY_ID"] and a["caller"] == b["caller"], (a, b)
    assert a["caller"].startswith("arn:aws:sts::123456789012:assumed-role/shared-role/"), a


def test_a_task_without_a_task_role_has_no_credentials(endpoint, runner):
    cluster, logs = runner("no-role")
    task_arn = cluster.run(cluster.definition("without-role"))
    task = cluster.stopped(task_arn)
    assert task["containers"][0]["exitCode"] == 0, task
    seen = report(logs, task_arn)
    for key in CREDENTIAL_VARIABLES:
        assert seen[key] is None, (key, seen)
    assert seen["caller"] is None and seen["error"] == "NoCredentialsError", seen
    assert seen["AWS_ENDPOINT_URL"] == endpoint and seen["AWS_REGION"] == REGION, seen


def test_a_task_whose_role_cannot_be_assumed_fails_to_start(endpoint, runner):
    # The runner's STS is a port nobody listens on: AssumeRole fails, ECS and moto work.
    cluster, logs = runner("cannot-assume", AWS_ENDPOINT_URL_STS=f"http://127.0.0.1:{free_port()}")
    role = cluster.role("unreachable-role")
    task_arn = cluster.run(cluster.definition("unreachable", role))
    task = cluster.stopped(task_arn, timeout=120)
    assert task["stopCode"] == "TaskFailedToStart", task
    assert task["stoppedReason"].startswith(f"ResourceInitializationError: unable to assume the task role {role}: "), task
    assert task["containers"][0].get("exitCode") is None, task
    # It never ran: no log, no report.
    assert not (logs / f"{task_arn.rsplit('/', 1)[1]}.log").exists()


def test_with_iam_enforced_the_task_roles_policies_decide_its_calls(enforcing_endpoint, runner):
    cluster, logs = runner("enforced", on=enforcing_endpoint)
    client(enforcing_endpoint, "s3").create_bucket(Bucket="task-roles")
    writer, reader = cluster.role("writer"), cluster.role("reader")
    cluster.iam.put_role_policy(RoleName="writer", PolicyName="put", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::task-roles/*"}]}))
    env = {"BUCKET": "task-roles"}
    tasks = {name: cluster.run(cluster.definition(name, role, env))
             for name, role in [("writer", writer), ("reader", reader), ("nobody", None)]}
    seen = {}
    for name, task_arn in tasks.items():
        cluster.stopped(task_arn)
        seen[name] = report(logs, task_arn)
    # Were the runner's (administrator) keys passed on, every one would be allowed.
    assert seen["writer"]["put"] == "ok", seen
    assert seen["reader"]["put"] == "AccessDenied", seen
    assert seen["nobody"]["error"] == "NoCredentialsError" and "put" not in seen["nobody"], seen
