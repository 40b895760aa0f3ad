#!/usr/bin/env python3
"""CSV on stdin (a header row, then records) → one JSON object per line on stdout.

A stand-in for a user's existing program: standard library only, knows nothing of
Baton, S3 or task tokens. Numbers stay text: the output is the input, reshaped."""

import csv
import json
import sys


def main() -> None:
    reader = csv.reader(sys.stdin)
    header = next(reader, None)
    if header is None:
        return
    out = sys.stdout
    for row in reader:
        out.write(json.dumps(dict(zip(header, row)), separators=(",", ":")))
        out.write("\n")


if __name__ == "__main__":
    main()
