"""The exec wrapper against the built-in copy job: the same bytes through
`baton-worker exec -- cat` (stdin → stdout), through `exec` in file mode (`cp`), and
through the `copy` job, against moto on 127.0.0.1. Throughput and the wrapper's own
peak RSS (the child's memory is the child's).

    .venv/bin/python bench/exec_vs_copy.py 1024      # after make build-worker
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from baton_local.testing import aws_env, client
from bench_moto import moto_server  # bench/, the folder of the script
from worker_copy import MIB, WORKER, run_measured, write_input

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = {
    "copy job": ([], {"BATON_JOB": "copy"}),
    "exec -- cat (stdin → stdout)": (["exec", "--", "cat"], {}),
    "exec -- cp (file mode both ways)": (
        ["exec", "--", "sh", "-c", 'cp "$BATON_INPUT_PATH" "$BATON_OUTPUT_PATH"'],
        {"BATON_INPUT_MODE": "file", "BATON_OUTPUT_MODE": "file"}),
}


def main(sizes_mib):
    if not WORKER.exists():
        sys.exit(f"{WORKER} not found: run make build-worker")
    rows = []
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="baton-bench-exec-") as scratch:
        env = dict(os.environ, **aws_env(endpoint), BATON_LOG_FORMAT="json", TMPDIR=scratch)
        s3 = client(endpoint, "s3")
        s3.create_bucket(Bucket="bench")
        for size_mib in sizes_mib:
            source = Path(scratch) / f"in-{size_mib}"
            write_input(source, size_mib * MIB)
            s3.upload_file(str(source), "bench", f"in/{size_mib}")
            source.unlink()
            pointer = {"bucket": "bench", "key": f"in/{size_mib}", "size": size_mib * MIB}
            for name, (args, extra) in VARIANTS.items():
                out = f"s3://bench/out/{len(rows)}/"
                seconds, peak = run_measured([str(WORKER), *args], dict(
                    env, BATON_INPUT=json.dumps({"s3": pointer}), BATON_OUTPUT=out, **extra))
                rows.append((size_mib, name, seconds, peak))
    print(f"\nexec wrapper vs the copy job, moto on 127.0.0.1, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("| size | how | throughput | × copy job | wrapper peak RSS |")
    print("|---:|---|---:|---:|---:|")
    for size_mib, name, seconds, peak in rows:
        base = next(s for m, n, s, _ in rows if m == size_mib and n == "copy job")
        print(f"| {size_mib} MiB | {name} | {size_mib * MIB / 1e6 / seconds:.0f} MB/s | {base / seconds:.2f} | {peak / MIB:.0f} MiB |")
    print("\nReproduce: make build-worker && .venv/bin/python bench/exec_vs_copy.py " + " ".join(map(str, sizes_mib)))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1024])
