"""A plain moto server on 127.0.0.1 for the benchmarks that need only S3 and Step
Functions."""

import contextlib
import os
import subprocess
from pathlib import Path

import sys

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import VENV_BIN, free_port, stop, wait_for_port  # noqa: E402


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
