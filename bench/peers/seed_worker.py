"""The seed samples' worker, for comparison: boto3, whole object in memory.

Reads s3://$S3_BUCKET/$S3_KEY and writes it to $OUTPUT_KEY in the same bucket, the
way the public Python samples of this pattern do (`get_object()["Body"].read()`).
"""

import os

import boto3

s3 = boto3.client("s3")
body = s3.get_object(Bucket=os.environ["S3_BUCKET"], Key=os.environ["S3_KEY"])["Body"].read()
s3.put_object(Bucket=os.environ["S3_BUCKET"], Key=os.environ["OUTPUT_KEY"], Body=body)
