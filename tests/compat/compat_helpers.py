"""What the compat tests of several services share: a stand-in for `cargo lambda
watch`, an ECS cluster and task definition, and small waits."""

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.exceptions import ClientError

from baton_local.testing import client


ROLE = "arn:aws:iam::123456789012:role/baton-test"


class WatchServer(ThreadingHTTPServer):
    """A stand-in for `cargo lambda watch`'s listener: a tokio listener's backlog of
    1,024, where the standard library's 5 reset connections opened together (CI,
    2026-12-07), which no test here is about."""

    request_queue_size = 1024


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


def receive_all(sqs, queue, seconds):
    deadline, got = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        got += sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", [])
    return got


def wait_for(predicate, seconds=10, what="the condition"):
    """The predicate's first true answer, polled every 0.1 s for `seconds`."""
    deadline = time.monotonic() + seconds
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"no {what} within {seconds}s"
        time.sleep(0.1)
    return found
