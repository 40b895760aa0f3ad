"""A foreign worker that fails its task with Baton.WorkerError and the longest cause
Step Functions takes: 32,768 characters of JSON, a fifth of them quotes (the escaping
of a nested workflow's description makes it longer still). Runs as image
`local:.venv/bin/python` with this file as its command."""

import json
import os

import boto3

LIMIT = 32_768  # SendTaskFailure's cause (SDK model SensitiveCause)

base = {"message": "long_cause: failed on purpose", "task": os.environ.get("BATON_OUTPUT", "")}
room = LIMIT - len(json.dumps({**base, "detail": ""}))
unit = 'say "no" '  # 9 characters, 11 once in JSON
detail = unit * (room // 11)
detail += "x" * (room - len(json.dumps(detail)) + 2)
cause = json.dumps({**base, "detail": detail})
assert len(cause) == LIMIT, len(cause)
boto3.client("stepfunctions").send_task_failure(taskToken=os.environ["TASK_TOKEN"], error="Baton.WorkerError", cause=cause)
print(f"reported Baton.WorkerError with a cause of {len(cause)} characters", flush=True)
