"""Watching Baton: the template's alarms and dashboard (no AWS, no network), and
Baton's own metrics on the local stack: a container that crashes before calling back
leaves, in the watchdog's log, one embedded-metric-format (EMF) line that counts its
Baton.* error and says how long its token took to fail after the container stopped.

AWS sources: Step Functions' execution metrics (namespace AWS/States, dimension
StateMachineArn), Lambda's function metrics (AWS/Lambda, FunctionName), the EMF
specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html);
docs/operations.md has the table."""

import json
import re
import time
from pathlib import Path

import pytest

from template_model import ROOT, load_template, state_machines

STATUS_METRICS = {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}
# Where Baton's own metric names are defined: the Lambdas' (the library) and the worker's.
METRIC_SOURCES = [ROOT / "crates/baton/src/metrics.rs", ROOT / "worker-image/src/metrics.rs"]


@pytest.fixture(scope="module")
def template():
    return load_template()


def alarms(template):
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def wired_to_the_topic(props) -> bool:
    return props.get("AlarmActions") == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def dimension(props, name):
    return next((d["Value"] for d in props.get("Dimensions", []) if d["Name"] == name), None)


def test_every_state_machine_has_its_three_alarms_wired_to_the_topic(template):
    by_machine = {}
    for logical_id, props in alarms(template).items():
        if props["Namespace"] == "AWS/States":
            machine = dimension(props, "StateMachineArn")
            assert isinstance(machine, dict) and "Ref" in machine, f"{logical_id}: StateMachineArn is a Ref"
            by_machine.setdefault(machine["Ref"], set()).add(props["MetricName"])
    for logical_id, _ in state_machines(template):
        assert by_machine.get(logical_id) == STATUS_METRICS, f"{logical_id}: {by_machine.get(logical_id)}"


def test_every_alarm_goes_to_the_topic_and_missing_data_is_fine(template):
    found = alarms(template)
    for logical_id, props in found.items():
        assert wired_to_the_topic(props), f"{logical_id}: AlarmActions → AlarmTopicArn under HasAlarmTopic"
        assert props["TreatMissingData"] == "notBreaching", logical_id
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and props["Threshold"] >= 1, logical_id
        assert props.get("AlarmDescription", "").startswith("Baton - "), logical_id
    watched = {(p["Namespace"], p["MetricName"]) for p in found.values()}
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched, "the dead-letter depth"
    assert {("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")} <= watched, "the watchdog's errors"
    for props in found.values():
        if props["Namespace"] == "AWS/Lambda":
            assert dimension(props, "FunctionName") == {"Ref": "TaskWatchdogFunction"}
        if props["Namespace"] == "Baton":
            assert dimension(props, "Stack") == {"Ref": "AWS::StackName"}, "Baton's metrics are per stack"


def test_every_function_names_its_stack_for_the_metrics(template):
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert len(functions) == 3
    for function in functions:
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["BATON_STACK"] == {"Ref": "AWS::StackName"}


def dashboard_body(template) -> str:
    (dashboard,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str), "one Fn::Sub string, every name from the template"
    return body


def test_the_dashboard_names_only_what_the_template_defines(template):
    body = dashboard_body(template)
    names = set(re.findall(r"\$\{([^}!]+)\}", body))
    resources, parameters = template["Resources"], template["Parameters"]
    for name in names:
        if name in PSEUDO_PARAMETERS or name in parameters:
            continue
        logical_id, _, attribute = name.partition(".")
        assert logical_id in resources, f"the dashboard names ${{{name}}}, which the template does not define"
        if attribute:
            assert (resources[logical_id]["Type"], attribute) in {
                ("AWS::SQS::Queue", "QueueName"), ("AWS::SQS::Queue", "Arn"),
            }, f"${{{name}}}: an attribute the test does not know to exist"
    # Valid JSON once CloudFormation has substituted (quotes never come from a name).
    rendered = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))
    widgets = rendered["widgets"]
    # Every alarm is on it; every state machine's executions by status; the Lambdas.
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(alarms(template))
    for logical_id in alarms(template):
        assert f":alarm:${{{logical_id}}}" in body, f"{logical_id} is not on the dashboard"
    for logical_id, _ in state_machines(template):
        for metric in STATUS_METRICS | {"ExecutionsStarted", "ExecutionsSucceeded"}:
            assert f'["AWS/States", "{metric}", "StateMachineArn", "${{{logical_id}}}"' in body, (logical_id, metric)
    for logical_id, r in resources.items():
        if r["Type"] == "AWS::Serverless::Function":
            for metric in ("Errors", "Duration"):
                assert f'["AWS/Lambda", "{metric}", "FunctionName", "${{{logical_id}}}"' in body, (logical_id, metric)
    assert "${WatchdogDeadLetterQueue.QueueName}" in body
    for widget in widgets:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "x", "each metric widget names its region"
        assert widget["x"] + widget["width"] <= 24


def test_the_baton_metrics_watched_are_the_ones_the_code_writes(template):
    """A renamed metric must not leave an alarm or a graph on nothing."""
    body = dashboard_body(template)
    watched = set(re.findall(r'\["Baton", "([A-Za-z]+)"', body))
    watched |= set(re.findall(r'MetricName=\\"([A-Za-z]+)\\"', body))
    watched |= {p["MetricName"] for p in alarms(template).values() if p["Namespace"] == "Baton"}
    assert {"Failures", "StopToFailLatency", "WatchdogEventsRetried"} <= watched
    written = "\n".join(path.read_text() for path in METRIC_SOURCES if path.exists())
    for metric in watched:
        assert f'"{metric}"' in written, f"{metric} is watched but no code writes it"


# ------------------------------------------------------------ on the local stack


def emf_lines(log: Path):
    """Every line of the log that is an EMF document: one bare JSON object."""
    for line in log.read_text(errors="replace").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "CloudWatchMetrics" in doc.get("_aws", {}):
            yield doc


def assert_emf(doc):
    """The EMF specification's rules for the members Baton writes."""
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert isinstance(doc["_aws"]["Timestamp"], int)
    assert directive["Namespace"] == "Baton"
    for dimension_set in directive["Dimensions"]:
        for key in dimension_set:
            assert isinstance(doc[key], str) and doc[key], key
    for metric in directive["Metrics"]:
        assert isinstance(doc[metric["Name"]], (int, float)), metric
    dimensions = {key for s in directive["Dimensions"] for key in s}
    assert dimensions <= {"Stack", "Error"}, "bounded dimensions only: never an execution or a task"


def test_a_crashed_container_is_counted_with_its_stop_to_fail_latency(stack):
    from baton_local import stack_client

    log = stack_client.ENV_FILE.parent / "logs" / "lambda-watch-task-watchdog.log"
    text = stack.put_text("inbox/observability.txt", b"a few words\n")
    machine = stack.variant(task1=stack.task_definition(1, image="local:/bin/sh", command=["-c", "exit 3"]))
    execution = stack.start(machine, text)
    d = stack.wait(execution, 60)
    assert (d["status"], d.get("error")) == ("FAILED", "Baton.ContainerExited"), d
    (task_arn,) = stack.task_arns(execution)
    task = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[task_arn])["tasks"][0]
    death_to_failed_ms = (d["stopDate"] - task["stoppedAt"]).total_seconds() * 1000
    deadline = time.monotonic() + 10
    while True:  # the line is written when SendTaskFailure returns: just before FAILED
        mine = [doc for doc in emf_lines(log) if doc.get("taskArn") == task_arn]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(mine) == 1, f"one EMF line for {task_arn} in {log}"
    (doc,) = mine
    assert_emf(doc)
    assert (doc["Error"], doc["Failures"]) == ("Baton.ContainerExited", 1)
    assert doc["execution"] == execution.rsplit(":", 1)[1], "the execution is a property"
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stack", "Error"], ["Stack"]]
    latency = doc["StopToFailLatency"]
    print(f"\nstop → token failed: {latency} ms (stop → execution FAILED: {death_to_failed_ms:.0f} ms)")
    assert 0 <= latency <= death_to_failed_ms + 1_000
