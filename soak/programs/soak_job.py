#!/usr/bin/env python3
"""The fault soak's job, run behind `baton-worker exec`: stdin → stdout, transformed.

    soak_job.py rot13|upper [--pause-at-start S] [--pause-at-mark S]

It prints `soak: start` to stderr before it reads, and `soak: mark` after writing
10 MiB; each pause holds the job there, so a fault the local Fargate runner causes at
that line lands before the callback (start) or while the output upload is under way
(mark). The soak computes the expected output itself (soak/soak.py: expected()).
"""

import argparse
import sys
import time

MARK_BYTES = 10 * 1024 * 1024
ROT13 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                        b"NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm")
UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transform", choices=["rot13", "upper"])
    parser.add_argument("--pause-at-start", type=float, default=0)
    parser.add_argument("--pause-at-mark", type=float, default=0)
    args = parser.parse_args()
    table = ROT13 if args.transform == "rot13" else UPPER
    print("soak: start", file=sys.stderr, flush=True)
    time.sleep(args.pause_at_start)
    written, marked = 0, False
    while chunk := sys.stdin.buffer.read(1 << 20):
        sys.stdout.buffer.write(chunk.translate(table))
        written += len(chunk)
        if written >= MARK_BYTES and not marked:
            sys.stdout.buffer.flush()
            print("soak: mark", file=sys.stderr, flush=True)
            time.sleep(args.pause_at_mark)
            marked = True
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
