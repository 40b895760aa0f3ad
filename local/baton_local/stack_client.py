"""A client of the running local stack (baton_local.stack): for make demo and the
end-to-end tests."""

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]  # local/baton_local/<this file>
# baton_local.stack writes it under BATON_LOCAL_STATE (default .local/): two stacks can
# run side by side, and their clients find each its own.
ENV_FILE = Path(os.environ.get("BATON_LOCAL_STATE", ROOT / ".local")).resolve() / "stack.env"


def read_env() -> dict:
    return dict(line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line)


class Stack:
    """The running local stack: clients, and variants of the deployed pipeline that
    swap in other task definitions (same state machine file, same Lambdas)."""

    def __init__(self, env: dict):
        self.env = env
        kw = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                  aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        self.s3 = boto3.client("s3", **kw)
        self.sfn = boto3.client("stepfunctions", **kw)
        self.ecs = boto3.client("ecs", **kw)
        self.events = boto3.client("events", **kw)
        self.bucket = env["BATON_BUCKET"]
        self.cluster = env["BATON_CLUSTER"]
        self.pipeline = env["BATON_STATE_MACHINE_ARN"]
        self.sync = env["BATON_SYNC_STATE_MACHINE_ARN"]
        self.task = env["BATON_TASK_STATE_MACHINE_ARN"]
        self._definition = self.sfn.describe_state_machine(stateMachineArn=self.pipeline)
        self._task_defs = {}

    def deployed_task_definition(self, n: int) -> str:
        """Task n's task definition: the pipeline passes it to the reusable task."""
        definition = json.loads(self._definition["definition"])
        return definition["States"][f"Task{n}"]["Parameters"]["Input"]["taskDefinition"]

    def task_definition(self, n: int, *, image=None, command=None, job=None, memory=None, stop_timeout=None,
                        environment=None) -> str:
        """A task definition like the deployed task n, with changes."""
        described = self.ecs.describe_task_definition(taskDefinition=self.deployed_task_definition(n), include=["TAGS"])
        base = described["taskDefinition"]
        container = dict(base["containerDefinitions"][0])
        if image:
            container["image"] = image
        if command is not None:
            container["command"] = command
        env = {e["name"]: e["value"] for e in container.get("environment", [])}
        if job:
            env["BATON_JOB"] = job
        env.update(environment or {})
        container["environment"] = [{"name": k, "value": v} for k, v in env.items()]
        if memory:
            container["memory"] = memory
        if stop_timeout is not None:
            container["stopTimeout"] = stop_timeout
        keep = ["family", "taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities", "cpu", "memory"]
        args = {k: base[k] for k in keep if k in base}
        # A new revision of the deployed family, as a user changing a task would
        # register: the state machines' roles may run every revision of it, and
        # no other family (template.yaml, RunAndWatchTasks).
        if described.get("tags"):
            args["tags"] = described["tags"]
        return self.ecs.register_task_definition(containerDefinitions=[container], **args)["taskDefinition"]["taskDefinitionArn"]

    def variant(self, task1=None, task2=None, sync=False, heartbeat_seconds=None) -> str:
        """The deployed callback pipeline (or, with `sync`, the .sync one) with other
        task definitions, and another HeartbeatSeconds if asked."""
        base = self.sfn.describe_state_machine(stateMachineArn=self.sync) if sync else self._definition
        text = base["definition"]
        if task1:
            text = text.replace(json.dumps(self.deployed_task_definition(1)), json.dumps(task1))
        if task2:
            text = text.replace(json.dumps(self.deployed_task_definition(2)), json.dumps(task2))
        if heartbeat_seconds is not None and sync:
            # The task states' HeartbeatSeconds, and what their timeout states tell the watchdog.
            text = re.sub(r'"(H|h)eartbeatSeconds":\s*\d+', rf'"\1eartbeatSeconds": {heartbeat_seconds}', text)
        elif heartbeat_seconds is not None:
            # Each step tells the reusable task its own heartbeat (its heartbeatSeconds input).
            definition = json.loads(text)
            for state in definition["States"].values():
                if state.get("Resource", "").startswith("arn:aws:states:::states:startExecution"):
                    state["Parameters"]["Input"]["heartbeatSeconds"] = heartbeat_seconds
            text = json.dumps(definition)
        machine = self.sfn.create_state_machine(name=f"variant-{uuid.uuid4().hex[:8]}", definition=text,
                                                roleArn=base["roleArn"])["stateMachineArn"]
        self.watch_executions_of(machine)
        return machine

    def watch_executions_of(self, machine: str) -> None:
        """What template.yaml's ExecutionEndedRule does for the stack's own state
        machines, for another one: its executions' ends reach the watchdog."""
        cfn = boto3.client("cloudformation", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"],
                           aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        sqs = boto3.client("sqs", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"],
                           aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        if not hasattr(self, "_watchdog_queue"):
            url = next(r["PhysicalResourceId"]
                       for page in cfn.get_paginator("list_stack_resources").paginate(StackName="baton-local")
                       for r in page["StackResourceSummaries"] if r["LogicalResourceId"] == "WatchdogQueue")
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self._watchdog_queue = (url, arn)
        url, arn = self._watchdog_queue
        name = f"{machine.rsplit(':', 1)[1]}-ended"
        rule = self.events.put_rule(Name=name, EventPattern=json.dumps({
            "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
            "detail": {"status": ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"], "stateMachineArn": [machine]}}))["RuleArn"]
        # The queue's policy lets only the stack's rules send (aws:SourceArn): other
        # rules must be added to it, on AWS as here; one statement for these rules.
        policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
        if not any(st.get("Sid") == "TestRulesDeliver" for st in policy["Statement"]):
            delivers = next(st for st in policy["Statement"] if st.get("Sid") == "EventBridgeDelivers")
            policy["Statement"].append({**delivers, "Sid": "TestRulesDeliver", "Condition": {"ArnLike": {
                "aws:SourceArn": rule.rsplit("/", 1)[0] + "/*-ended"}}})
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        self.events.put_targets(Rule=name, Targets=[{"Id": "watchdog-queue", "Arn": arn}])
        # Before it stops an ended execution's tasks the watchdog reads whether it was
        # redriven since (template.yaml's WatchdogReadsRedrives, for the stack's own
        # state machines): the same grant for these, one statement for them all.
        iam = boto3.client("iam", endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"],
                           aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])
        if not hasattr(self, "_watchdog_role"):
            self._watchdog_role = next(r["PhysicalResourceId"]
                                       for page in cfn.get_paginator("list_stack_resources").paginate(StackName="baton-local")
                                       for r in page["StackResourceSummaries"]
                                       if r["LogicalResourceId"] == "TaskWatchdogFunctionRole")
        try:
            document = iam.get_role_policy(RoleName=self._watchdog_role, PolicyName="TestMachinesRedrives")["PolicyDocument"]
            watched = json.loads(document)["Statement"][0]["Resource"] if isinstance(document, str) \
                else document["Statement"][0]["Resource"]
        except iam.exceptions.NoSuchEntityException:
            watched = []
        watched = [*watched, machine.replace(":stateMachine:", ":execution:") + ":*"]
        iam.put_role_policy(RoleName=self._watchdog_role, PolicyName="TestMachinesRedrives", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Sid": "ReadRedrivesOfTestMachines", "Effect": "Allow",
                                                   "Action": "states:DescribeExecution", "Resource": watched}]}))

    def start(self, machine: str, input_uri: str, name: str = None) -> str:
        name = name or f"e2e-{uuid.uuid4().hex[:10]}"
        return self.sfn.start_execution(stateMachineArn=machine, name=name,
                                        input=json.dumps({"input": input_uri}))["executionArn"]

    def wait(self, execution: str, timeout: float = 120) -> dict:
        """The execution's description once it has ended, a failed pipeline's read as
        its failed step's ([`StackClient.step_failure`])."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.sfn.describe_execution(executionArn=execution)
            if d["status"] != "RUNNING":
                return self.step_failure(d)
            if time.monotonic() > deadline:
                raise AssertionError(f"{execution} still RUNNING after {timeout}s")
            time.sleep(0.2)

    def step_failure(self, d: dict) -> dict:
        """A pipeline that failed at a step (a `startExecution.sync:2` state, not caught:
        so that RedriveExecution resumes there) fails with States.TaskFailed, and its
        cause is the step's execution description: read as the user reads it (`baton`
        does the same), `error` and `cause` become the step's own, and `pipeline` keeps
        the pipeline's. A step's execution that ended without an error of its own
        (stopped, timed out) gives `error` None and its `stepStatus`. A cause that AWS
        cut at 32,768 characters is read from the step's execution itself."""
        if d.get("error") != "States.TaskFailed" or not d.get("cause"):
            return d
        try:
            step = json.loads(d["cause"])
        except ValueError:
            found = re.search(r'"ExecutionArn"\s*:\s*"(arn:[^"]+)"', d["cause"])
            if not found:
                return d
            described = self.sfn.describe_execution(executionArn=found.group(1))
            step = {"ExecutionArn": described["executionArn"], "Status": described["status"],
                    "Error": described.get("error"), "Cause": described.get("cause")}
        if not isinstance(step, dict) or "ExecutionArn" not in step:
            return d
        return {**d, "pipeline": {"error": d["error"], "cause": d["cause"]}, "error": step.get("Error"),
                "cause": step.get("Cause"), "stepExecution": step["ExecutionArn"], "stepStatus": step.get("Status")}

    def history(self, execution: str) -> list:
        events, token = [], None
        while True:
            page = self.sfn.get_execution_history(executionArn=execution, **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def task_arns(self, execution: str) -> list:
        """The ECS tasks an execution started, in order, those of the executions it
        started (its steps, through the reusable task) included."""
        arns = []
        for e in self.history(execution):
            details = e.get("taskSubmittedEventDetails")
            if details and details.get("resourceType") == "ecs":
                arns.append(json.loads(details["output"])["Tasks"][0]["TaskArn"])
            elif details and details.get("resourceType") == "states":
                arns += self.task_arns(json.loads(details["output"])["ExecutionArn"])
        return arns

    def running_tasks_under(self, prefix: str) -> list:
        """ARNs of the cluster's tasks still meant to run whose `BATON_OUTPUT` lies
        under `prefix` (`s3://bucket/executions/<name>/`), found as the watchdog finds
        them: ListTasks with desiredStatus RUNNING alone (startedBy must be the only
        filter, and Step Functions' ECS integration documents no StartedBy), then
        DescribeTasks by 100 for the overrides."""
        arns = [a for page in self.ecs.get_paginator("list_tasks").paginate(
                    cluster=self.cluster, desiredStatus="RUNNING", PaginationConfig={"PageSize": 100})
                for a in page["taskArns"]]
        found = []
        for i in range(0, len(arns), 100):
            for task in self.ecs.describe_tasks(cluster=self.cluster, tasks=arns[i:i + 100])["tasks"]:
                outputs = [kv.get("value", "") for o in task.get("overrides", {}).get("containerOverrides", [])
                           for kv in o.get("environment", []) if kv.get("name") == "BATON_OUTPUT"]
                if any(o.startswith(prefix) for o in outputs):
                    found.append(task["taskArn"])
        return found

    def family(self, execution: str) -> list:
        """The execution and every execution it started (nested workflows), in order."""
        out = [execution]
        for e in self.history(execution):
            details = e.get("taskSubmittedEventDetails")
            if details and details.get("resourceType") == "states":
                out += self.family(json.loads(details["output"])["ExecutionArn"])
        return out

    def wait_for_task(self, execution: str, index: int = 0, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            arns = self.task_arns(execution)
            if len(arns) > index:
                return arns[index]
            time.sleep(0.2)
        raise AssertionError(f"no ECS task {index} for {execution}")

    def put_text(self, key: str, text: bytes) -> str:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=text)
        return f"s3://{self.bucket}/{key}"

    def exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except self.s3.exceptions.ClientError:
            return False


def up() -> bool:
    """Start the local stack unless it runs; True when this call started it."""
    if ENV_FILE.exists():
        return False
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "baton_local.stack", "up"], check=True, cwd=ROOT,
                   env=dict(os.environ))
    return True


def down() -> None:
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "baton_local.stack", "down"], check=True, cwd=ROOT)
