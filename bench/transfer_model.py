"""Throughput on a model of S3 (bench/s3_model.py): Baton against the best S3 clients.

On a network where every connection is capped, as S3's are, and only many
connections at once reach the link's ceiling, side by side in one run, for each size,
down (S3 → the program) and up (a file → S3):

  - the model's ceiling: a raw parallel client, curl moving 8 MiB at a time, 16 at
    once (ranges down; the parts of one multipart upload up, then its completion:
    the requests every peer makes, with no client work);
  - baton-worker: down is the `digest` job (the verified read, nothing else), up is
    `exec -- cat FILE` (a job's output streamed to a multipart upload), and both at
    once is the `copy` job;
  - aws-sdk-s3-transfer-manager 0.3.1 (bench/tm-eval, with a sha256 on top);
  - `aws s3 cp` (AWS CLI v1, pinned), down to stdout;
  - rclone (Debian's package) with 16 multi-thread streams and 16 upload threads;
  - boto3's transfer manager on the AWS Common Runtime (`preferred_transfer_client="crt"`);
  - the seed samples' Python worker (copy only, whole object in memory; not run above
    1 GiB, where it needs more memory than a task of that kind has).

Each as MB/s and as a fraction of the ceiling, with peak RSS (the process's own,
from wait4). Downloads that must land in a file (rclone, CRT, aws to a seekable
target) write to /dev/shm, so no disk is measured.

    make bench-model                             # 64 MiB, 1 GiB, 4 GiB
    python3 bench/transfer_model.py 64 1024      # (as root)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import s3_model  # bench/, the folder of the script

ROOT = Path(__file__).resolve().parent.parent

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WORKER = TARGET / "release" / "baton-worker"
TM_EVAL = TARGET / "tm-eval" / "release" / "tm-eval"
S3S_FS = Path(os.environ.get("BATON_S3S_FS", ROOT / ".tools" / "bin" / "s3s-fs"))
VENV_BIN = ROOT / ".venv" / "bin"
BENCH_BIN = ROOT / ".venv-bench" / "bin"
MIB = 1024 * 1024
STREAMS = 16
RANGE = 8 * MIB
PER_FLOW_MBIT = int(os.environ.get("BATON_MODEL_FLOW_MBIT", "200"))
AGGREGATE_MBIT = int(os.environ.get("BATON_MODEL_LINK_MBIT", "1600"))
SEED_MAX_MIB = 1024
# Only these peers (comma-separated names from PEERS, and "seed"), for a quick look.
ONLY = [p for p in os.environ.get("BATON_MODEL_ONLY", "").split(",") if p]


def want(name):
    return not ONLY or name in ONLY
REGION = "us-east-1"
BUCKET = "bench"

# boto3's CRT path (boto3.crt) always uses TLS and AWS's endpoints; the model's server
# is plain HTTP on a private address, so this builds the same s3transfer
# CRTTransferManager boto3 builds, with use_ssl=False and the endpoint given.
CRT = """
import os, sys
import botocore.session
from botocore.config import Config
from s3transfer.crt import (BotocoreCRTCredentialsWrapper, BotocoreCRTRequestSerializer,
                            CRTTransferManager, create_s3_crt_client)
direction, a, b = sys.argv[1:4]
session = botocore.session.Session()
credentials = BotocoreCRTCredentialsWrapper(session.get_credentials()).to_crt_credentials_provider()
crt = create_s3_crt_client("us-east-1", crt_credentials_provider=credentials, use_ssl=False)
serializer = BotocoreCRTRequestSerializer(session, {"region_name": "us-east-1", "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
                                                    "config": Config(s3={"addressing_style": "path"})})
with CRTTransferManager(crt, serializer) as manager:
    if direction == "down":
        manager.download("bench", a, b).result()
    else:
        manager.upload(a, "bench", b).result()
"""


def env(endpoint):
    # The endpoint is plain HTTP; a CA bundle from the host's environment only trips
    # rclone 1.60 ("unable to load custom CA bundle").
    base = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    return dict(base, AWS_ENDPOINT_URL=endpoint, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", BATON_LOG_FORMAT="json",
                RCLONE_CONFIG_M_TYPE="s3", RCLONE_CONFIG_M_PROVIDER="Other", RCLONE_CONFIG_M_ENDPOINT=endpoint,
                RCLONE_CONFIG_M_ACCESS_KEY_ID="test", RCLONE_CONFIG_M_SECRET_ACCESS_KEY="test",
                RCLONE_CONFIG_M_REGION=REGION, RCLONE_CONFIG_M_FORCE_PATH_STYLE="true")


def timed(argv, environ, stdout=subprocess.DEVNULL):
    """Run `argv`: (seconds, peak RSS bytes of the program itself, stderr text).

    The peak comes from GNU time (`%M`, the child's own ru_maxrss): a child forked
    by this Python process would also count this process's pages at the fork."""
    err = tempfile.TemporaryFile()
    rss = tempfile.NamedTemporaryFile(mode="r")
    started = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *map(str, argv)], env=environ, stdout=stdout,
                          stderr=err)
    seconds = time.monotonic() - started
    err.seek(0)
    text = err.read().decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {done.returncode}: {text[-1500:]}")
    kib = int(rss.read().split()[-1])
    return seconds, kib * 1024, text


def parallel(argvs, environ):
    """Run every command, STREAMS at a time; the wall time until the last ends."""
    from concurrent.futures import ThreadPoolExecutor

    def one(argv):
        return subprocess.run([str(a) for a in argv], env=environ, stdout=subprocess.DEVNULL).returncode

    started = time.monotonic()
    with ThreadPoolExecutor(STREAMS) as pool:
        if any(code != 0 for code in pool.map(one, argvs)):
            raise RuntimeError(f"a raw client failed: {argvs[0]}")
    return time.monotonic() - started, 0, ""


def raw_multipart_upload(e, endpoint, src, size, scratch, key):
    """The up ceiling: one multipart upload of `src` in 8 MiB parts, each a curl PUT,
    16 at a time, then CompleteMultipartUpload: the requests every peer's upload
    makes, with no client work at all."""
    import boto3  # the inside process runs on .venv's Python

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                      aws_secret_access_key="test")
    parts = scratch / "parts"
    parts.mkdir(exist_ok=True)
    subprocess.run(["split", "-b", str(RANGE), "-d", "-a", "4", src, f"{parts}/p"], check=True)
    files = sorted(parts.iterdir())
    started = time.monotonic()
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    heads = [parts / f"h{i}" for i in range(len(files))]
    parallel([curl(e) + ["-o", "/dev/null", "-D", head, "-T", f,
                         f"{endpoint}/{BUCKET}/{key}?partNumber={i + 1}&uploadId={upload}"]
              for i, (f, head) in enumerate(zip(files, heads))], e)
    etags = [next(line.split(":", 1)[1].strip() for line in head.read_text().splitlines()
                  if line.lower().startswith("etag:")) for head in heads]
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={
        "Parts": [{"ETag": t, "PartNumber": i + 1} for i, t in enumerate(etags)]})
    seconds = time.monotonic() - started
    shutil.rmtree(parts)
    return seconds, 0, ""


def curl(environ):
    return ["curl", "-sS", "--fail", "--aws-sigv4", f"aws:amz:{REGION}:s3", "--user", "test:test",
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]


def write_input(path, size):
    chunk = os.urandom(MIB)
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(chunk)


def inside(sizes, endpoint, scratch):
    """Every measurement, run in the client namespace. Prints one JSON line."""
    e = env(endpoint)
    s3 = ["aws", "s3api"]
    aws = BENCH_BIN / "aws"
    subprocess.run([aws, *s3[1:], "create-bucket", "--bucket", BUCKET], env=e, check=True, capture_output=True)
    results = []
    for size_mib in sizes:
        size = size_mib * MIB
        src = scratch / f"src-{size_mib}"
        write_input(src, size)
        key = f"in/{size_mib}"
        # The input goes up with the fastest peer known to be correct here (curl parts would
        # need a multipart dance): the AWS CLI, 16 requests at once.
        subprocess.run([aws, "configure", "set", "default.s3.max_concurrent_requests", "16"], env=e, check=True)
        subprocess.run([aws, "s3", "cp", "--only-show-errors", src, f"s3://{BUCKET}/{key}"], env=e, check=True)
        head = json.loads(subprocess.run([aws, *s3[1:], "head-object", "--bucket", BUCKET, "--key", key], env=e,
                                         check=True, capture_output=True, text=True).stdout)
        pointer = {"bucket": BUCKET, "key": key, "size": size}
        if head.get("ETag"):
            pointer["etag"] = head["ETag"]
        sink = scratch / "sink"
        row = {"size_mib": size_mib, "down": {}, "up": {}, "copy": {}}
        # The raw ceiling: 8 MiB ranges down and 8 MiB parts up, 16 at a time.
        row["down"]["ceiling"] = parallel(
            [curl(e) + ["-o", "/dev/null", "-r", f"{start}-{min(start + RANGE, size) - 1}", f"{endpoint}/{BUCKET}/{key}"]
             for start in range(0, size, RANGE)], e)
        row["up"]["ceiling"] = raw_multipart_upload(e, endpoint, src, size, scratch, f"raw/{size_mib}")
        # Baton.
        worker_env = dict(e, BATON_INPUT=json.dumps({"s3": pointer}), BATON_JOB="digest",
                          BATON_OUTPUT=f"s3://{BUCKET}/out/digest-{size_mib}/")
        if want("baton"):
            row["down"]["baton"] = timed([WORKER], worker_env)
            row["up"]["baton"] = timed([WORKER, "exec", "--", "cat", src], dict(
                e, BATON_INPUT='{"inline": ""}', BATON_OUTPUT=f"s3://{BUCKET}/out/exec-{size_mib}/"))
            row["copy"]["baton"] = timed([WORKER], dict(worker_env, BATON_JOB="copy",
                                                         BATON_OUTPUT=f"s3://{BUCKET}/out/copy-{size_mib}/"))
        # aws-sdk-s3-transfer-manager.
        if want("tm"):
            row["down"]["tm"] = timed([TM_EVAL, "down", f"s3://{BUCKET}/{key}"], e)
            row["up"]["tm"] = timed([TM_EVAL, "up", src, f"s3://{BUCKET}/out/tm-{size_mib}"], e)
        # aws s3 cp (its default 10 requests at once).
        if want("aws"):
            subprocess.run([aws, "configure", "set", "default.s3.max_concurrent_requests", "10"], env=e, check=True)
            row["down"]["aws"] = timed([aws, "s3", "cp", "--only-show-errors", f"s3://{BUCKET}/{key}", "-"], e)
            row["up"]["aws"] = timed([aws, "s3", "cp", "--only-show-errors", src, f"s3://{BUCKET}/out/aws-{size_mib}"], e)
        # rclone, 16 streams each way.
        if want("rclone") and shutil.which("rclone"):
            row["down"]["rclone"] = timed(["rclone", "copyto", f"m:{BUCKET}/{key}", sink, "--multi-thread-streams",
                                           str(STREAMS), "--multi-thread-cutoff", "8M"], e)
            sink.unlink(missing_ok=True)
            row["up"]["rclone"] = timed(["rclone", "copyto", src, f"m:{BUCKET}/out/rclone-{size_mib}",
                                         "--s3-upload-concurrency", str(STREAMS), "--s3-chunk-size", "8M"], e)
        # boto3 + CRT (s3s-fs sends no ETag on HEAD, which the CRT requires).
        if want("crt") and SERVER != "s3s-fs":
            row["down"]["crt"] = timed([BENCH_BIN / "python", "-c", CRT, "down", key, sink], e)
            sink.unlink(missing_ok=True)
            row["up"]["crt"] = timed([BENCH_BIN / "python", "-c", CRT, "up", src, f"out/crt-{size_mib}"], e)
        # The seed worker, where it fits in memory.
        if want("seed") and size_mib <= SEED_MAX_MIB:
            row["copy"]["seed"] = timed([VENV_BIN / "python", ROOT / "bench/peers/seed_worker.py"], dict(
                e, S3_BUCKET=BUCKET, S3_KEY=key, OUTPUT_KEY=f"out/seed-{size_mib}"))
        src.unlink()
        for direction in row.values():
            if isinstance(direction, dict):
                for name, (seconds, rss, _) in direction.items():
                    direction[name] = [seconds, rss]
        results.append(row)
        print(f"  {size_mib} MiB done", file=sys.stderr, flush=True)
        subprocess.run([aws, "s3", "rm", "--quiet", "--recursive", f"s3://{BUCKET}/"], env=e, check=True)
    print(json.dumps(results))


# The backend. Both local servers read the whole object for every ranged GET (see
# bench/peers/moto_ranged.py), which S3 does not; moto is patched for it there,
# s3s-fs is not (`BATON_MODEL_SERVER=s3s-fs` runs the benchmark on it as it is).
SERVERS = {
    "moto": lambda data: ("moto, ranged GETs reading only their range (bench/peers/moto_ranged.py); objects over 16 MiB on disk",
                          [VENV_BIN / "python", ROOT / "bench/peers/moto_ranged.py", "-H", s3_model.SERVER_IP,
                           "-p", s3_model.SERVER_PORT]),
    "s3s-fs": lambda data: ("s3s-fs 0.12.0", [S3S_FS, "--host", s3_model.SERVER_IP, "--port", s3_model.SERVER_PORT,
                                               "--access-key", "test", "--secret-key", "test", data]),
}
SERVER = os.environ.get("BATON_MODEL_SERVER", "moto")

PEERS = [("baton", "baton-worker"), ("tm", "transfer-manager 0.3.1"), ("aws", "aws s3 cp"), ("rclone", "rclone 16 streams"),
         ("crt", "boto3 + CRT")]


def table(results, backend):
    lines = [f"Backend: {backend}. " + model_line(), "",
             "| size | direction | ceiling (curl ×16) | " + " | ".join(label for _, label in PEERS) + " |",
             "|---:|---|---:|" + "---:|" * len(PEERS)]
    for row in results:
        mb = row["size_mib"] * MIB / 1e6
        for direction in ["down", "up"]:
            got = row[direction]
            ceiling = got["ceiling"][0]
            cells = []
            for name, _ in PEERS:
                if name not in got:
                    cells.append("not run")
                    continue
                seconds, rss = got[name]
                cells.append(f"{mb / seconds:.0f} MB/s ({ceiling / seconds:.2f}), {rss / MIB:.0f} MiB")
            lines.append(f"| {size_label(row['size_mib'])} | {direction} | {mb / ceiling:.0f} MB/s | " + " | ".join(cells) + " |")
    lines += ["", "Both directions at once (the copy job: read, verify, write), against the slower ceiling:", "",
              "| size | ceiling | baton-worker copy | seed Python worker |", "|---:|---:|---:|---:|"]
    for row in results:
        mb = row["size_mib"] * MIB / 1e6
        ceiling = max(row["down"]["ceiling"][0], row["up"]["ceiling"][0])
        cells = []
        for name in ["baton", "seed"]:
            if name in row["copy"]:
                seconds, rss = row["copy"][name]
                cells.append(f"{mb / seconds:.0f} MB/s ({ceiling / seconds:.2f}), {rss / MIB:.0f} MiB")
            else:
                cells.append(f"not run (holds the object in memory; above {SEED_MAX_MIB} MiB)")
        lines.append(f"| {size_label(row['size_mib'])} | {mb / ceiling:.0f} MB/s | " + " | ".join(cells) + " |")
    return lines


def size_label(mib):
    return f"{mib // 1024} GiB" if mib >= 1024 else f"{mib} MiB"


def model_line():
    return (f"Model: each TCP connection capped at {PER_FLOW_MBIT} Mbit/s ({PER_FLOW_MBIT / 8:.0f} MB/s) each way, "
            f"the link at {AGGREGATE_MBIT} Mbit/s ({AGGREGATE_MBIT / 8:.0f} MB/s), so {AGGREGATE_MBIT // PER_FLOW_MBIT} "
            "connections are needed to fill it; no added delay (this kernel has neither fq nor netem).")


def check_tools():
    missing = [str(p) for p in [WORKER, TM_EVAL, S3S_FS, BENCH_BIN / "aws", "/usr/bin/time"] if not Path(p).exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run `make bench-model` (it builds and installs everything)")


def measure(sizes):
    """(backend name, rows), or exit with the reason the model cannot run."""
    why = s3_model.unavailable()
    if why:
        sys.exit(f"bench/transfer_model.py: {why}")
    check_tools()
    with tempfile.TemporaryDirectory(prefix="baton-model-", dir="/dev/shm") as shm, \
            tempfile.TemporaryDirectory(prefix="baton-model-s3s-", dir=os.environ.get("TMPDIR", "/var/tmp")) as data:
        with s3_model.S3Model(PER_FLOW_MBIT, AGGREGATE_MBIT) as model:
            name, argv = SERVERS[SERVER](data)
            model.start_server(argv, Path(shm) / "server.log")
            done = subprocess.run(model.client([VENV_BIN / "python", __file__, "--inside", model.endpoint, shm,
                                                *map(str, sizes)]), stdout=subprocess.PIPE, text=True)
            if done.returncode != 0:
                sys.exit(f"the measurements failed (exit {done.returncode})")
            return name, json.loads(done.stdout.strip().splitlines()[-1])


def main(sizes):
    started = time.monotonic()
    backend, rows = measure(sizes)
    print(f"\nThroughput on a model of S3, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("\n".join(table(rows, backend)))
    print(f"\nReproduce: make bench-model, or python3 bench/transfer_model.py {' '.join(map(str, sizes))} "
          f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        inside([int(a) for a in sys.argv[4:]], sys.argv[2], Path(sys.argv[3]))
    else:
        main([int(a) for a in sys.argv[1:]] or [64, 1024, 4096])
