"""A foreign (non-Baton) task 1: calls back with ~100 KiB of plain JSON, or with a
pointer whose sha256 does not match (MODE=corrupt). Runs as image
`local:.venv/bin/python` with this file as its command."""

import hashlib
import json
import os

import boto3

sfn = boto3.client("stepfunctions")
token = os.environ["TASK_TOKEN"]
if os.environ.get("MODE") == "corrupt":
    bucket, prefix = os.environ["BATON_OUTPUT"][len("s3://"):].split("/", 1)
    body = b"the bytes task 2 will read\n" * 1000
    boto3.client("s3").put_object(Bucket=bucket, Key=prefix + "output", Body=body)
    pointer = {"s3": {"bucket": bucket, "key": prefix + "output", "size": len(body),
                      "sha256": hashlib.sha256(b"other bytes").hexdigest()}}
    sfn.send_task_success(taskToken=token, output=json.dumps(pointer))
else:
    rows = [{"word": f"w{i:05d}", "count": i * 7 % 1000} for i in range(3600)]
    sfn.send_task_success(taskToken=token, output=json.dumps({"worker": "foreign", "rows": rows}))
