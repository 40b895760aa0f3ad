"""Fixtures for the tests that run programs: a moto server and `cargo lambda watch`.

Both run from the project's pinned virtualenv (`make venv`) and only ever listen on
127.0.0.1.
"""

import json
import os
import subprocess
import urllib.request

import pytest

from baton_local.testing import ROOT, VENV_BIN, aws_env, free_port, stop, wait_for_port


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
    """The local stack (baton_local.stack), started once for every end-to-end module that
    asks for it (unless it already runs), stopped at the end."""
    from baton_local import stack_client as local_stack

    started = local_stack.up()
    try:
        yield local_stack.Stack(local_stack.read_env())
    finally:
        record = os.environ.get("BATON_LOCAL_IAM_RECORD")
        if started and record:
            # The policies as deployed, for the mutation check over the record after
            # the stack has stopped (make test-e2e; baton_local.iam.mutation).
            from baton_local.iam.mutation import save_policies

            save_policies(f"{record}.policies.json", local_stack.read_env()["AWS_ENDPOINT_URL"])
        if started:
            local_stack.down()
