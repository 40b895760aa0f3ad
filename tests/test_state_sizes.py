"""The fan-out example keeps every state within Step Functions' 256 KiB at the size it
promises, with every length at AWS's maximum.

examples/pipelines/fan-out.asl.json runs on a moto host with Baton's fixes (the
interpreter checks each state's output and each task's result against the 262,144-byte
quota, as AWS does: `States.DataLimitExceeded`, which no Catch takes). The reusable
task it calls is replaced by a stub state machine that answers at the limits: every
item fails with an error of 256 characters and a cause of 32,768, or succeeds with the
longest pointer Baton writes, and the merge fails with a cause of 32,768 (as a
`Baton.ItemsFailed` over many items does). The input is a prefix holding
`LISTED_KEYS` objects whose keys take S3's maximum of 1,024 bytes (S3 user guide,
"Naming Amazon S3 objects": "The object key name ... up to 1,024 bytes long"), under
a 63-character bucket (the longest name S3 allows) and a prefix of 1,000 characters,
started as an execution with an 80-character name.

Before the fan-out kept only what it needs (the listing kept each key's whole entry
with the URIs beside it, the Map kept its inputs beside its results, and each failed
item its child's whole description), both tests failed with States.DataLimitExceeded:
at the `Uris` Map for the prefix, at the `Items` Map for the list of inputs.
"""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from baton_local.testing import ROOT, VENV_BIN, client, free_port, stop, wait_for_port
from pipeline_roles import pipeline_role

QUOTA = 262_144  # bytes of UTF-8: "Maximum input or output size for a task, state, or execution"
LISTED_KEYS = 200  # the fan-out's MaxKeys
BUCKET = "b" * 51 + "-state-sizes"  # 63 characters, S3's longest bucket name
PREFIX = "p" * 999 + "/"  # ListObjectsV2 echoes the prefix in its answer
EXECUTION = "e" * 80  # StartExecution's longest name
CHILD_MACHINE = "c" * 80  # the longest state machine name: in every child's ARN
ERROR = "Item." + "E" * 251  # 256 characters: SendTaskFailure's and a Fail state's longest error
# 32,768 characters of JSON, as Baton's fitted causes are: quotes count twice once escaped.
CAUSE = json.dumps({"message": ("\"quoted\" " * 4000)[:32_700]})[:32_768]
MERGE_ERROR = "Baton.ItemsFailed"


def pointer(step):
    """The longest output Payload Baton's worker returns for an item."""
    return {"s3": {"bucket": BUCKET, "key": f"executions/{EXECUTION}/{step}/output", "size": 5 * 2**40,
                   "sha256": "f" * 64, "contentType": "application/vnd.baton.manifest+json"}}


def stub(items_fail):
    """The reusable task's stand-in: the merge fails with a long cause; each item fails
    with the longest error and cause, or succeeds with the longest pointer."""
    longest = {k: v for k, v in pointer("item-000")["s3"].items() if k != "key"}
    item = ({"Type": "Fail", "Error": ERROR, "Cause": CAUSE} if items_fail else
            {"Type": "Pass", "Parameters": {"s3": {**longest, "key.$": f"States.Format('executions/{EXECUTION}/{{}}/output', $.step)"}},
             "End": True})
    return {"StartAt": "Which", "States": {
        "Which": {"Type": "Choice", "Choices": [{"Variable": "$.step", "StringEquals": "merge", "Next": "Merge"}],
                  "Default": "Item"},
        "Item": item,
        "Merge": {"Type": "Fail", "Error": MERGE_ERROR, "Cause": CAUSE}}}


@pytest.fixture(scope="module")
def moto_host(tmp_path_factory):
    """moto with Baton's fixes (the local stack's own host), no Lambda, no ECS."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto-host") / "moto.log"
    proc = subprocess.Popen([str(VENV_BIN / "python"), "-m", "baton_local.moto_host", "--port", str(port)],
                            cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                [str(ROOT / "local")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])))
    try:
        wait_for_port(port, proc, "moto host", 90, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def aws(moto_host):
    s3, sfn, iam = (client(moto_host, name) for name in ("s3", "stepfunctions", "iam"))
    s3.create_bucket(Bucket=BUCKET)
    for i in range(LISTED_KEYS):
        key = f"{PREFIX}{i:03d}-"
        s3.put_object(Bucket=BUCKET, Key=key + "k" * (1024 - len(key.encode())), Body=b"x")
    # The pipeline role docs/pipelines.md asks for (enforced when the host enforces IAM).
    role = pipeline_role(iam, list_bucket=BUCKET)
    return s3, sfn, role


def fan_out(sfn, role, child, tolerated):
    text = (ROOT / "examples/pipelines/fan-out.asl.json").read_text()
    for placeholder, value in (("TaskStateMachineArn", child), ("MaxConcurrency", "40"),
                               ("ToleratedFailurePercentage", str(tolerated)),
                               ("ItemTaskDefinitionArn", "arn:aws:ecs:us-east-1:123456789012:task-definition/" + "i" * 255 + ":1"),
                               ("MergeTaskDefinitionArn", "arn:aws:ecs:us-east-1:123456789012:task-definition/" + "m" * 255 + ":1")):
        text = text.replace("${" + placeholder + "}", value)
    return sfn.create_state_machine(name=f"fan-out-sizes-{os.urandom(3).hex()}", definition=text, roleArn=role)["stateMachineArn"]


def run(sfn, machine, execution_input, timeout=600):
    execution = sfn.start_execution(stateMachineArn=machine, name=EXECUTION, input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + timeout
    while (d := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the fan-out did not end"
        time.sleep(1)
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution)
    return d, [event for page in pages for event in page["events"]]


def child_execution(child, parent, step, redrives=0):
    """The ARN the fan-out gives a step's execution: <md5 of its own ARN>-<step>-<redrive
    count>."""
    name = f"{hashlib.md5(parent.encode()).hexdigest()}-{step}-{redrives}"
    return child.replace(":stateMachine:", ":execution:") + ":" + name


def merge_input(events):
    return next(json.loads(e["taskScheduledEventDetails"]["parameters"])["Input"] for e in events
                if e["type"] == "TaskScheduled" and '"merge"' in e["taskScheduledEventDetails"]["parameters"])


def largest(events):
    """(bytes, state) of the largest state output and task result the history holds."""
    sizes = [(0, "")]
    name = ""
    for event in events:
        details = event.get("stateEnteredEventDetails") or {}
        name = details.get("name", name)
        for key in ("stateExitedEventDetails", "taskSucceededEventDetails", "mapStateExitedEventDetails"):
            output = (event.get(key) or {}).get("output")
            if output is not None:
                sizes.append((len(output.encode()), (event.get(key) or {}).get("name", name)))
    return max(sizes)


def test_every_item_failed_under_a_prefix_of_the_longest_keys(aws):
    s3, sfn, role = aws
    child = sfn.create_state_machine(name=CHILD_MACHINE, definition=json.dumps(stub(items_fail=True)),
                                     roleArn=role)["stateMachineArn"]
    d, events = run(sfn, fan_out(sfn, role, child, tolerated=0), {"prefix": {"bucket": BUCKET, "prefix": PREFIX}})
    size, state = largest(events)
    print(f"{LISTED_KEYS} keys of 1,024 bytes, every item failed: the largest state {state} holds {size:,} bytes")
    assert (d["status"], d.get("error")) == ("FAILED", MERGE_ERROR), (d.get("error"), (d.get("cause") or "")[:300])
    assert d["cause"] == CAUSE, "the merge's own cause, whole"
    assert size < QUOTA
    # Each failed item kept its error and its execution (where its cause is), no more.
    results = merge_input(events)["input"]
    assert len(results) == LISTED_KEYS
    assert results[7] == {"failed": {"Error": ERROR, "Execution": child_execution(child, d["executionArn"], "item-7")}}


def test_every_item_succeeded_from_a_list_of_the_longest_uris(aws):
    s3, sfn, role = aws
    child = sfn.create_state_machine(name=CHILD_MACHINE[:-1] + "s", definition=json.dumps(stub(items_fail=False)),
                                     roleArn=role)["stateMachineArn"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]]
    inputs = [f"s3://{BUCKET}/{key}" for key in keys]
    d, events = run(sfn, fan_out(sfn, role, child, tolerated=0), {"inputs": inputs})
    size, state = largest(events)
    print(f"{len(inputs)} URIs of {len(inputs[0])} characters, every item succeeded: the largest state {state} holds {size:,} bytes")
    assert (d["status"], d.get("error")) == ("FAILED", MERGE_ERROR), (d.get("error"), (d.get("cause") or "")[:300])
    assert size < QUOTA
    results = merge_input(events)["input"]
    assert len(results) == len(inputs)
    assert results[199] == {"output": pointer("item-199")}


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s"]))
