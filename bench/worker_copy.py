"""Worker handoff benchmark: the `copy` job against the tools users would otherwise use.

For each S3 server (moto, then s3s-fs, both on 127.0.0.1) and each size, side by side:
  - the server's ceiling: a raw client (curl) downloading the object to /dev/null and
    uploading another of the same size from a file, at once or one after the other,
    whichever is faster: the time a copy takes with no processing at all;
  - baton-worker (release build, sync mode: verified read → copy → multipart write);
  - the seed samples' Python worker (boto3, whole object in memory);
  - `aws s3 cp` down to a local file, then up again (the AWS CLI, pinned).
Prints each one's throughput and its fraction of the ceiling, and peak RSS.

    make bench-worker                # 64 MiB, 256 MiB, 1 GiB
    .venv/bin/python bench/worker_copy.py 64 256
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baton_local.testing import REGION, VENV_BIN, aws_env, client
from bench_moto import moto_server, s3s_fs_server  # bench/, the folder of the script

ROOT = Path(__file__).resolve().parent.parent

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WORKER = TARGET / "release" / "baton-worker"
BENCH_BIN = ROOT / ".venv-bench" / "bin"
MEASURE = ROOT / "bench" / "peers" / "measure.py"
MIB = 1024 * 1024
SERVERS = {"moto": moto_server, "s3s-fs": s3s_fs_server}


def run_measured(argv, env):
    """Run a program; its wall seconds and peak RSS in bytes, which the program
    reports itself as `"peak_rss_bytes"` in a JSON line (baton-worker's closing log
    line; bench/peers/measure.py for Python). ru_maxrss would also count this
    process's memory at fork time."""
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak = None
    for line in (done.stdout + done.stderr).splitlines():
        try:
            peak = json.loads(line).get("peak_rss_bytes", peak)
        except (ValueError, AttributeError):
            pass
    if peak is None:
        raise RuntimeError(f"{argv[0]} reported no peak_rss_bytes")
    return seconds, peak


def ceiling_seconds(endpoint, key, source):
    """The least time a raw client (curl) takes to download `key` and upload `source`
    (the same size): GET ∥ PUT at once, or GET then PUT, whichever is faster, best
    of two runs each. Sequential can win on a server that serves one request at a
    time well (moto holds Python's GIL)."""
    curl = shutil.which("curl")
    if curl is None:
        sys.exit("curl not found: the benchmark uses it as the raw client")
    sign = [curl, "-sS", "--fail", "--aws-sigv4", f"aws:amz:{REGION}:s3", "--user", "test:test",
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    get = sign + ["-o", "/dev/null", f"{endpoint}/bench/{key}"]
    put = sign + ["-o", "/dev/null", "-T", str(source), f"{endpoint}/bench/{key}.raw"]

    def together():
        a, b = subprocess.Popen(get), subprocess.Popen(put)
        return a.wait() == 0 and b.wait() == 0

    def one_then_other():
        return subprocess.run(get).returncode == 0 and subprocess.run(put).returncode == 0

    best = None
    for attempt in [together, one_then_other] * 2:
        started = time.monotonic()
        if not attempt():
            raise RuntimeError("curl failed against the server")
        seconds = time.monotonic() - started
        best = seconds if best is None else min(best, seconds)
    return best


def write_input(path, size):
    chunk = os.urandom(MIB)
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(chunk)
        f.write(chunk[: size % MIB])


def measure(endpoint, sizes_mib, scratch):
    """One row per size: sizes, seconds and peak RSS of each tool against `endpoint`."""
    for program in [WORKER, BENCH_BIN / "aws"]:
        if not program.exists():
            sys.exit(f"{program} not found: run `make bench` (it builds and installs everything)")
    env = dict(os.environ, **aws_env(endpoint), BATON_LOG_FORMAT="json")
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="bench")
    aws = [str(BENCH_BIN / "python"), str(MEASURE), str(BENCH_BIN / "aws"), "s3", "cp", "--only-show-errors"]
    rows = []
    for size_mib in sizes_mib:
        size = size_mib * MIB
        key, source, local = f"in/{size_mib}", scratch / f"in-{size_mib}", scratch / "aws-local"
        if not source.exists():
            write_input(source, size)
        s3.upload_file(str(source), "bench", key)
        pointer = {"bucket": "bench", "key": key, "size": size}
        etag = s3.head_object(Bucket="bench", Key=key).get("ETag")
        if etag:  # s3s-fs sends none on HEAD; the worker then reads without If-Match.
            pointer["etag"] = etag
        row = {"size_mib": size_mib, "ceiling": ceiling_seconds(endpoint, key, source)}
        row["baton"] = run_measured([str(WORKER)], dict(
            env, BATON_INPUT=json.dumps({"s3": pointer}), BATON_OUTPUT=f"s3://bench/out/baton-{size_mib}/", BATON_JOB="copy"))
        row["seed"] = run_measured(
            [str(VENV_BIN / "python"), str(MEASURE), str(ROOT / "bench/peers/seed_worker.py")],
            dict(env, S3_BUCKET="bench", S3_KEY=key, OUTPUT_KEY=f"out/seed-{size_mib}"))
        down = run_measured(aws + [f"s3://bench/{key}", str(local)], env)
        up = run_measured(aws + [str(local), f"s3://bench/out/aws-{size_mib}"], env)
        local.unlink()
        row["aws"] = (down[0] + up[0], max(down[1], up[1]))
        rows.append(row)
        for k in [f"out/baton-{size_mib}/output", f"out/baton-{size_mib}/result.json", f"out/seed-{size_mib}",
                  f"out/aws-{size_mib}", key + ".raw", key]:
            s3.delete_object(Bucket="bench", Key=k)
    return rows


def measure_all(sizes_mib):
    """{server name: rows}, every server in SERVERS, the inputs written once."""
    with tempfile.TemporaryDirectory(prefix="baton-bench-copy-") as scratch:
        results = {}
        for name, server in SERVERS.items():
            with server() as endpoint:
                results[name] = measure(endpoint, sizes_mib, Path(scratch))
        return results


def table(results):
    lines = ["| server | size | ceiling: curl GET and PUT | baton-worker (× ceiling) | peak RSS | seed Python (× ceiling) | peak RSS "
             "| aws s3 cp down, up (× ceiling) | peak RSS | baton ÷ seed memory |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for server, rows in results.items():
        for row in rows:
            mb = row["size_mib"] * MIB / 1e6

            def cell(tool):
                seconds, rss = row[tool]
                return f"{mb / seconds:.0f} MB/s ({row['ceiling'] / seconds:.2f}) | {rss / MIB:.0f} MiB"

            lines.append(f"| {server} | {row['size_mib']} MiB | {mb / row['ceiling']:.0f} MB/s | {cell('baton')} | {cell('seed')} "
                         f"| {cell('aws')} | {row['baton'][1] / row['seed'][1]:.2f} |")
    return lines


def main(sizes_mib):
    results = measure_all(sizes_mib)
    print(f"\nWorker handoff: copy job, on 127.0.0.1, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("\n".join(table(results)))
    print("\nReproduce: make bench-worker, or .venv/bin/python bench/worker_copy.py " + " ".join(map(str, sizes_mib)))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [64, 256, 1024])
