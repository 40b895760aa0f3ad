"""compat.distributed_map: a Distributed Map as Step Functions runs it. Each gap is still
there in the pinned moto (when an upgrade closes it, the test says which fix to delete)
and the fix closes it: integer tolerated failure percentages, the worker's recursion,
child executions ($$.Execution, DescribeExecution, ListExecutions(mapRunArn)), the
tolerated failure threshold, stopping a Map Run, the Map Run's counts and events, the
ResultWriter's files, and ItemBatcher's batches."""

import inspect
import json
import re
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from baton_local.testing import client
from compat_helpers import ROLE, settle, wait_for
from iam_host import iam_host  # noqa: F401  (a fixture)

ACCOUNT = "123456789012"
CHILD_ARN = re.compile(r"^arn:aws:states:us-east-1:123456789012:execution:(?P<machine>[^:/]+)/(?P<label>[^:]+)"
                       r":(?P<name>[0-9a-f-]{36})$")
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ENTRY_FIELDS = {"ExecutionArn", "Input", "InputDetails", "Name", "RedriveCount", "RedriveStatus", "StartDate",
                "StateMachineArn", "Status", "StopDate"}


def distributed_map(states, start="S", **fields):
    """A one-state machine: a Distributed Map over `$` whose item processor is `states`."""
    processor = {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                 "StartAt": start, "States": states}
    return {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}}}


# An item processor that fails the items whose `fail` is true.
FAILING = {"S": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Boom"}],
                 "Default": "Done"},
           "Boom": {"Type": "Fail", "Error": "Baton.Item", "Cause": "asked to fail"},
           "Done": {"Type": "Pass", "End": True}}


def items(count, failing=()):
    return [{"i": i, "fail": i in failing} for i in range(count)]


def start(endpoint, name, definition, execution_input, role=ROLE):
    sfn = client(endpoint, "stepfunctions")
    arn = sfn.create_state_machine(name=name, roleArn=role, definition=json.dumps(definition))["stateMachineArn"]
    return sfn, sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(execution_input))["executionArn"]


def run(endpoint, name, definition, execution_input, timeout=20, role=ROLE):
    """Run the machine to its end: (sfn, its description)."""
    sfn, execution = start(endpoint, name, definition, execution_input, role)
    return sfn, settle(sfn, execution, timeout)


def history(sfn, execution):
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution, maxResults=1000, **({"nextToken": token} if token
                                                                                      else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def the_map_run(sfn, execution):
    runs = wait_for(lambda: sfn.list_map_runs(executionArn=execution)["mapRuns"], what="a Map Run")
    assert len(runs) == 1, runs
    return runs[0]["mapRunArn"]


def children(sfn, map_run_arn, **filters):
    listed, token = [], None
    while True:
        page = sfn.list_executions(mapRunArn=map_run_arn, maxResults=1000, **filters,
                                   **({"nextToken": token} if token else {}))
        listed += page["executions"]
        token = page.get("nextToken")
        if not token:
            return listed


def read_json(s3, bucket, key):
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def with_result_writer(bucket, prefix):
    return {"ResultWriter": {"Resource": "arn:aws:states:::s3:putObject",
                             "Parameters": {"Bucket": bucket, "Prefix": prefix}}}


# --- Pure parts -------------------------------------------------------------------------


def test_fixed_workers_are_bounded_by_max_concurrency_and_10000():
    from baton_local.compat.distributed_map import worker_count

    assert worker_count(0, 100_000) == 10_000  # no MaxConcurrency: AWS's 10,000
    assert worker_count(0, 7) == 7
    assert worker_count(10, 100_000) == 10
    assert worker_count(50_000, 100_000) == 10_000
    assert worker_count(5, 0) == 0


def test_fixed_the_threshold_is_exceeded_above_either_value_and_none_given_tolerates_nothing():
    from baton_local.compat.distributed_map import threshold_exceeded

    assert not threshold_exceeded(0, 10)
    assert threshold_exceeded(1, 10)  # neither given: no failure is tolerated
    assert not threshold_exceeded(3, 10, percentage=30.0)  # 30 % is not above 30 %
    assert threshold_exceeded(4, 10, percentage=30.0)
    assert not threshold_exceeded(3, 10, count=3)
    assert threshold_exceeded(4, 10, count=3)
    assert threshold_exceeded(2, 10, count=1, percentage=50.0)  # either exceeded
    assert threshold_exceeded(6, 10, count=8, percentage=50.0)
    assert not threshold_exceeded(10, 10, percentage=100.0)


def test_fixed_result_files_are_split_by_size_and_listed_with_their_sizes():
    from baton_local.compat.distributed_map import result_files

    entries = [{"Name": f"child-{i}", "Output": "x" * 40} for i in range(10)]
    files, listed = result_files("run-id", "out/", {"SUCCEEDED": entries, "FAILED": entries[:1]}, max_bytes=200)
    succeeded = [f["Key"] for f in listed["SUCCEEDED"]]
    assert succeeded == [f"out/run-id/SUCCEEDED_{n}.json" for n in range(len(succeeded))] and len(succeeded) > 1
    assert [f["Key"] for f in listed["FAILED"]] == ["out/run-id/FAILED_0.json"] and listed["PENDING"] == []
    assert all(len(files[f["Key"]]) == f["Size"] <= 200 for f in listed["SUCCEEDED"])
    assert [e for f in listed["SUCCEEDED"] for e in json.loads(files[f["Key"]])] == entries  # in order, all


# --- Integer ToleratedFailurePercentage ------------------------------------------------


def test_gap_integer_tolerated_failure_percentage_is_refused_in_plain_moto(moto):
    sfn = client(moto, "stepfunctions")
    with pytest.raises(ClientError):
        sfn.create_state_machine(name="gap-dmap-percentage", roleArn=ROLE, definition=json.dumps(
            distributed_map(FAILING, ToleratedFailurePercentage=30)))
        pytest.fail("moto now takes an integer ToleratedFailurePercentage: delete "
                    "compat.fix_sfn_integer_tolerated_failure_percentage_is_refused")


def two_labelled_maps(first, second):
    """Two Distributed Maps in a row, labelled `first` and `second`."""
    one = {k: v for k, v in distributed_map(FAILING)["States"]["M"].items() if k != "End"}
    return {"StartAt": "A", "States": {"A": {**one, "Label": first, "Next": "B"},
                                        "B": {**one, "Label": second, "End": True}}}


def test_gap_two_maps_may_share_a_label_in_plain_moto(moto):
    sfn = client(moto, "stepfunctions")
    assert sfn.create_state_machine(name="gap-dmap-labels", roleArn=ROLE,
                                    definition=json.dumps(two_labelled_maps("items", "items"))), (
        "moto now refuses two Maps with one Label: delete compat.fix_sfn_definitions_accept_duplicate_map_labels")


@pytest.mark.parametrize("label,says", [("x" * 41, "cannot exceed 40 characters"),
                                        ("two words", "invalid character"), ("a:b", "invalid character")])
def test_no_gap_a_long_label_or_one_with_a_forbidden_character_is_refused_in_plain_moto(moto, label, says):
    # Step Functions guide, "Using Map state in Distributed mode", Label: at most 40
    # characters, no whitespace, wildcards, brackets, special or control characters.
    sfn = client(moto, "stepfunctions")
    with pytest.raises(ClientError, match=says):
        sfn.create_state_machine(name="no-gap-dmap-label", roleArn=ROLE,
                                 definition=json.dumps(two_labelled_maps("listed", label)))


def test_fixed_two_maps_with_one_label_are_refused_on_create_and_update(host):
    # Step Functions guide, "Using Map state in Distributed mode", Label: "must be unique
    # within a state machine definition"; nested Maps count too.
    sfn = client(host, "stepfunctions")
    arn = sfn.create_state_machine(name="fixed-labels", roleArn=ROLE, definition=json.dumps(
        two_labelled_maps("listed", "files")))["stateMachineArn"]
    nested = two_labelled_maps("listed", "files")
    inner = {**distributed_map(FAILING)["States"]["M"], "Label": "listed"}
    nested["States"]["B"]["ItemProcessor"] = {**inner["ItemProcessor"], "StartAt": "Inner", "States": {"Inner": inner}}
    for bad in (two_labelled_maps("items", "items"), nested):
        for call in (lambda: sfn.create_state_machine(name="fixed-labels-bad", roleArn=ROLE, definition=json.dumps(bad)),
                     lambda: sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(bad))):
            with pytest.raises(ClientError) as refused:
                call()
            assert refused.value.response["Error"]["Code"] == "InvalidDefinition", refused.value.response
            assert "is not unique" in refused.value.response["Error"]["Message"], refused.value.response
    assert '"files"' in sfn.describe_state_machine(stateMachineArn=arn)["definition"]


# --- Recursion and concurrency ------------------------------------------------------------


def test_gap_the_worker_recurses_once_per_item_in_plain_moto(moto):
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )

    assert "self._eval_pool(" in inspect.getsource(DistributedItemProcessorWorker._eval_pool) and \
        "len(input_items)" in inspect.getsource(DistributedIterationComponent._map_run), (
        "moto's Distributed Map no longer recurses per item nor starts a thread per item: "
        "delete compat.fix_sfn_distributed_map_recurses_once_per_item")
    # One worker for 1,500 items: it dies of RecursionError and the execution never ends.
    sfn, execution = start(moto, "gap-dmap-recursion", distributed_map(
        {"S": {"Type": "Pass", "End": True}}, MaxConcurrency=1), list(range(1500)))
    time.sleep(12)  # the fixed host runs 2,000 in about 2 s
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING", (
        "moto's Distributed Map now runs 1,500 items in one worker: "
        "delete compat.fix_sfn_distributed_map_recurses_once_per_item")
    sfn.stop_execution(executionArn=execution)


def test_fixed_2000_items_run_through_one_worker_and_through_as_many_as_aws_allows(host):
    started = time.monotonic()
    sfn, d = run(host, "dmap-scale-1", distributed_map({"S": {"Type": "Pass", "End": True}}, MaxConcurrency=1),
                 list(range(2000)), timeout=30)
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"]) == list(range(2000)), d.get("error")
    sfn, d = run(host, "dmap-scale-0", distributed_map({"S": {"Type": "Pass", "End": True}}),
                 list(range(2000)), timeout=30)
    assert d["status"] == "SUCCEEDED" and len(json.loads(d["output"])) == 2000
    assert time.monotonic() - started < 30
    counts = sfn.describe_map_run(mapRunArn=the_map_run(sfn, d["executionArn"]))["executionCounts"]
    assert (counts["total"], counts["succeeded"], counts["running"], counts["pending"]) == (2000, 2000, 0, 0)


# --- Child executions -------------------------------------------------------------------

CONTEXT = {"S": {"Type": "Pass", "Parameters": {"id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name",
                                                "input.$": "$$.Execution.Input", "i.$": "$.i"}, "End": True}}


def test_gap_items_share_the_parents_execution_in_plain_moto(moto):
    sfn, d = run(moto, "gap-dmap-children", distributed_map(CONTEXT, Label="Items"), items(2))
    ids = {item["id"] for item in json.loads(d["output"])}
    assert ids == {d["executionArn"]}, (
        f"moto's items now have their own $$.Execution.Id ({ids}): "
        "delete compat.fix_sfn_distributed_map_items_share_the_parents_execution")
    map_run = the_map_run(sfn, d["executionArn"])
    once = boto3.client("stepfunctions", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError):  # (HTTP 500: not retried here)
        once.list_executions(mapRunArn=map_run)
        pytest.fail("moto now lists a Map Run's children: delete "
                    "compat.fix_sfn_map_run_children_are_invisible_to_the_api")


def test_fixed_each_item_is_a_child_execution_with_its_own_context_and_history(host):
    sfn, d = run(host, "dmap-children", distributed_map(CONTEXT, Label="Items"), items(3))
    assert d["status"] == "SUCCEEDED", d
    outputs = json.loads(d["output"])
    map_run = the_map_run(sfn, d["executionArn"])
    assert map_run.startswith(f"arn:aws:states:us-east-1:{ACCOUNT}:mapRun:dmap-children/Items:")
    for i, out in enumerate(outputs):
        match = CHILD_ARN.match(out["id"])
        assert match and (match["machine"], match["label"], match["name"]) == ("dmap-children", "Items", out["name"])
        assert out["i"] == i and out["input"] == {"i": i, "fail": False}  # the child's own input
        child = sfn.describe_execution(executionArn=out["id"])
        assert child["status"] == "SUCCEEDED" and child["mapRunArn"] == map_run and child["name"] == out["name"]
        assert child["stateMachineArn"] == f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dmap-children/Items"
        assert json.loads(child["input"]) == {"i": i, "fail": False} and json.loads(child["output"]) == out
        assert child["stopDate"] >= child["startDate"]
        events = [e["type"] for e in history(sfn, out["id"])]
        assert events == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"], events
    assert len({out["id"] for out in outputs}) == 3
    listed = children(sfn, map_run)
    assert sorted(c["executionArn"] for c in listed) == sorted(out["id"] for out in outputs)
    assert all(c["mapRunArn"] == map_run and c["itemCount"] == 1 and c["status"] == "SUCCEEDED" for c in listed)
    # The parent's history has the Map Run, not the children's states.
    assert "PassStateEntered" not in [e["type"] for e in history(sfn, d["executionArn"])]


def test_fixed_a_failed_child_has_its_error_and_cause(host):
    sfn, d = run(host, "dmap-child-failed", distributed_map(FAILING, ToleratedFailureCount=1), items(3, {1}))
    assert d["status"] == "SUCCEEDED", d
    failed = children(sfn, the_map_run(sfn, d["executionArn"]), statusFilter="FAILED")
    assert len(failed) == 1
    child = sfn.describe_execution(executionArn=failed[0]["executionArn"])
    assert (child["status"], child["error"], child["cause"]) == ("FAILED", "Baton.Item", "asked to fail")
    assert "output" not in child and json.loads(child["input"])["i"] == 1
    assert history(sfn, child["executionArn"])[-1]["type"] == "ExecutionFailed"


def test_fixed_nested_sync_workflows_are_named_and_started_by_their_child(host):
    # What Baton's fan-out does: each item starts a state machine with .sync:2, names it
    # from its own execution and passes its own ARN as the starter.
    sfn = client(host, "stepfunctions")
    inner = sfn.create_state_machine(name="dmap-inner", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    task = {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2", "End": True,
            "Parameters": {"StateMachineArn": inner, "Name.$": "$$.Execution.Name",
                           "Input": {"item.$": "$", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}},
            # (what the test reads; the whole answer works too since
            # compat.fix_sfn_nested_workflow_answers_hold_datetimes)
            "ResultSelector": {"Name.$": "$.Name", "ExecutionArn.$": "$.ExecutionArn", "Output.$": "$.Output"}}
    _, d = run(host, "dmap-nested", distributed_map({"S": task}, Label="Fan"), items(4), timeout=30)
    assert d["status"] == "SUCCEEDED", d
    nested = json.loads(d["output"])
    assert len({n["Name"] for n in nested}) == 4
    for n in nested:
        started_by = n["Output"]["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"]
        assert CHILD_ARN.match(started_by) and started_by.endswith(":" + n["Name"]), n
        assert n["ExecutionArn"] == f"arn:aws:states:us-east-1:{ACCOUNT}:execution:dmap-inner:{n['Name']}"


# --- Tolerated failure ------------------------------------------------------------------


def test_gap_failed_items_are_ignored_in_plain_moto(moto):
    sfn, d = run(moto, "gap-dmap-tolerance", distributed_map(FAILING), items(4, {1}))
    assert d["status"] == "SUCCEEDED" and json.loads(d["output"])[1] is None, (
        f"moto's Distributed Map now fails on a failed item ({d['status']}): "
        "delete compat.fix_sfn_distributed_map_ignores_failed_items")
    counts = sfn.describe_map_run(mapRunArn=the_map_run(sfn, d["executionArn"]))["executionCounts"]
    assert counts["running"] == 1, (
        f"moto's Map Run no longer counts a failed child as running ({counts}): "
        "compat.fix_sfn_distributed_map_items_share_the_parents_execution may keep fewer counts")


@pytest.mark.parametrize("fields, outcome", [
    ({}, "FAILED"),  # none given: no failure tolerated
    ({"ToleratedFailurePercentage": 30}, "SUCCEEDED"),  # 3 of 10 is not above 30 %
    ({"ToleratedFailurePercentage": 20.5}, "FAILED"),
    ({"ToleratedFailureCount": 3}, "SUCCEEDED"),
    ({"ToleratedFailureCount": 2}, "FAILED"),
    ({"ToleratedFailureCount": 5, "ToleratedFailurePercentage": 20}, "FAILED"),  # either exceeded
    ({"ToleratedFailureCountPath": "$.tolerate"}, "SUCCEEDED"),
    ({"ToleratedFailurePercentagePath": "$.percent"}, "FAILED"),
])
def test_fixed_the_map_run_fails_past_its_tolerated_failure_threshold(host, fields, outcome):
    name = "dmap-tolerance-" + re.sub(r"[^a-z0-9]+", "-", json.dumps(fields).lower()).strip("-")
    definition = distributed_map(FAILING, ItemsPath="$.items", MaxConcurrency=1, **fields)
    sfn, d = run(host, name[:80], definition, {"items": items(10, {2, 5, 8}), "tolerate": 3, "percent": 25})
    assert d["status"] == outcome, (fields, d)
    if outcome == "FAILED":
        assert (d["error"], d["cause"]) == ("States.ExceedToleratedFailureThreshold",
                                            "The specified tolerated failure threshold was exceeded"), d
        events = [e for e in history(sfn, d["executionArn"]) if e["type"] == "MapRunFailed"]
        assert events[0]["mapRunFailedEventDetails"]["error"] == "States.ExceedToleratedFailureThreshold"
        assert sfn.describe_map_run(mapRunArn=the_map_run(sfn, d["executionArn"]))["status"] == "FAILED"
    else:
        assert [o for o in json.loads(d["output"]) if o is not None] == [i for i in items(10, {2, 5, 8})
                                                                         if not i["fail"]]


def test_fixed_a_map_run_that_fails_stops_its_running_children_and_can_be_caught(host):
    # Five at a time; item 0 fails after a second, the others wait a minute: the Map Run
    # fails then, the four children running are aborted, the other five never start,
    # and a Catch sees the error.
    processor = {"S": {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Pause"}],
                       "Default": "Sleep"},
                 "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Boom"},
                 "Boom": {"Type": "Fail", "Error": "Baton.Item"},
                 "Sleep": {"Type": "Wait", "Seconds": 60, "End": True}}
    definition = distributed_map(processor, MaxConcurrency=5)
    definition["States"]["M"]["Catch"] = [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"],
                                           "Next": "Caught"}]
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    began = time.monotonic()
    sfn, execution = start(host, "dmap-tolerance-stop", definition, [{"fail": True}] + [{"fail": False}] * 9)
    d = settle(sfn, execution, 20)
    assert d["status"] == "SUCCEEDED" and time.monotonic() - began < 15, d
    assert json.loads(d["output"])["Error"] == "States.ExceedToleratedFailureThreshold"
    counts = sfn.describe_map_run(mapRunArn=the_map_run(sfn, execution))["executionCounts"]
    assert {k: counts[k] for k in ("failed", "aborted", "pending", "running", "succeeded")} == {
        "failed": 1, "aborted": 4, "pending": 5, "running": 0, "succeeded": 0}, counts


def test_fixed_integer_tolerated_failure_percentage_is_taken(host):
    sfn, d = run(host, "dmap-percentage", distributed_map(FAILING, ToleratedFailurePercentage=50), items(4, {0}))
    assert d["status"] == "SUCCEEDED", d
    described = sfn.describe_map_run(mapRunArn=the_map_run(sfn, d["executionArn"]))
    assert described["toleratedFailurePercentage"] == 50.0


# --- Map Run events and counts ------------------------------------------------------------


def test_no_gap_map_run_events_and_list_map_runs_in_plain_moto(moto):
    # moto records MapRunStarted (with the Map Run's ARN) and MapRunSucceeded, and
    # ListMapRuns names the labelled state machine, as AWS does: no fix.
    sfn, d = run(moto, "nogap-dmap-events", distributed_map({"S": {"Type": "Pass", "End": True}}, Label="L"),
                 items(2))
    map_run = the_map_run(sfn, d["executionArn"])
    events = history(sfn, d["executionArn"])
    assert [e["type"] for e in events if e["type"].startswith("MapRun")] == ["MapRunStarted", "MapRunSucceeded"]
    assert next(e for e in events if e["type"] == "MapRunStarted")["mapRunStartedEventDetails"]["mapRunArn"] == map_run
    listed = sfn.list_map_runs(executionArn=d["executionArn"])["mapRuns"][0]
    assert listed["stateMachineArn"] == f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:nogap-dmap-events/L"


def test_fixed_the_map_run_has_its_events_and_counts(host):
    sfn, d = run(host, "dmap-counts", distributed_map(FAILING, ToleratedFailureCount=2, Label="Counted"),
                 items(6, {1, 4}))
    assert d["status"] == "SUCCEEDED", d
    map_run = the_map_run(sfn, d["executionArn"])
    types = [e["type"] for e in history(sfn, d["executionArn"])]
    assert types == ["ExecutionStarted", "MapStateEntered", "MapStateStarted", "MapRunStarted", "MapRunSucceeded",
                     "MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"], types
    started = next(e for e in history(sfn, d["executionArn"]) if e["type"] == "MapRunStarted")
    assert started["mapRunStartedEventDetails"]["mapRunArn"] == map_run
    described = sfn.describe_map_run(mapRunArn=map_run)
    assert described["status"] == "SUCCEEDED" and described["executionArn"] == d["executionArn"]
    for counts in (described["itemCounts"], described["executionCounts"]):
        assert {k: counts[k] for k in ("total", "succeeded", "failed", "running", "pending", "aborted")} == {
            "total": 6, "succeeded": 4, "failed": 2, "running": 0, "pending": 0, "aborted": 0}, counts
    listed = sfn.list_map_runs(executionArn=d["executionArn"])["mapRuns"]
    assert listed[0]["stateMachineArn"] == f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dmap-counts/Counted"


# --- Stop -----------------------------------------------------------------------------------


def test_gap_a_stopped_map_run_succeeds_in_plain_moto(moto):
    sfn, execution = start(moto, "gap-dmap-stop", distributed_map(
        {"S": {"Type": "Wait", "Seconds": 60, "End": True}}), list(range(3)))
    map_run = the_map_run(sfn, execution)
    time.sleep(0.5)
    sfn.stop_execution(executionArn=execution)
    described = wait_for(lambda: (d := sfn.describe_map_run(mapRunArn=map_run))["status"] != "RUNNING" and d,
                         seconds=15, what="the Map Run's end")
    types = [e["type"] for e in history(sfn, execution)]
    assert described["status"] == "SUCCEEDED" and "MapRunAborted" not in types, (
        f"moto now aborts the Map Run of a stopped execution ({described['status']}): "
        "delete compat.fix_sfn_stopped_parents_leave_map_runs_running")


@pytest.fixture
def three_hundred_items(host):
    s3 = client(host, "s3")
    s3.create_bucket(Bucket="dmap-stop")
    s3.put_object(Bucket="dmap-stop", Key="items.json", Body=json.dumps(list(range(300))).encode())


def test_fixed_stopping_the_parent_aborts_the_map_run_and_every_child(host, three_hundred_items):
    # 300 items, 200 at once, each waiting a minute: the stop aborts the 200 running,
    # starts none of the other 100, and the Map Run is ABORTED.
    sfn, execution = start(host, "dmap-stop", distributed_map(
        {"S": {"Type": "Wait", "Seconds": 60, "End": True}}, MaxConcurrency=200, ItemReader={
            "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "dmap-stop", "Key": "items.json"}}), {})
    map_run = the_map_run(sfn, execution)
    wait_for(lambda: sfn.describe_map_run(mapRunArn=map_run)["executionCounts"]["running"] == 200,
             seconds=20, what="200 children running")
    sfn.stop_execution(executionArn=execution)
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    described = wait_for(lambda: (d := sfn.describe_map_run(mapRunArn=map_run))["status"] != "RUNNING" and d,
                         seconds=15, what="the Map Run's end")
    counts = described["executionCounts"]
    assert described["status"] == "ABORTED" and (counts["aborted"], counts["pending"], counts["running"]) == (
        200, 100, 0), described
    assert len(children(sfn, map_run, statusFilter="ABORTED")) == 200 and len(children(sfn, map_run)) == 200
    assert "MapRunAborted" in [e["type"] for e in history(sfn, execution)]
    time.sleep(1)
    assert len(children(sfn, map_run)) == 200  # and no more start


def test_fixed_stopping_the_parent_stops_the_childrens_sync_executions(host):
    sfn = client(host, "stepfunctions")
    sleeper = sfn.create_state_machine(name="dmap-sleeper", roleArn=ROLE, definition=json.dumps(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 120, "End": True}}}))["stateMachineArn"]
    task = {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2", "End": True,
            "Parameters": {"StateMachineArn": sleeper, "Name.$": "$$.Execution.Name", "Input": {}}}
    sfn, execution = start(host, "dmap-stop-sync", distributed_map({"S": task}), list(range(20)))
    wait_for(lambda: len(sfn.list_executions(stateMachineArn=sleeper, statusFilter="RUNNING")["executions"]) == 20,
             seconds=20, what="20 nested executions")
    sfn.stop_execution(executionArn=execution)
    wait_for(lambda: len(sfn.list_executions(stateMachineArn=sleeper, statusFilter="ABORTED")["executions"]) == 20,
             seconds=15, what="the nested executions stopped")
    map_run = the_map_run(sfn, execution)
    assert len(children(sfn, map_run, statusFilter="ABORTED")) == 20


def test_fixed_stop_execution_stops_one_child(host):
    sfn, execution = start(host, "dmap-stop-child", distributed_map(
        {"S": {"Type": "Wait", "Seconds": 60, "End": True}}, ToleratedFailureCount=1), list(range(2)))
    map_run = the_map_run(sfn, execution)
    running = wait_for(lambda: len(c := children(sfn, map_run)) == 2 and c, what="two children")
    sfn.stop_execution(executionArn=running[0]["executionArn"])
    child = wait_for(lambda: (c := sfn.describe_execution(executionArn=running[0]["executionArn"]))["status"]
                     != "RUNNING" and c, what="the child's end")
    assert child["status"] == "ABORTED"
    assert sfn.describe_execution(executionArn=running[1]["executionArn"])["status"] == "RUNNING"
    sfn.stop_execution(executionArn=execution)


# --- ResultWriter -------------------------------------------------------------------------


def test_gap_result_writer_writes_an_empty_manifest_in_plain_moto(moto):
    client(moto, "s3").create_bucket(Bucket="gap-dmap-results")
    _, d = run(moto, "gap-dmap-results", distributed_map(
        {"S": {"Type": "Pass", "End": True}}, **with_result_writer("gap-dmap-results", "out")), items(3))
    keys = [o["Key"] for o in client(moto, "s3").list_objects_v2(Bucket="gap-dmap-results")["Contents"]]
    assert len(keys) == 1 and keys[0].endswith("/manifest.json"), (
        f"moto now writes result files ({keys}): delete compat.fix_sfn_result_writer_writes_an_empty_manifest")


def test_fixed_result_writer_writes_the_children_by_status_and_a_manifest(host):
    s3 = client(host, "s3")
    s3.create_bucket(Bucket="dmap-results")
    sfn, d = run(host, "dmap-results", distributed_map(
        FAILING, ToleratedFailureCount=2, Label="Out", **with_result_writer("dmap-results", "jobs")),
        items(5, {1, 3}))
    assert d["status"] == "SUCCEEDED", d
    map_run = the_map_run(sfn, d["executionArn"])
    run_id = map_run.split(":")[-1]
    assert json.loads(d["output"]) == {"MapRunArn": map_run, "ResultWriterDetails": {
        "Bucket": "dmap-results", "Key": f"jobs/{run_id}/manifest.json"}}
    manifest = read_json(s3, "dmap-results", f"jobs/{run_id}/manifest.json")
    assert manifest == {"DestinationBucket": "dmap-results", "MapRunArn": map_run, "ResultFiles": {
        "FAILED": [{"Key": f"jobs/{run_id}/FAILED_0.json", "Size": manifest["ResultFiles"]["FAILED"][0]["Size"]}],
        "PENDING": [],
        "SUCCEEDED": [{"Key": f"jobs/{run_id}/SUCCEEDED_0.json",
                       "Size": manifest["ResultFiles"]["SUCCEEDED"][0]["Size"]}]}}
    for listed in manifest["ResultFiles"]["FAILED"] + manifest["ResultFiles"]["SUCCEEDED"]:
        assert s3.head_object(Bucket="dmap-results", Key=listed["Key"])["ContentLength"] == listed["Size"]

    succeeded = read_json(s3, "dmap-results", f"jobs/{run_id}/SUCCEEDED_0.json")
    assert [json.loads(e["Input"])["i"] for e in succeeded] == [0, 2, 4]
    for entry in succeeded:
        assert set(entry) == ENTRY_FIELDS | {"Output", "OutputDetails", "RedriveStatusReason"}, entry
        assert json.loads(entry["Output"]) == json.loads(entry["Input"]) and entry["Status"] == "SUCCEEDED"
        assert entry["InputDetails"] == entry["OutputDetails"] == {"Included": True}
        assert CHILD_ARN.match(entry["ExecutionArn"]) and entry["ExecutionArn"].endswith(":" + entry["Name"])
        assert entry["StateMachineArn"] == f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dmap-results/Out"
        assert ISO_MILLIS.match(entry["StartDate"]) and ISO_MILLIS.match(entry["StopDate"])
        assert (entry["RedriveCount"], entry["RedriveStatus"]) == (0, "NOT_REDRIVABLE")
        child = sfn.describe_execution(executionArn=entry["ExecutionArn"])
        assert child["status"] == "SUCCEEDED" and child["mapRunArn"] == map_run
    failed = read_json(s3, "dmap-results", f"jobs/{run_id}/FAILED_0.json")
    assert [json.loads(e["Input"])["i"] for e in failed] == [1, 3]
    for entry in failed:
        assert set(entry) == ENTRY_FIELDS | {"Error", "Cause"}, entry
        assert (entry["Status"], entry["Error"], entry["Cause"]) == ("FAILED", "Baton.Item", "asked to fail")
    counts = sfn.describe_map_run(mapRunArn=map_run)["itemCounts"]
    assert counts["resultsWritten"] == 5, counts


def test_fixed_results_are_written_when_the_map_run_fails(host):
    # One child at a time; the first fails: the Map Run fails at once, its one failed
    # child in FAILED_0.json and the four items never started in PENDING_0.json, each
    # with the input its child would have had (Baton's {"index", "input"} selection).
    s3 = client(host, "s3")
    s3.create_bucket(Bucket="dmap-results-failed")
    processor = {"S": {"Type": "Choice", "Choices": [{"Variable": "$.input.fail", "BooleanEquals": True,
                                                      "Next": "Boom"}], "Default": "Done"},
                 "Boom": {"Type": "Fail", "Error": "Baton.Item", "Cause": "asked to fail"},
                 "Done": {"Type": "Pass", "End": True}}
    selector = {"index.$": "$$.Map.Item.Index", "input.$": "$$.Map.Item.Value", "run.$": "$.run"}
    sfn, d = run(host, "dmap-results-failed", distributed_map(
        processor, MaxConcurrency=1, ItemsPath="$.items", ItemSelector=selector,
        **with_result_writer("dmap-results-failed", "")), {"items": items(5, {0}), "run": "r1"})
    assert (d["status"], d["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold"), d
    run_id = the_map_run(sfn, d["executionArn"]).split(":")[-1]
    manifest = read_json(s3, "dmap-results-failed", f"{run_id}/manifest.json")
    assert [f["Key"] for f in manifest["ResultFiles"]["FAILED"]] == [f"{run_id}/FAILED_0.json"]
    assert [f["Key"] for f in manifest["ResultFiles"]["PENDING"]] == [f"{run_id}/PENDING_0.json"]
    assert manifest["ResultFiles"]["SUCCEEDED"] == []
    failed = read_json(s3, "dmap-results-failed", f"{run_id}/FAILED_0.json")
    assert [json.loads(e["Input"]) for e in failed] == [{"index": 0, "input": items(5, {0})[0], "run": "r1"}]
    pending = read_json(s3, "dmap-results-failed", f"{run_id}/PENDING_0.json")
    assert [(json.loads(e["Input"]), e["Status"]) for e in pending] == [
        ({"index": i, "input": items(5, {0})[i], "run": "r1"}, "PENDING") for i in range(1, 5)]


def test_fixed_result_writer_writes_with_the_state_machine_role(iam_host):  # noqa: F811
    endpoint = iam_host.endpoint
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="dmap-results-role")
    iam = client(endpoint, "iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="dmap-writer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="dmap-writer", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject",
                                                 "Resource": "arn:aws:s3:::dmap-results-role/allowed/*"}]}))
    processor = {"S": {"Type": "Pass", "End": True}}

    _, allowed = run(endpoint, "dmap-writer-allowed", distributed_map(
        processor, **with_result_writer("dmap-results-role", "allowed")), items(2), role=role)
    assert allowed["status"] == "SUCCEEDED", allowed
    _, denied = run(endpoint, "dmap-writer-denied", distributed_map(
        processor, **with_result_writer("dmap-results-role", "denied")), items(2), role=role)
    assert (denied["status"], denied["error"]) == ("FAILED", "States.ResultWriterFailed"), denied
    assert "is not authorized to perform: s3:PutObject" in denied["cause"]
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/dmap-writer/StepFunctions"
    decisions = [d for d in iam_host.decisions("s3:PutObject") if d.request.principal == session]
    assert [d.allowed for d in decisions] == [True, True, False], decisions  # SUCCEEDED_0, manifest; refused


# --- ItemBatcher ----------------------------------------------------------------------------

PASS = {"S": {"Type": "Pass", "End": True}}
# An item processor (for batches) that fails a batch whose first item's `fail` is true
# (its output: the batch and that item as `first`). moto reads `$.Items[0].fail` as
# `[true]`, so the item is taken out first.
FAILING_BATCH = {"S": {"Type": "Pass", "InputPath": "$.Items[0]", "ResultPath": "$.first", "Next": "C"},
                 "C": {"Type": "Choice", "Choices": [{"Variable": "$.first.fail", "BooleanEquals": True,
                                                      "Next": "Boom"}], "Default": "Done"},
                 "Boom": {"Type": "Fail", "Error": "Baton.Batch", "Cause": "asked to fail"},
                 "Done": {"Type": "Pass", "End": True}}


def child_inputs(sfn, map_run_arn):
    """The children of a Map Run: [(its input, its ListExecutions itemCount)], in item order."""
    listed = [(json.loads(sfn.describe_execution(executionArn=c["executionArn"])["input"]), c["itemCount"])
              for c in children(sfn, map_run_arn)]
    return sorted(listed, key=lambda pair: json.dumps(pair[0]["Items"][0], sort_keys=True))


def compact_size(value):
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def test_fixed_batches_take_the_next_items_within_both_limits():
    from baton_local.compat.distributed_map import MAX_INPUT_BYTES_PER_BATCH, item_batches

    assert item_batches(list(range(7)), max_items=3) == [{"Items": [0, 1, 2]}, {"Items": [3, 4, 5]}, {"Items": [6]}]
    assert item_batches([1, 2], max_items=5, batch_input={"b": 1}) == [{"Items": [1, 2], "BatchInput": {"b": 1}}]
    words = ["x" * 10] * 5  # 12 bytes each in JSON
    two = compact_size({"Items": words[:2]})  # 12 for {"Items":[]}, 12 a word, 1 for the comma
    assert two == 37 and [len(b["Items"]) for b in item_batches(words, max_bytes=two)] == [2, 2, 1]
    assert [len(b["Items"]) for b in item_batches(words, max_bytes=two - 1)] == [1, 1, 1, 1, 1]
    assert [len(b["Items"]) for b in item_batches(words, max_items=2, max_bytes=1000)] == [2, 2, 1]
    two_with_input = compact_size({"Items": words[:2], "BatchInput": {"run": "r1"}})  # BatchInput counts too
    for limit, sizes in ((two_with_input, [2, 2, 1]), (two_with_input - 1, [1, 1, 1, 1, 1])):
        batches = item_batches(words, max_bytes=limit, batch_input={"run": "r1"})
        assert [len(b["Items"]) for b in batches] == sizes and all(compact_size(b) <= limit for b in batches)
    assert [b["Items"] for b in item_batches(["x" * 50, "y"], max_bytes=20)] == [["x" * 50], ["y"]]  # alone
    assert len(item_batches(["z" * 1000] * 600)) == 3 and all(  # no limit given: 256 KiB
        compact_size(b) <= MAX_INPUT_BYTES_PER_BATCH for b in item_batches(["z" * 1000] * 600))
    assert item_batches([]) == []


def test_gap_item_batcher_is_refused_in_plain_moto(moto):
    sfn = client(moto, "stepfunctions")
    with pytest.raises(ClientError):
        sfn.create_state_machine(name="gap-dmap-batcher", roleArn=ROLE, definition=json.dumps(
            distributed_map(PASS, ItemBatcher={"MaxItemsPerBatch": 2})))
        pytest.fail("moto now takes an ItemBatcher: delete compat.fix_sfn_distributed_map_refuses_item_batcher")


def test_fixed_each_batch_of_selected_items_is_a_child_execution_with_its_batch_input(host):
    # 7 items, 3 a batch: 3 children, each input {"Items": [the selected items], "BatchInput"}
    # (ItemSelector first, in the parent's context; BatchInput from the state's input and
    # context); the Map's output one element per batch, in order; itemCounts count items,
    # executionCounts children.
    selector = {"index.$": "$$.Map.Item.Index", "i.$": "$$.Map.Item.Value.i", "run.$": "$.run"}
    batch_input = {"run.$": "$.run", "parent.$": "$$.Execution.Name", "fixed": 1}
    sfn, d = run(host, "dmap-batches", distributed_map(
        PASS, ItemsPath="$.items", ItemSelector=selector, Label="Batches", Comment="kept",
        ItemBatcher={"MaxItemsPerBatch": 3, "BatchInput": batch_input}), {"items": items(7), "run": "r1"})
    assert d["status"] == "SUCCEEDED", d
    selected = [{"index": i, "i": i, "run": "r1"} for i in range(7)]
    expected = [{"Items": selected[k:k + 3], "BatchInput": {"run": "r1", "parent": "dmap-batches", "fixed": 1}}
                for k in (0, 3, 6)]
    assert json.loads(d["output"]) == expected
    map_run = the_map_run(sfn, d["executionArn"])
    assert child_inputs(sfn, map_run) == [(batch, len(batch["Items"])) for batch in expected]
    described = sfn.describe_map_run(mapRunArn=map_run)
    assert {k: described["itemCounts"][k] for k in ("total", "succeeded", "pending", "running")} == {
        "total": 7, "succeeded": 7, "pending": 0, "running": 0}, described["itemCounts"]
    assert {k: described["executionCounts"][k] for k in ("total", "succeeded", "pending", "running")} == {
        "total": 3, "succeeded": 3, "pending": 0, "running": 0}, described["executionCounts"]
    machine = sfn.describe_state_machine(stateMachineArn=d["stateMachineArn"])
    assert json.loads(machine["definition"])["States"]["M"]["ItemBatcher"]["MaxItemsPerBatch"] == 3


def test_fixed_batches_honour_max_input_bytes_and_the_path_forms(host):
    # MaxItemsPerBatchPath and MaxInputBytesPerBatchPath read from the state's input:
    # each batch holds as many of the next items as both limits allow.
    words = [{"w": "x" * (10 + i % 7)} for i in range(40)]
    sfn, d = run(host, "dmap-batch-bytes", distributed_map(
        PASS, ItemsPath="$.words", ItemBatcher={"MaxItemsPerBatchPath": "$.per", "MaxInputBytesPerBatchPath": "$.bytes",
                                                "BatchInput": {"tag": "t"}}),
        {"words": words, "per": 6, "bytes": 160})
    assert d["status"] == "SUCCEEDED", d
    batches = json.loads(d["output"])
    assert [item for batch in batches for item in batch["Items"]] == words  # all, in order
    for batch, after in zip(batches, batches[1:]):
        assert compact_size(batch) <= 160 and len(batch["Items"]) <= 6, batch
        fuller = {**batch, "Items": batch["Items"] + after["Items"][:1]}
        assert len(batch["Items"]) == 6 or compact_size(fuller) > 160, batch  # the next item did not fit
    assert len(children(sfn, the_map_run(sfn, d["executionArn"]))) == len(batches)
    # A path that selects no positive integer fails the Map state when its Map Run starts.
    _, bad = run(host, "dmap-batch-bad-path", distributed_map(
        PASS, ItemsPath="$.items", ItemBatcher={"MaxItemsPerBatchPath": "$.per"}), {"items": [1, 2], "per": "six"})
    assert (bad["status"], bad["error"]) == ("FAILED", "States.Runtime") and "MaxItemsPerBatchPath" in bad["cause"], bad


def test_fixed_an_invalid_item_batcher_is_refused(host):
    # Amazon States Language, "Batching Items": at least one of the four limits, a field
    # and its Path never together, positive integers.
    sfn = client(host, "stepfunctions")
    for batcher in ({}, {"MaxItemsPerBatch": 0}, {"MaxInputBytesPerBatch": "10"},
                    {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}, {"MaxItemsPerBatch": 2, "Unknown": 1},
                    {"BatchInput": {"a": 1}}, {"MaxInputBytesPerBatchPath": "n"}, []):
        with pytest.raises(ClientError) as refused:
            sfn.create_state_machine(name="dmap-batcher-invalid", roleArn=ROLE,
                                     definition=json.dumps(distributed_map(PASS, ItemBatcher=batcher)))
        assert refused.value.response["Error"]["Code"] == "InvalidDefinition", batcher
        assert "ItemBatcher" in refused.value.response["Error"]["Message"], batcher


@pytest.mark.parametrize("tolerated, outcome", [(1, "FAILED"), (2, "SUCCEEDED")])
def test_fixed_the_tolerated_failure_threshold_counts_a_failed_batchs_items(host, tolerated, outcome):
    # 10 items, 2 a batch: the first batch fails, one child but two items. AWS counts the
    # threshold in items (UpdateMapRun: "The maximum number of failed items"): a count of
    # 1 is exceeded, 2 is not.
    sfn, d = run(host, f"dmap-batch-tolerance-{tolerated}", distributed_map(
        FAILING_BATCH, MaxConcurrency=1, ToleratedFailureCount=tolerated, ItemBatcher={"MaxItemsPerBatch": 2}),
        items(10, {0}))
    assert d["status"] == outcome, d
    described = sfn.describe_map_run(mapRunArn=the_map_run(sfn, d["executionArn"]))
    items_counted, children_counted = described["itemCounts"], described["executionCounts"]
    assert (items_counted["total"], items_counted["failed"]) == (10, 2), items_counted
    assert (children_counted["total"], children_counted["failed"]) == (5, 1), children_counted
    if outcome == "FAILED":
        assert d["error"] == "States.ExceedToleratedFailureThreshold", d
        assert (items_counted["pending"], children_counted["pending"]) == (8, 4)
    else:
        assert (items_counted["succeeded"], children_counted["succeeded"]) == (8, 4)
        assert json.loads(d["output"])[0] is None and len(json.loads(d["output"])) == 5


def test_fixed_result_writer_writes_an_entry_per_batch(host):
    # One child at a time, 2 items a batch, the second batch fails: tolerated (2 items),
    # SUCCEEDED_0.json has the 2 other batches' children, FAILED_0.json the failed one,
    # each entry's Input its batch; resultsWritten counts items and children. Then, not
    # tolerated: the Map Run fails at the first batch and PENDING_0.json has the two
    # batches never started, their Input the batch.
    s3 = client(host, "s3")
    s3.create_bucket(Bucket="dmap-batch-results")
    batcher = {"MaxItemsPerBatch": 2, "BatchInput": {"run": "r1"}}
    sfn, d = run(host, "dmap-batch-results", distributed_map(
        FAILING_BATCH, MaxConcurrency=1, ToleratedFailureCount=2, ItemBatcher=batcher,
        **with_result_writer("dmap-batch-results", "ok")), items(6, {2}))
    assert d["status"] == "SUCCEEDED", d
    map_run = the_map_run(sfn, d["executionArn"])
    run_id = map_run.split(":")[-1]
    batches = [{"Items": items(6, {2})[k:k + 2], "BatchInput": {"run": "r1"}} for k in (0, 2, 4)]
    succeeded = read_json(s3, "dmap-batch-results", f"ok/{run_id}/SUCCEEDED_0.json")
    assert [json.loads(e["Input"]) for e in succeeded] == [batches[0], batches[2]]
    assert [json.loads(e["Output"]) for e in succeeded] == [
        {**b, "first": b["Items"][0]} for b in (batches[0], batches[2])]
    failed = read_json(s3, "dmap-batch-results", f"ok/{run_id}/FAILED_0.json")
    assert [(json.loads(e["Input"]), e["Error"]) for e in failed] == [(batches[1], "Baton.Batch")]
    described = sfn.describe_map_run(mapRunArn=map_run)
    assert (described["itemCounts"]["resultsWritten"], described["executionCounts"]["resultsWritten"]) == (6, 3)

    sfn, d = run(host, "dmap-batch-results-failed", distributed_map(
        FAILING_BATCH, MaxConcurrency=1, ItemBatcher=batcher, **with_result_writer("dmap-batch-results", "ko")),
        items(6, {0}))
    assert (d["status"], d["error"]) == ("FAILED", "States.ExceedToleratedFailureThreshold"), d
    run_id = the_map_run(sfn, d["executionArn"]).split(":")[-1]
    batches = [{"Items": items(6, {0})[k:k + 2], "BatchInput": {"run": "r1"}} for k in (0, 2, 4)]
    failed = read_json(s3, "dmap-batch-results", f"ko/{run_id}/FAILED_0.json")
    pending = read_json(s3, "dmap-batch-results", f"ko/{run_id}/PENDING_0.json")
    assert [json.loads(e["Input"]) for e in failed] == batches[:1]
    assert [(json.loads(e["Input"]), e["Status"]) for e in pending] == [(b, "PENDING") for b in batches[1:]]


# --- ItemReader over a prefix: every page ------------------------------------------------


class PagedListing:
    """A stand-in S3 client whose ListObjectsV2 answers `pages` pages of 2 keys."""

    def __init__(self, pages):
        self.pages, self.calls = pages, []

    def list_objects_v2(self, **params):
        self.calls.append(params)
        page = int(params.get("ContinuationToken", "0"))
        answer = {"Contents": [{"Key": f"in/{page}-{k}"} for k in range(2)], "IsTruncated": page + 1 < self.pages}
        if answer["IsTruncated"]:
            answer["NextContinuationToken"] = str(page + 1)
        return answer


def test_gap_an_item_reader_lists_only_the_first_page_in_plain_moto(monkeypatch):
    # In this process's (unfixed) moto: the ItemReader's one ListObjectsV2 call.
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
        ResourceEvalS3,
    )

    listing = PagedListing(3)
    monkeypatch.setattr(ResourceEvalS3, "_get_s3_client", staticmethod(lambda **_: listing))
    env = SimpleNamespace(stack=[{"Bucket": "b", "Prefix": "in/"}])
    ResourceEvalS3._handle_list_objects_v2(env, None, None)
    assert [c["Key"] for c in env.stack[-1]] == ["in/0-0", "in/0-1"], (
        "moto now reads every page: delete compat.fix_sfn_item_reader_lists_only_the_first_page")


def test_fixed_an_item_reader_runs_every_object_under_the_prefix(host):
    # 1,005 objects: two pages of ListObjectsV2 (1,000 keys a page), every key an item,
    # in the listing's order.
    s3 = client(host, "s3")
    s3.create_bucket(Bucket="dmap-listing")
    keys = [f"in/{i:05d}" for i in range(1005)]
    for key in keys:
        s3.put_object(Bucket="dmap-listing", Key=key, Body=b"x")
    s3.put_object(Bucket="dmap-listing", Key="other/0", Body=b"x")
    definition = distributed_map({"S": {"Type": "Pass", "End": True}}, MaxConcurrency=50,
                                 ItemReader={"Resource": "arn:aws:states:::s3:listObjectsV2",
                                             "Parameters": {"Bucket": "dmap-listing", "Prefix": "in/"}},
                                 ItemSelector={"key.$": "$$.Map.Item.Value.Key"})
    _, d = run(host, "dmap-listing", definition, {}, timeout=120)
    assert d["status"] == "SUCCEEDED", d
    assert [item["key"] for item in json.loads(d["output"])] == keys
