"""A misbehaving foreign worker: it reports Baton.Interrupted for its token (so the
state is retried), then lingers as if it had not noticed. Every attempt does the same,
so the execution ends with Baton.Interrupted and three tasks still running: the
watchdog must stop them all when the execution ends."""

import os
import time

import boto3

boto3.client("stepfunctions").send_task_failure(
    taskToken=os.environ["TASK_TOKEN"], error="Baton.Interrupted", cause='{"message": "fail_and_linger"}')
print("reported Baton.Interrupted; lingering", flush=True)
time.sleep(600)
