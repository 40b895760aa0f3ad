"""moto's server, reading only the requested bytes for a ranged GET (benchmarks only).

Both local S3 servers cost the whole object for every ranged GET: moto reads the
whole value and slices it (`FakeKey.value`, then `_handle_range_header`), and s3s-fs
0.12 computes the object's MD5 over the whole file for every GET. S3 does not: a
range costs its own size. A client that reads a 4 GiB object as 512 ranges of 8 MiB
(as AWS's guidelines advise, and as Baton, the CRT, the AWS CLI and rclone do) would
make either server read 2 TB. This launcher makes moto's ranged GET read just the
range from the object's buffer; everything else is moto as it is.

Usage: moto_ranged.py [moto_server arguments]
"""

import sys
import threading

from moto.s3 import models, responses
from moto.server import main

_ranged = threading.local()
_value = models.FakeKey.value


class RangeView:
    """What `key.value` is while a ranged GET is answered: its length, and slices
    read from the object's buffer, never the whole object at once."""

    CHUNK = 16 * 1024 * 1024

    def __init__(self, key):
        self.key = key

    def __len__(self):
        return self.key.size

    def _read(self, start, stop):
        with self.key.lock:
            self.key._value_buffer.seek(start)
            return self.key._value_buffer.read(max(0, stop - start))

    def __getitem__(self, part):
        if not isinstance(part, slice) or part.step not in (None, 1):
            raise TypeError("RangeView takes plain slices")
        start, stop, _ = part.indices(len(self))
        return self._read(start, stop)

    def __iter__(self):
        # A ranged request moto answers whole (several ranges, an unparsable one).
        for start in range(0, len(self), self.CHUNK):
            yield self._read(start, start + self.CHUNK)


def value(self):
    if getattr(_ranged, "on", False):
        return RangeView(self)
    return _value.fget(self)


models.FakeKey.value = property(value, _value.fset)
_key_response = responses.S3Response.key_response


def key_response(self, request, full_url, headers):
    _ranged.on = request.method == "GET" and bool(request.headers.get("range"))
    try:
        return _key_response(self, request, full_url, headers)
    finally:
        _ranged.on = False


responses.S3Response.key_response = key_response

if __name__ == "__main__":
    main(sys.argv[1:])
