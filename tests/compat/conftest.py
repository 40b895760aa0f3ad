"""The compat tests' servers: moto with Baton's fixes (`host`, one per test module) and
the stand-in for `cargo lambda watch` it forwards Lambda invocations to. Plain moto
(`moto`, for the gap checks) comes from tests/conftest.py."""

import json
import subprocess
import threading

import pytest

from baton_local.testing import VENV_BIN, free_port, stop, wait_for_port
from compat_helpers import FakeWatch, WatchServer


@pytest.fixture(scope="module")
def fake_watch():
    server = WatchServer(("127.0.0.1", 0), FakeWatch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def host(fake_watch, tmp_path_factory):
    """moto with Baton's fixes (baton_local.moto_host)."""
    port = free_port()
    log = tmp_path_factory.mktemp("host") / "moto_host.log"
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-m", "baton_local.moto_host", "--port", str(port),
         "--lambda-endpoint", fake_watch, "--lambda-binaries", json.dumps({"Echo": "echo-binary"})],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_port(port, proc, "moto_host", 60, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
