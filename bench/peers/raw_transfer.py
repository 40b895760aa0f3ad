"""boto3's transfer manager against the same server: concurrent ranged GETs and
multipart PUTs of the same bytes, streaming to and from nothing, no processing.

Usage: raw_transfer.py BUCKET KEY SIZE  (prints get and put seconds as JSON)
"""

import io
import json
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig


class Null(io.RawIOBase):
    def writable(self):
        return True

    def write(self, b):
        return len(b)


class Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


bucket, key, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
s3 = boto3.client("s3")
config = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
t = time.monotonic()
s3.download_fileobj(bucket, key, Null(), Config=config)
get = time.monotonic() - t
t = time.monotonic()
s3.upload_fileobj(io.BufferedReader(Zeros(size), 1 << 20), bucket, key + ".raw", Config=config)
put = time.monotonic() - t
print(json.dumps({"get": get, "put": put}))
