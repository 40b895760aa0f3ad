"""compat.s3: each gap is still there in the pinned moto (when an upgrade closes it,
the test says which fix to delete) and the fix closes it. A missing key's 403 or 404,
and when each multipart upload began."""

import json
import time

from botocore.exceptions import ClientError

from baton_local.testing import client


def role_clients(endpoint, name, list_bucket):
    """An S3 client with the credentials of a fresh role, allowed GetObject on the
    bucket `data`, and ListBucket only if `list_bucket`."""
    iam, sts, s3 = client(endpoint, "iam"), client(endpoint, "sts"), client(endpoint, "s3")
    s3.create_bucket(Bucket="data")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/inbox/*"}]
    if list_bucket:
        statements.append({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
                           "Condition": {"StringLike": {"s3:prefix": ["inbox/*"]}}})
    iam.put_role_policy(RoleName=name, PolicyName="read",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    creds = sts.assume_role(RoleArn=role, RoleSessionName="task")["Credentials"]
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def missing_key_status(s3):
    statuses = []
    for call in (s3.head_object, s3.get_object):
        try:
            call(Bucket="data", Key="inbox/missing.txt")
            statuses.append(200)
        except ClientError as e:
            statuses.append(e.response["ResponseMetadata"]["HTTPStatusCode"])
    return statuses


def test_gap_a_missing_key_is_404_to_everyone_in_plain_moto(moto):
    s3 = role_clients(moto, "gap-no-list", list_bucket=False)
    assert missing_key_status(s3) == [404, 404], (
        "moto now answers 403 without ListBucket: delete compat.fix_s3_missing_keys_are_404_to_everyone")


def upload_dates(endpoint, bucket):
    """When two uploads, begun a second apart, say they began; and the time between."""
    import datetime

    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket=bucket)
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    s3.create_multipart_upload(Bucket=bucket, Key="a")
    time.sleep(1.1)
    s3.create_multipart_upload(Bucket=bucket, Key="b")
    uploads = {u["Key"]: u["Initiated"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]}
    return before, uploads["a"], uploads["b"]


def test_gap_multipart_uploads_all_begun_in_2010_in_plain_moto(moto):
    _, a, b = upload_dates(moto, "gap-initiated")
    assert a == b and a.year == 2010, "moto now dates uploads: delete compat.fix_s3_multipart_uploads_all_begun_in_2010"


def test_fixed_a_missing_key_is_403_to_a_role_without_list_bucket(host):
    # S3: without s3:ListBucket a missing key is 403 AccessDenied; with it, 404.
    assert missing_key_status(role_clients(host, "fixed-no-list", list_bucket=False)) == [403, 403]
    assert missing_key_status(role_clients(host, "fixed-list", list_bucket=True)) == [404, 404]
    assert missing_key_status(client(host, "s3")) == [404, 404], "plain keys keep moto's answer"


def test_fixed_multipart_uploads_say_when_they_began(host):
    before, a, b = upload_dates(host, "fixed-initiated")
    assert before <= a < b, (before, a, b)
    assert (b - a).total_seconds() >= 1
