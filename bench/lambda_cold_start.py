"""Lambda cold start and footprint: each Baton Lambda (release build) against the
seed-style Python handler (bench/peers/lambdas.py under awslambdaric), both under the
same local Runtime API (bench/runtime_api.py), both calling the same moto.

    .venv/bin/python bench/lambda_cold_start.py    (after make build-lambdas-native)
"""

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from baton_local.testing import aws_env, client
from runtime_api import RuntimeApi  # bench/, the folder of the script

ROOT = Path(__file__).resolve().parent.parent

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
FUNCTIONS = [
    # (Rust binary, Python handler, event file)
    ("task-watchdog", "lambdas.watchdog", "ecs-container-exited.json"),
    ("prepare-input", "lambdas.prepare_input", "prepare-input-s3-uri.json"),
    ("offload-output", "lambdas.offload_output", "offload-output-foreign-100k.json"),
]


def peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def run_one(argv, env, event, warm_runs):
    api = RuntimeApi()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=api.address, AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_LOG_STREAM_NAME="bench", AWS_LAMBDA_LOG_GROUP_NAME="bench",
               LAMBDA_TASK_ROOT=str(ROOT / "bench" / "peers"))
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=ROOT / "bench" / "peers", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        api.events.put(("cold", event))
        at, ok, body = api.results.get(timeout=120)
        if not ok:
            raise RuntimeError(f"{argv}: {body[:500]}")
        cold = at - started
        warm = []
        for _ in range(warm_runs):
            seconds, ok, body = api.invoke(event)
            if not ok:
                raise RuntimeError(f"{argv}: {body[:500]}")
            warm.append(seconds)
        return cold, statistics.median(warm), peak_rss(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        api.close()


def measure(endpoint: str, warm_runs: int = 30):
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="baton-data")
    s3.put_object(Bucket="baton-data", Key="inbox/books.txt", Body=b"call me ishmael\n" * 1000)
    env = dict(os.environ, **aws_env(endpoint), BATON_BUCKET="baton-data")
    rows = []
    for binary, handler, event_file in FUNCTIONS:
        event = json.loads((ROOT / "events" / event_file).read_text())
        rust = run_one([str(TARGET / "release" / binary)], env, event, warm_runs)
        python = run_one([str(BENCH_PYTHON), "-m", "awslambdaric", handler], env, event, warm_runs)
        rows.append((binary, rust, python))
    return rows


def table(rows) -> list:
    lines = ["| Lambda | cold start: Baton / Python | × | warm invoke median: Baton / Python | × | peak RSS: Baton / Python | × |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for binary, (rc, rw, rm), (pc, pw, pm) in rows:
        lines.append(f"| {binary} | {rc * 1000:.0f} / {pc * 1000:.0f} ms | {rc / pc:.2f} | {rw * 1000:.1f} / {pw * 1000:.1f} ms | {rw / pw:.2f} "
                     f"| {rm / 2**20:.1f} / {pm / 2**20:.1f} MiB | {rm / pm:.2f} |")
    return lines


if __name__ == "__main__":
    from bench_moto import moto_server

    with moto_server() as endpoint:
        print("\n".join(table(measure(endpoint))))
