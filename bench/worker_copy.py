"""Worker handoff benchmark: the `copy` job against the tools users would otherwise use.

Runs, side by side against one moto server on 127.0.0.1, for each size:
  - baton-worker (release build, sync mode: read verified → copy → multipart write),
  - the seed samples' Python worker (boto3, whole object in memory),
  - boto3's transfer manager downloading and uploading the same bytes, no processing.
Prints throughput and peak RSS, and Baton's time and memory as ratios of the seed's.

    make bench-worker                # 64 MiB, 256 MiB, 1 GiB
    .venv/bin/python bench/worker_copy.py 64 256
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from conftest import VENV_BIN, aws_env, client  # noqa: E402

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WORKER = TARGET / "release" / "baton-worker"
MIB = 1024 * 1024


def run_measured(argv, env):
    """Run a program; its wall seconds and peak RSS in bytes, which the program
    reports itself as `"peak_rss_bytes"` in a JSON line (baton-worker's closing log
    line; bench/peers/measure.py for Python). ru_maxrss would also count this
    process's memory at fork time."""
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak = None
    for line in (done.stdout + done.stderr).splitlines():
        try:
            peak = json.loads(line).get("peak_rss_bytes", peak)
        except (ValueError, AttributeError):
            pass
    if peak is None:
        raise RuntimeError(f"{argv[0]} reported no peak_rss_bytes")
    return seconds, peak


def measure(endpoint, sizes_mib):
    """Rows of (size MiB, transfer-manager s, baton s, baton RSS, seed s, seed RSS)."""
    if not WORKER.exists():
        sys.exit(f"{WORKER} not found: run `make build-worker` first")
    env = dict(os.environ, **aws_env(endpoint), BATON_LOG_FORMAT="json")
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="bench")
    rows = []
    for size_mib in sizes_mib:
        size = size_mib * MIB
        key = f"in/{size_mib}"
        s3.upload_fileobj(_Repeat(os.urandom(MIB), size), "bench", key)
        head = s3.head_object(Bucket="bench", Key=key)
        pointer = {"s3": {"bucket": "bench", "key": key, "size": size, "etag": head["ETag"]}}
        raw = subprocess.run([str(VENV_BIN / "python"), str(ROOT / "bench/peers/raw_transfer.py"), "bench", key, str(size)],
                             env=env, capture_output=True, text=True, check=True)
        transfer = json.loads(raw.stdout)
        baton_s, baton_rss = run_measured([str(WORKER)], dict(
            env, BATON_INPUT=json.dumps(pointer), BATON_OUTPUT=f"s3://bench/out/baton-{size_mib}/", BATON_JOB="copy"))
        seed_s, seed_rss = run_measured(
            [str(VENV_BIN / "python"), str(ROOT / "bench/peers/measure.py"), str(ROOT / "bench/peers/seed_worker.py")],
            dict(env, S3_BUCKET="bench", S3_KEY=key, OUTPUT_KEY=f"out/seed-{size_mib}"))
        rows.append((size_mib, transfer["get"] + transfer["put"], baton_s, baton_rss, seed_s, seed_rss))
        for k in [f"out/baton-{size_mib}/output", f"out/seed-{size_mib}", key + ".raw", key]:
            s3.delete_object(Bucket="bench", Key=k)
    return rows


def table(rows):
    lines = ["| size | baton-worker MB/s | peak RSS | seed Python MB/s | peak RSS | baton ÷ seed time | baton ÷ seed memory | boto3 transfer get+put MB/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size_mib, transfer_s, baton_s, baton_rss, seed_s, seed_rss in rows:
        mb = size_mib * MIB / 1e6
        lines.append(f"| {size_mib} MiB | {mb / baton_s:.0f} | {baton_rss / MIB:.0f} MiB | {mb / seed_s:.0f} | {seed_rss / MIB:.0f} MiB "
                     f"| {baton_s / seed_s:.2f} | {baton_rss / seed_rss:.2f} | {mb / transfer_s:.0f} |")
    return lines


def main(sizes_mib):
    from bench_moto import moto_server

    with moto_server() as endpoint:
        rows = measure(endpoint, sizes_mib)
    print(f"\nWorker handoff: copy job, moto on 127.0.0.1, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("\n".join(table(rows)))
    print("\nReproduce: make build-worker && .venv/bin/python bench/worker_copy.py " + " ".join(map(str, sizes_mib)))


class _Repeat:
    """A file-like object yielding `size` bytes by repeating `chunk`."""

    def __init__(self, chunk, size):
        self.chunk, self.left = chunk, size

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        out = (self.chunk * (n // len(self.chunk) + 1))[:n]
        self.left -= n
        return out


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [64, 256, 1024])
