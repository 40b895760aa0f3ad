"""Local S3 servers on 127.0.0.1 for the benchmarks: moto (S3 and Step Functions),
and s3s-fs (S3 on the file system, a second server to check whether moto is the
bottleneck of the worker benchmark; `make bench` installs it, pinned, in .tools/)."""

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from baton_local.testing import VENV_BIN, free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parent.parent

S3S_FS = Path(os.environ.get("BATON_S3S_FS", ROOT / ".tools" / "bin" / "s3s-fs"))


@contextlib.contextmanager
def moto_server():
    port = free_port()
    log = Path("/tmp") / f"baton-bench-moto-{port}.log"
    proc = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, MOTO_PORT=str(port)))
    try:
        wait_for_port(port, proc, "moto", 30, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@contextlib.contextmanager
def s3s_fs_server():
    """s3s-fs serving a fresh temporary directory, with the benchmarks' test keys."""
    if not S3S_FS.exists():
        sys.exit(f"{S3S_FS} not found: run `make bench` (it installs s3s-fs into .tools/)")
    port = free_port()
    log = Path("/tmp") / f"baton-bench-s3s-fs-{port}.log"
    with tempfile.TemporaryDirectory(prefix="baton-bench-s3s-") as root:
        proc = subprocess.Popen([str(S3S_FS), "--host", "127.0.0.1", "--port", str(port),
                                 "--access-key", "test", "--secret-key", "test", root],
                                stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(port, proc, "s3s-fs", 30, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(proc)
