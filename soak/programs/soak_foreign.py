"""The fault soak's "kill right after the callback": a foreign task (no Baton code)
that transforms its input as soak/programs/soak_job.py does, writes the output,
calls back with a pointer, prints `soak: called back`, then lingers 5 s as a program
cleaning up after its callback would, so the local Fargate runner's kill at that line
lands after the callback and before the exit. Runs as image `local:.venv/bin/python`:

    soak_foreign.py rot13|upper
"""

import hashlib
import json
import os
import sys
import time

import boto3

# soak_job.py beside this file: Python puts the folder of the script it runs first on sys.path.
from soak_job import ROT13, UPPER

table = ROT13 if sys.argv[1] == "rot13" else UPPER
s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
payload = json.loads(os.environ["BATON_INPUT"])
if "inline" in payload:
    value = payload["inline"]
    data = value.encode() if isinstance(value, str) else json.dumps(value, separators=(",", ":")).encode()
else:
    pointer = payload["s3"]
    data = s3.get_object(Bucket=pointer["bucket"], Key=pointer["key"])["Body"].read()
    assert hashlib.sha256(data).hexdigest() == pointer.get("sha256", hashlib.sha256(data).hexdigest())
out = data.translate(table)
bucket, prefix = os.environ["BATON_OUTPUT"][len("s3://"):].split("/", 1)
s3.put_object(Bucket=bucket, Key=prefix + "output", Body=out)
result = {"s3": {"bucket": bucket, "key": prefix + "output", "size": len(out), "sha256": hashlib.sha256(out).hexdigest()}}
sfn.send_task_success(taskToken=os.environ["TASK_TOKEN"], output=json.dumps(result))
print("soak: called back", file=sys.stderr, flush=True)
time.sleep(5)
