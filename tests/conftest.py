"""Fixtures for the tests that run programs: a moto server and `cargo lambda watch`.

Both run from the project's pinned virtualenv (`make venv`) and only ever listen on
127.0.0.1.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
# local/ holds the local stack's Python (moto host, deploy, stack client).
sys.path.insert(0, str(ROOT / "local"))
VENV_BIN = ROOT / ".venv" / "bin"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s; see {log}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a process group we started, by its pid."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """A moto server with Step Functions really executing; yields its endpoint."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = dict(os.environ, MOTO_PORT=str(port))
    proc = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        wait_for_port(port, proc, "moto", 30, log)
        endpoint = f"http://127.0.0.1:{port}"
        req = urllib.request.Request(
            f"{endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        urllib.request.urlopen(req, timeout=10).read()
        yield endpoint
    finally:
        stop(proc)


def client(endpoint: str, service: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="test", aws_secret_access_key="test",
    )


def aws_env(endpoint: str) -> dict:
    return {
        "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
    }


@pytest.fixture(scope="session")
def lambda_watch(moto, tmp_path_factory):
    """`cargo lambda watch` serving the three functions against moto; yields its port."""
    port = free_port()
    log = tmp_path_factory.mktemp("watch") / "cargo-lambda-watch.log"
    function_env = dict(aws_env(moto), BATON_BUCKET="baton-data", RUST_LOG="info")
    env_args = [f"--env-var={k}={v}" for k, v in function_env.items()]
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    proc = subprocess.Popen(
        ["cargo", "lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", str(port), *env_args],
        cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        wait_for_port(port, proc, "cargo lambda watch", 120, log)
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def stack():
    """The local stack (local/stack.py), started once for every end-to-end module that
    asks for it (unless it already runs), stopped at the end."""
    import stack_client as local_stack

    started = local_stack.up()
    try:
        yield local_stack.Stack(local_stack.read_env())
    finally:
        if started:
            local_stack.down()
