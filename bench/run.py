"""make bench: every benchmark side by side in one run, one table of ratios.

Benchmarks report; they never fail a build. Each section names the command that
reproduces it. The result also goes to bench/results/latest.md.
"""

import io
import os
import platform
import subprocess
import time
import zipfile
from pathlib import Path

# The benchmarks beside this script (bench/, first on sys.path when Python runs it).
import distributed
import lambda_cold_start
import s3_model
import stack_bench
import step_cost
import transfer_model
import worker_copy
from bench_moto import moto_server

ROOT = Path(__file__).resolve().parent.parent

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
LAMBDA_ZIP_LIMIT = 50 * 1024 * 1024  # direct-upload limit of a Lambda deployment package


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.machine())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.0f} GiB, {platform.system()} {platform.release()}"


def zipped(path: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    return len(buffer.getvalue())


def artifacts() -> list:
    lines = ["| artifact | size | zipped | × the 50 MB Lambda zip limit |", "|---|---:|---:|---:|"]
    for name in ["prepare-input", "offload-output", "task-watchdog", "baton-worker"]:
        path = TARGET / "release" / name
        size, packed = path.stat().st_size, zipped(path)
        lines.append(f"| {name} (release, stripped) | {size / 1e6:.1f} MB | {packed / 1e6:.1f} MB | {packed / LAMBDA_ZIP_LIMIT:.3f} |")
    return lines


def main() -> None:
    began = time.monotonic()
    sizes = [int(s) for s in os.environ.get("BATON_BENCH_SIZES", "64,256,1024").split(",")]
    out = [f"# Baton benchmarks, {time.strftime('%Y-%m-%d')}", "", f"Machine: {machine()}. Local servers on 127.0.0.1 only.", ""]

    def section(title, command, lines):
        out.extend([f"## {title}", "", f"Reproduce: `{command}`", "", *lines, ""])
        print("\n".join(out[-(len(lines) + 5):]), flush=True)

    with moto_server() as endpoint:
        section("1. Lambda cold start and footprint (Baton Rust vs the seeds' Python + boto3, same Runtime API harness, same moto)",
                ".venv/bin/python bench/lambda_cold_start.py", lambda_cold_start.table(lambda_cold_start.measure(endpoint)))
    model_sizes = [int(s) for s in os.environ.get("BATON_BENCH_MODEL_SIZES", "64,1024,4096").split(",")]
    why = s3_model.unavailable()
    if why:
        section("2. Throughput on a model of S3", "sudo make bench-model", [f"Not run: {why}."])
    else:
        backend, rows = transfer_model.measure(model_sizes)
        section("2. Throughput on a model of S3 (per-connection caps; Baton vs the best S3 clients, against the raw ceiling)",
                "make bench-model, or .venv/bin/python bench/transfer_model.py " + " ".join(map(str, model_sizes)),
                transfer_model.table(rows, backend))
    section("3. Worker handoff on loopback: the copy job (baton-worker vs the seeds' Python worker vs `aws s3 cp`, against each server's raw ceiling)",
            ".venv/bin/python bench/worker_copy.py " + " ".join(map(str, sizes)), worker_copy.table(worker_copy.measure_all(sizes)))
    detection, scale = stack_bench.measure()
    section("4-5. Watchdog detection and pipeline scale (local stack)", ".venv/bin/python bench/stack_bench.py",
            stack_bench.tables(detection, scale))
    section("6. Artifact sizes", "make build-worker build-lambdas-native", artifacts())
    section("7. What one Baton step costs, before and after issue 28 (same stack, same task)",
            ".venv/bin/python bench/step_cost.py", step_cost.table(step_cost.run()))
    items = int(os.environ.get("BATON_BENCH_ITEMS", "100000"))
    section(f"8. Fan-out: {items:,} items through a Distributed Map, a Baton task per batch of 100, against the inline Map at its largest working size",
            f".venv/bin/python bench/distributed.py --items {items}", distributed.table(distributed.run(items)))
    out.append(f"All of it in {time.monotonic() - began:.0f} s: `make bench`.")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "latest.md").write_text("\n".join(out) + "\n")
    print(f"\nwritten to bench/results/latest.md ({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
