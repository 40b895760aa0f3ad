"""The local stack's moto (baton_local.moto_host) installs the IAM hook from its
environment: with BATON_LOCAL_IAM=enforce a role session without a grant is refused
with the service's own error and the decision is recorded to BATON_LOCAL_IAM_RECORD;
without it nothing is checked."""

import json
import os
import subprocess

import boto3
import pytest
from botocore.exceptions import ClientError

from baton_local.iam.record import read
from baton_local.testing import REGION, VENV_BIN, client, free_port, stop, wait_for_port

ACCOUNT = "123456789012"


def start(tmp_path, **env):
    """moto_host on a free port with `env` (BATON_LOCAL_IAM* unset otherwise): (endpoint, log, process)."""
    port = free_port()
    log = tmp_path / "moto_host.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BATON_LOCAL_IAM")}
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-m", "baton_local.moto_host", "--port", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env={**environment, **env}, start_new_session=True,
    )
    try:
        wait_for_port(port, proc, "moto_host", 60, log)
    except Exception:
        stop(proc)
        raise
    return f"http://127.0.0.1:{port}", log, proc


@pytest.fixture
def enforcing(tmp_path):
    record = tmp_path / "iam.jsonl"
    endpoint, log, proc = start(tmp_path, BATON_LOCAL_IAM="enforce", BATON_LOCAL_IAM_RECORD=str(record))
    try:
        yield endpoint, log, record
    finally:
        stop(proc)


@pytest.fixture
def not_enforcing(tmp_path):
    endpoint, log, proc = start(tmp_path)
    try:
        yield endpoint, log
    finally:
        stop(proc)


def session_without_grants(endpoint, name, service):
    """A role with no policy, assumed through moto's STS: (its client of `service`, session ARN)."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = client(endpoint, "iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    credentials = client(endpoint, "sts").assume_role(RoleArn=role["Arn"], RoleSessionName="host")["Credentials"]
    session = boto3.session.Session(aws_access_key_id=credentials["AccessKeyId"],
                                    aws_secret_access_key=credentials["SecretAccessKey"],
                                    aws_session_token=credentials["SessionToken"], region_name=REGION)
    return session.client(service, endpoint_url=endpoint), f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/host"


def test_enforce_refuses_a_role_without_a_grant_and_records_it(enforcing):
    endpoint, log, record = enforcing
    assert "IAM enforced by role, decisions recorded to " + str(record) in log.read_text()
    url = client(endpoint, "sqs").create_queue(QueueName="host-queue")["QueueUrl"]
    sqs, caller = session_without_grants(endpoint, "host-no-grant", "sqs")
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="hi")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert raised.value.response["Error"]["Message"].startswith(
        f"User: {caller} is not authorized to perform: sqs:SendMessage on resource: "
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:host-queue")
    [line] = [r for r in read(record) if r.request.principal == caller]
    assert (line.request.action, line.allowed, line.operation, line.request.resources) == (
        "sqs:SendMessage", False, "sqs:SendMessage", (f"arn:aws:sqs:{REGION}:{ACCOUNT}:host-queue",))
    assert line.request.role_arn == f"arn:aws:iam::{ACCOUNT}:role/host-no-grant"
    # the static keys are the account's administrator: not checked, not recorded
    client(endpoint, "sqs").send_message(QueueUrl=url, MessageBody="hi")
    assert [r.request.principal for r in read(record)] == [caller]


def test_without_enforce_nothing_is_checked(not_enforcing):
    endpoint, log = not_enforcing
    assert "IAM not enforced (BATON_LOCAL_IAM=)" in log.read_text()
    url = client(endpoint, "sqs").create_queue(QueueName="host-queue")["QueueUrl"]
    sqs, _ = session_without_grants(endpoint, "host-no-grant", "sqs")
    assert sqs.send_message(QueueUrl=url, MessageBody="hi")["MessageId"]
