"""The quick start without root (issue 27, part 6): where containers cannot run (no
podman, and no root or no apt-get to install it), `make demo` and `make local-up` run
the tasks as host processes and say so in one line, unless BATON_LOCAL_BACKEND says
otherwise.

The detection is checked case by case; then the whole demo runs with the detection
forced (BATON_LOCAL_NO_CONTAINERS=1, which it honours) on a stack of its own (own
state folder and ports, a 1 MiB text), as a user without root would run it.
"""

import os
import socket
import subprocess
import sys

import pytest

from baton_local import image, stack
from baton_local.testing import ROOT, VENV_BIN

LINE = ("==> containers cannot run here ({reason}): tasks run as host processes instead, "
        "without the containers' limits (BATON_LOCAL_BACKEND=process)")


@pytest.mark.parametrize("tools, root, apt, reason", [
    ({"podman", "buildah", "runc"}, False, False, ""),
    ({"podman", "buildah", "runc"}, True, True, ""),
    (set(), True, True, ""),  # root with apt-get: podman is installed
    (set(), False, True, "podman is not installed and this is not root"),
    ({"podman"}, False, True, "podman is not installed and this is not root"),
    (set(), True, False, "podman is not installed and there is no apt-get"),
])
def test_containers_unavailable(monkeypatch, tools, root, apt, reason):
    monkeypatch.delenv("BATON_LOCAL_NO_CONTAINERS", raising=False)
    present = tools | ({"apt-get"} if apt else set())
    monkeypatch.setattr(image.shutil, "which", lambda name: f"/usr/bin/{name}" if name in present else None)
    monkeypatch.setattr(image.os, "geteuid", lambda: 0 if root else 1000)
    # podman's init (catatonit) comes with the tools in these cases.
    monkeypatch.setattr(image, "CATATONIT", ROOT if "podman" in tools else ROOT / "no-such-file")
    assert image.containers_unavailable() == reason


def test_the_fallback_is_one_line_and_yields_to_an_explicit_backend(monkeypatch, capsys):
    monkeypatch.setenv("BATON_LOCAL_NO_CONTAINERS", "1")
    monkeypatch.setattr(stack, "BACKEND", "container")
    monkeypatch.setattr(stack, "REQUESTED_BACKEND", "")
    stack.fall_back_to_processes()
    assert stack.BACKEND == "process"
    assert capsys.readouterr().out.splitlines() == [LINE.format(reason="BATON_LOCAL_NO_CONTAINERS is set")]
    # BATON_LOCAL_BACKEND=container: the user insists, nothing is decided for them.
    monkeypatch.setattr(stack, "BACKEND", "container")
    monkeypatch.setattr(stack, "REQUESTED_BACKEND", "container")
    stack.fall_back_to_processes()
    assert stack.BACKEND == "container" and capsys.readouterr().out == ""


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count < 65536 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_make_demo_without_containers(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATON_"))}
    env.update(BATON_LOCAL_NO_CONTAINERS="1", BATON_LOCAL_STATE=str(tmp_path / "state"), BATON_DEMO_MIB="1",
               BATON_LOCAL_PORT=str(free_ports(1)), BATON_LAMBDA_PORT=str(free_ports(3)),
               PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    try:
        done = subprocess.run([sys.executable, "-m", "baton_local.demo"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
    finally:  # the demo stops its stack itself; make sure, by the pids it recorded
        subprocess.run([sys.executable, "-m", "baton_local.stack", "down"], cwd=ROOT, env=env, capture_output=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    expected = LINE.format(reason="BATON_LOCAL_NO_CONTAINERS is set")
    assert [line for line in output.splitlines() if "containers cannot run here" in line] == [expected]
    assert "==> local Fargate runner (tasks as host processes)" in output
    assert "the worker image, for tasks in real containers" not in output
    assert "SUCCEEDED" in output
    assert "Baton.ContainerExited" in output
