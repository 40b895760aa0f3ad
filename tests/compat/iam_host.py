"""moto with Baton's fixes and the IAM hook installed (BATON_LOCAL_IAM=enforce), for the
compat tests of the services' own deliveries, which are authorised only under the
hook. Import the fixture into a test module: `from iam_host import iam_host`.

The host is baton_local.moto_host, started with BATON_LOCAL_IAM=enforce and
BATON_LOCAL_IAM_RECORD in its environment; the launcher below also calls
moto_hook.install_from_env() right after compat.apply_all, so the hook is installed
whether or not moto_host.configure does it itself (install is idempotent)."""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from baton_local.iam.record import read
from baton_local.testing import VENV_BIN, free_port, stop, wait_for_port

_LAUNCH = """
import sys
from baton_local import compat, moto_host
from baton_local.iam import moto_hook

_apply_all = compat.apply_all


def apply_all(*args, **kwargs):
    _apply_all(*args, **kwargs)
    assert moto_hook.install_from_env(), "BATON_LOCAL_IAM is not enforce"


compat.apply_all = apply_all
sys.argv = ["baton_local.moto_host", *sys.argv[1:]]
moto_host.main()
"""


@dataclass
class IamHost:
    endpoint: str
    record: Path
    log: Path

    def decisions(self, action=None):
        """The recorded decisions so far (of one IAM action)."""
        if not self.record.exists():
            return []
        return [r for r in read(self.record) if action is None or r.request.action == action]


@pytest.fixture(scope="module")
def iam_host(fake_watch, tmp_path_factory):
    """moto with Baton's fixes, enforcing IAM and recording its decisions."""
    port = free_port()
    where = tmp_path_factory.mktemp("iam-host")
    log, record = where / "moto_host.log", where / "iam.jsonl"
    env = dict(os.environ, BATON_LOCAL_IAM="enforce", BATON_LOCAL_IAM_RECORD=str(record))
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", _LAUNCH, "--port", str(port), "--lambda-endpoint", fake_watch,
         "--lambda-binaries", json.dumps({"Echo": "echo-binary"})],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        wait_for_port(port, proc, "moto_host (IAM enforced)", 60, log)
        yield IamHost(f"http://127.0.0.1:{port}", record, log)
    finally:
        stop(proc)
