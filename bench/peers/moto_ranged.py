"""moto's server with S3's costs for big objects (benchmarks only): a ranged GET reads
only its range, and completing a multipart upload streams the parts into the object.

Both local S3 servers cost the whole object for every ranged GET: moto reads the
whole value and slices it (`FakeKey.value`, then `_handle_range_header`), and s3s-fs
0.12 computes the object's MD5 over the whole file for every GET. S3 does not: a
range costs its own size. A client that reads a 4 GiB object as 512 ranges of 8 MiB
(as AWS's guidelines advise, and as Baton, the CRT, the AWS CLI and rclone do) would
make either server read 2 TB. This launcher makes moto's ranged GET read just the
range from the object's buffer: the local stack's fix
(baton_local.compat.fix_s3_ranged_gets_read_the_whole_object), applied here alone.

Completing a multipart upload, moto joins every part in memory, then copies the
whole (`FakeMultipart.complete`, `bytes(total)`): for a 4 GiB object, more than
15 GiB, and the kernel killed it on this 24 GiB machine. Here the parts are written
one after another into a temporary file (moto deletes the upload, and closes its
parts, before it stores the object), which is then copied into the new object's
buffer (on disk past 5 MiB) in 16 MiB blocks.
Everything else is moto as it is.

Usage: moto_ranged.py [moto_server arguments]
"""

import sys

from moto.s3 import models
from moto.server import main

from baton_local.compat import fix_s3_ranged_gets_read_the_whole_object

fix_s3_ranged_gets_read_the_whole_object()


class Parts:
    """A completed upload's value: its parts in order, in a temporary file."""

    def __init__(self, parts):
        import tempfile

        self.file = tempfile.TemporaryFile()
        for part in parts:
            self.file.write(part.value)
        self.size = self.file.tell()

    def __len__(self):
        return self.size


_value_set = models.FakeKey.value.fset


def value_set(self, new_value):
    if not isinstance(new_value, Parts):
        return _value_set(self, new_value)
    import shutil

    self._value_buffer.seek(0)
    self._value_buffer.truncate()
    new_value.file.seek(0)
    shutil.copyfileobj(new_value.file, self._value_buffer, 16 * 1024 * 1024)
    new_value.file.close()
    self.contentsize = len(new_value)


models.FakeKey.value = property(models.FakeKey.value.fget, value_set)


def complete(self, body):
    """moto's FakeMultipart.complete, with the parts kept as they are instead of joined."""
    import codecs

    checksum_builder = models.MultipartChecksumBuilder(
        self.metadata.get("x-amz-checksum-algorithm"), self.metadata.get("x-amz-checksum-type"))
    md5s = bytearray()
    parts = []
    for number, etag in body:
        part = self.parts.get(number)
        if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
            raise models.InvalidPart()
        if parts and parts[-1].contentsize < models.S3_UPLOAD_PART_MIN_SIZE:
            raise models.EntityTooSmall()
        md5s.extend(codecs.decode(part.etag.replace('"', ""), "hex"))
        checksum_builder.addPart(part.value)
        parts.append(part)
    if not parts:
        raise models.MalformedXML
    full_etag = models.md5_hash()
    full_etag.update(bytes(md5s))
    return Parts(parts), f"{full_etag.hexdigest()}-{len(parts)}", checksum_builder.build()


models.FakeMultipart.complete = complete

if __name__ == "__main__":
    main(sys.argv[1:])
