"""compat.s3: each gap is still there in the pinned moto (when an upgrade closes it,
the test says which fix to delete) and the fix closes it. A missing key's 403 or 404,
when each multipart upload began, and what a ranged GET reads."""

import json
import time

from botocore.exceptions import ClientError

from baton_local.testing import client


def role_clients(endpoint, name, list_bucket, prefix_condition=False):
    """An S3 client with the credentials of a fresh role, allowed GetObject on the
    bucket `data`, and ListBucket only if `list_bucket` (only for the prefix inbox/
    with `prefix_condition`)."""
    iam, sts, s3 = client(endpoint, "iam"), client(endpoint, "sts"), client(endpoint, "s3")
    s3.create_bucket(Bucket="data")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    statements = [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/inbox/*"}]
    if list_bucket:
        statements.append({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
                           **({"Condition": {"StringLike": {"s3:prefix": ["inbox/*"]}}} if prefix_condition else {})})
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
    # S3's documentation does not say how an s3:prefix condition applies to the
    # ListBucket check behind a missing key; the request has no prefix, so the
    # stricter reading holds: the condition does not match, and the answer is 403.
    assert missing_key_status(role_clients(host, "fixed-prefix-list", list_bucket=True,
                                           prefix_condition=True)) == [403, 403]
    assert missing_key_status(client(host, "s3")) == [404, 404], "plain keys keep moto's answer"


def test_fixed_multipart_uploads_say_when_they_began(host):
    before, a, b = upload_dates(host, "fixed-initiated")
    assert before <= a < b, (before, a, b)
    assert (b - a).total_seconds() >= 1


class CountingBuffer:
    """An object's buffer that counts the bytes read from it."""

    def __init__(self, inner):
        self.inner, self.read_bytes = inner, 0

    def read(self, *args):
        data = self.inner.read(*args)
        self.read_bytes += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self.inner, name)


def ranged_get_cost(bucket):
    """Serve S3 from moto in this process, store an 8 MiB object and GET 1 KiB of it:
    (the bytes read from the object's buffer for that GET, the body, Content-Range)."""
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    from baton_local.testing import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3 = client(f"http://127.0.0.1:{port}", "s3")
        s3.create_bucket(Bucket=bucket)
        data = bytes(range(256)) * (8 * 4096)
        s3.put_object(Bucket=bucket, Key="big", Body=data)
        s3.head_object(Bucket=bucket, Key="big")  # the ETag is computed (from the whole object) once
        key = s3_backends["123456789012"]["aws"].buckets[bucket].keys["big"]
        key._value_buffer = counting = CountingBuffer(key._value_buffer)
        got = s3.get_object(Bucket=bucket, Key="big", Range="bytes=4096-5119")
        body = got["Body"].read()
        assert body == data[4096:5120]
        return counting.read_bytes, got["ContentRange"]
    finally:
        server.stop()


def test_gap_ranged_gets_read_the_whole_object_in_plain_moto():
    read, content_range = ranged_get_cost("gap-ranged")
    assert content_range == "bytes 4096-5119/8388608"
    assert read == 8 * 1024 * 1024, (
        f"moto now reads {read} bytes for a 1 KiB range: delete compat.fix_s3_ranged_gets_read_the_whole_object")


def test_fixed_a_ranged_get_reads_only_its_range(monkeypatch):
    # S3 serves a range at the cost of the range; the fix, applied to this process's
    # moto for the test alone (monkeypatch puts moto's own methods back).
    from moto.s3 import models, responses

    from baton_local import compat

    monkeypatch.setattr(models.FakeKey, "value", models.FakeKey.value)
    monkeypatch.setattr(responses.S3Response, "key_response", responses.S3Response.key_response)
    compat.fix_s3_ranged_gets_read_the_whole_object()
    read, content_range = ranged_get_cost("fixed-ranged")
    assert content_range == "bytes 4096-5119/8388608"
    assert read == 1024, read


def test_fixed_ranged_gets_answer_as_s3_does(host):
    # The host (the fix applied): ranges, suffix ranges, open ranges, a range past the
    # end, several ranges (answered whole, as moto does) and plain GETs.
    s3 = client(host, "s3")
    s3.create_bucket(Bucket="ranged")
    data = bytes(range(256)) * (20 * 4096)  # 20 MiB: past moto's in-memory buffer
    s3.put_object(Bucket="ranged", Key="big", Body=data)
    size = len(data)
    for asked, start, stop in (("bytes=0-0", 0, 1), ("bytes=5-14", 5, 15), ("bytes=-10", size - 10, size),
                               (f"bytes={size - 7}-", size - 7, size), (f"bytes=100-{size + 50}", 100, size)):
        got = s3.get_object(Bucket="ranged", Key="big", Range=asked)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, asked
        assert got["ContentRange"] == f"bytes {start}-{stop - 1}/{size}", asked
        assert got["Body"].read() == data[start:stop], asked
    whole = s3.get_object(Bucket="ranged", Key="big", Range="bytes=0-9,20-29")
    assert (whole["ResponseMetadata"]["HTTPStatusCode"], whole["Body"].read()) == (200, data)
    assert s3.get_object(Bucket="ranged", Key="big")["Body"].read() == data
    try:
        s3.get_object(Bucket="ranged", Key="big", Range=f"bytes={size}-")
        raise AssertionError("a range past the end was served")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidRange"
