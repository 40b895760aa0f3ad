"""The three Baton Lambdas written the way the seed samples write them: Python, boto3
clients made at import, the same calls as the Rust handlers. For the cold-start
benchmark only."""

import json
import os

import boto3

s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
BUCKET = os.environ["BATON_BUCKET"]
CLOSED = ("InvalidToken", "TaskTimedOut", "TaskDoesNotExist")


def watchdog(event, context):
    detail = event["detail"]
    if detail.get("lastStatus") != "STOPPED":
        return {"action": "ignored"}
    token = next((e["value"] for o in detail.get("overrides", {}).get("containerOverrides", [])
                  for e in o.get("environment", []) if e["name"] == "TASK_TOKEN"), None)
    if not token:
        return {"action": "ignored"}
    codes = [c.get("exitCode") for c in detail.get("containers", [])]
    error = "Baton.ContainerExited" if any(c not in (0, None) for c in codes) else "Baton.NoCallback"
    try:
        sfn.send_task_failure(taskToken=token, error=error, cause=json.dumps(detail)[:32768])
        return {"action": "failed", "error": error}
    except sfn.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in CLOSED:
            return {"action": "alreadyClosed"}
        raise


def prepare_input(event, context):
    bucket, key = event["input"][len("s3://"):].split("/", 1)
    head = s3.head_object(Bucket=bucket, Key=key)
    payload = {"s3": {"bucket": bucket, "key": key, "size": head["ContentLength"], "etag": head["ETag"]}}
    return {"payload": payload, "batonInput": json.dumps(payload),
            "batonOutput": f"s3://{BUCKET}/executions/{event['execution']}/task1/"}


def offload_output(event, context):
    body = json.dumps(event["result"], separators=(",", ":"))
    if len(body) > 6000:
        key = f"executions/{event['execution']}/task1/offloaded"
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        payload = {"s3": {"bucket": BUCKET, "key": key, "size": len(body)}}
    else:
        payload = {"inline": event["result"]}
    return {"payload": payload, "batonInput": json.dumps(payload),
            "batonOutput": f"s3://{BUCKET}/executions/{event['execution']}/task2/"}
