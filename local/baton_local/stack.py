"""Start, inspect and stop the local stack: moto with Baton's fixes, the stack from
template.yaml, `cargo lambda watch` for the Lambdas, and the local Fargate runner.

    python -m baton_local.stack up      # idempotent; writes .local/stack.env
    python -m baton_local.stack down    # stops exactly what `up` started, by pid
    python -m baton_local.stack status

Ports: BATON_LOCAL_PORT (moto, default 4566), BATON_LAMBDA_PORT (cargo lambda watch,
default 9001). Build output: CARGO_TARGET_DIR (default target/). State (pids, logs,
stack.env): BATON_LOCAL_STATE (default .local/), so two stacks can run side by side.

IAM (issue "Strict local AWS"): moto evaluates every request made with role
credentials as AWS would (baton_local.iam.moto_hook), and every component holds its
own role's: each Lambda its function role (one `cargo lambda watch` per function, on
BATON_LAMBDA_PORT + 0, 1, 2, with that role's AssumeRole session in its environment),
each task its task role (the local Fargate runner assumes it), the state machines'
integrations their role (compat fix_asl_integrations_call_with_fixed_keys). Only the
harness (deploy, tests, the runner standing in for ECS) holds the account's static
keys. IAM is always enforced (there is no switch: moto's own bucket-policy check,
which the hook replaces, ignores conditions, so the template's TLS-only Deny would
refuse everyone); BATON_LOCAL_IAM_RECORD=<file> records every decision for the
mutation check (python -m baton_local.iam.mutation). A refusal names the role, the
action and the resource, in the service's own error, as AWS's does.

Faults (`make soak`): with BATON_LOCAL_FAULTS=<fault file>, the Lambdas and the tasks
reach moto through soak/fault_hop.py on BATON_FAULT_HOP_PORT (default moto's port
+ 1), seeded by BATON_FAULT_SEED; the runner and moto's own calls go straight.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import image as local_image

ROOT = Path(__file__).resolve().parents[2]  # local/baton_local/<this file>
STATE = Path(os.environ.get("BATON_LOCAL_STATE", ROOT / ".local")).resolve()
PIDS = STATE / "pids"
LOGS = STATE / "logs"
ENV_FILE = STATE / "stack.env"
VENV_BIN = ROOT / ".venv" / "bin"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PORT = int(os.environ.get("BATON_LOCAL_PORT", "4566"))
LAMBDA_PORT = int(os.environ.get("BATON_LAMBDA_PORT", "9001"))
REGION = "us-east-1"
STACK = "baton-local"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
ENDPOINT = f"http://127.0.0.1:{PORT}"
LAMBDA_ENDPOINT = f"http://127.0.0.1:{LAMBDA_PORT}"
# Each function's own `cargo lambda watch`, with its role's credentials.
FUNCTIONS = ["prepare-input", "offload-output", "task-watchdog"]
LAMBDA_ENDPOINTS = {f: f"http://127.0.0.1:{LAMBDA_PORT + i}" for i, f in enumerate(FUNCTIONS)}
FAULTS = os.environ.get("BATON_LOCAL_FAULTS", "")
HOP_PORT = int(os.environ.get("BATON_FAULT_HOP_PORT", str(PORT + 1)))
HOP_ENDPOINT = f"http://127.0.0.1:{HOP_PORT}"
# Order matters for `down`: the runner first (its tasks end with it), moto last.
PROCESSES = ["fargate", *(f"lambda-watch-{f}" for f in FUNCTIONS), "fault-hop", "moto"]
# Tasks of images that are not `local:` run as real containers (podman), or, with
# BATON_LOCAL_BACKEND=process, as processes. Unset: containers where they can run,
# processes where they cannot (no podman, and no root or no apt-get to install it),
# said in one line (fall_back_to_processes).
REQUESTED_BACKEND = os.environ.get("BATON_LOCAL_BACKEND", "")
BACKEND = REQUESTED_BACKEND or "container"
if BACKEND not in ("container", "process"):
    sys.exit(f"BATON_LOCAL_BACKEND must be container or process, not {BACKEND!r}")


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def pid_of(name: str):
    path = PIDS / f"{name}.pid"
    if not path.exists():
        return None
    pid = int(path.read_text())
    return pid if alive(pid) else None


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, name: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{name} exited ({proc.returncode}); see {LOGS / (name + '.log')}")
        if port_busy(port):
            return
        time.sleep(0.2)
    sys.exit(f"{name} did not listen on {port} within {timeout:.0f}s; see {LOGS / (name + '.log')}")


def start(name: str, argv: list, env: dict) -> subprocess.Popen:
    log = (LOGS / f"{name}.log").open("w")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    (PIDS / f"{name}.pid").write_text(str(proc.pid))
    return proc


def aws_env() -> dict:
    return dict(os.environ, AWS_ENDPOINT_URL=ENDPOINT, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, **CREDENTIALS)


def build() -> None:
    # Every binary of the workspace, as `cargo lambda watch` builds them (its `cargo run
    # --bin <function>` at the workspace root unifies features over every member): a
    # build of fewer packages would resolve other features, and the first invocation
    # of each function would compile the dependencies again.
    say("building the workspace's binaries (debug): baton-worker, local-fargate, baton, the Lambdas")
    subprocess.run(["cargo", "build", "--locked", "--workspace", "--bins"], cwd=ROOT, check=True)


def role_session(role_arn: str, name: str) -> dict:
    """AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN of a session of
    the role, from the local STS (as Lambda puts its function role's in the
    function's environment)."""
    import boto3

    sts = boto3.client("sts", endpoint_url=ENDPOINT, region_name=REGION,
                       aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    # 12 hours: AWS's maximum for a role's session; the local STS does not expire them.
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=name[:64], DurationSeconds=43200)["Credentials"]
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]}


def invoke(function: str, event: dict) -> None:
    request = urllib.request.Request(f"{LAMBDA_ENDPOINTS[function]}/2015-03-31/functions/{function}/invocations",
                                     data=json.dumps(event).encode(), method="POST")
    try:
        urllib.request.urlopen(request, timeout=600).read()
    except urllib.error.HTTPError:
        pass  # a function error still means the function is built and answering


def fall_back_to_processes() -> None:
    """No BATON_LOCAL_BACKEND and containers cannot run here: the process backend, in one line."""
    global BACKEND
    reason = "" if REQUESTED_BACKEND else local_image.containers_unavailable()
    if reason:
        BACKEND = "process"
        say(f"containers cannot run here ({reason}): tasks run as host processes instead, "
            "without the containers' limits (BATON_LOCAL_BACKEND=process)")


def up() -> None:
    if pid_of("moto"):
        say(f"the local stack is already running ({ENV_FILE})")
        print(ENV_FILE.read_text() if ENV_FILE.exists() else "")
        return
    fall_back_to_processes()
    ports = [(PORT, "moto", "BATON_LOCAL_PORT")]
    ports += [(LAMBDA_PORT + i, f"cargo lambda watch ({f})", "BATON_LAMBDA_PORT") for i, f in enumerate(FUNCTIONS)]
    if FAULTS:
        ports.append((HOP_PORT, "the fault hop", "BATON_FAULT_HOP_PORT"))
    for port, what, variable in ports:
        if port_busy(port):
            sys.exit(f"port {port} (for {what}) is busy: stop what uses it, or set {variable} to a free port")
    for folder in (PIDS, LOGS):
        folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    build()

    binaries = subprocess.run([str(VENV_BIN / "python"), "-m", "baton_local.deploy", "--endpoint", ENDPOINT, "--print-binaries"],
                              capture_output=True, text=True, check=True).stdout.strip()
    say(f"moto with Baton's fixes on {ENDPOINT}")
    moto_env = dict(os.environ, BATON_LOCAL_IAM="enforce")
    say("IAM enforced by role" + (f", decisions recorded to {os.environ['BATON_LOCAL_IAM_RECORD']}"
                                  if os.environ.get("BATON_LOCAL_IAM_RECORD") else ""))
    moto = start("moto", [str(VENV_BIN / "python"), "-m", "baton_local.moto_host", "--port", str(PORT),
                          "--lambda-endpoint", LAMBDA_ENDPOINT, "--lambda-endpoints", json.dumps(LAMBDA_ENDPOINTS),
                          "--lambda-binaries", binaries], moto_env)
    wait_port(PORT, "moto", moto, 60)
    components_endpoint = ENDPOINT
    if FAULTS:
        say(f"fault hop on {HOP_ENDPOINT} ({FAULTS}, seed {os.environ.get('BATON_FAULT_SEED', '0')})")
        hop = start("fault-hop", [str(VENV_BIN / "python"), str(ROOT / "soak/fault_hop.py"), "--port", str(HOP_PORT),
                                  "--upstream", ENDPOINT, "--faults", FAULTS,
                                  "--seed", os.environ.get("BATON_FAULT_SEED", "0")], dict(os.environ))
        wait_port(HOP_PORT, "fault-hop", hop, 30)
        components_endpoint = HOP_ENDPOINT

    say("deploying template.yaml to the local CloudFormation")
    deployed = subprocess.run([str(VENV_BIN / "python"), "-m", "baton_local.deploy", "--endpoint", ENDPOINT, "--stack-name", STACK],
                              capture_output=True, text=True)
    if deployed.returncode != 0:
        sys.exit(f"deploy failed:\n{deployed.stdout}\n{deployed.stderr}")
    deployed = json.loads(deployed.stdout)
    outputs = deployed["outputs"]

    function_env = dict(AWS_ENDPOINT_URL=components_endpoint, AWS_REGION=REGION, BATON_BUCKET=outputs["BucketName"],
                        BATON_CLUSTER=outputs["ClusterArn"], BATON_TASK_LOGS=str(LOGS / "{task_id}.log"),
                        BATON_STACK=STACK)
    # Nothing of the harness's own credentials reaches a function: only its role's.
    watch_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    watch_env.update(PATH=f"{VENV_BIN}:{os.environ['PATH']}", CARGO_TARGET_DIR=str(TARGET))
    roles = deployed["function_roles"]
    for i, function in enumerate(FUNCTIONS):
        port = LAMBDA_PORT + i
        say(f"cargo lambda watch for {function} on {LAMBDA_ENDPOINTS[function]}, as {roles[function]}")
        env_args = [f"--env-var={k}={v}" for k, v in
                    dict(function_env, **role_session(roles[function], function)).items()]
        # Lambda runs invocations of a function side by side (an instance each); so does
        # cargo lambda watch with --concurrency (default 1: one at a time).
        watch = start(f"lambda-watch-{function}", ["cargo", "lambda", "watch", "--ignore-changes", "-A", "127.0.0.1",
                                                   "-P", str(port), "--concurrency", "8", *env_args], watch_env)
        wait_port(port, f"lambda-watch-{function}", watch, 120)
    say("compiling the Lambdas on first use (prepare-input, offload-output, task-watchdog)")
    for function in FUNCTIONS:
        invoke(function, {"warm-up": True})

    runner_env = dict(aws_env(), BATON_LOCAL_TASK_ENDPOINT=components_endpoint)
    if BACKEND == "container":
        say("the worker image, for tasks in real containers (podman)")
        runner_env.update(local_image.env(), BATON_LOCAL_WORKER_IMAGE=local_image.build())
    say(f"local Fargate runner (tasks as {'containers' if BACKEND == 'container' else 'host processes'})")
    start("fargate", [str(TARGET / "debug" / "local-fargate"), "--cluster", outputs["ClusterArn"],
                      "--worker", str(TARGET / "debug" / "baton-worker"), "--logs", str(LOGS), "--root", str(ROOT)],
          runner_env)

    ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_REGION": REGION,
        **CREDENTIALS,
        "BATON_BUCKET": outputs["BucketName"],
        "BATON_STATE_MACHINE_ARN": outputs["PipelineStateMachineArn"],
        "BATON_SYNC_STATE_MACHINE_ARN": outputs["SyncStateMachineArn"],
        "BATON_TASK_STATE_MACHINE_ARN": outputs["TaskStateMachineArn"],
        "BATON_CLUSTER": outputs["ClusterArn"],
        "BATON_TASK_LOGS": str(LOGS / "{task_id}.log"),
        "BATON_LOCAL_BACKEND": BACKEND,
        "BATON_FAULT_HOP": HOP_ENDPOINT if FAULTS else "",
    }.items()))
    say(f"local stack up in {time.monotonic() - started:.0f} s; settings in {ENV_FILE}")
    print(ENV_FILE.read_text())


def down() -> None:
    stopped = []
    for name in PROCESSES:
        pid = pid_of(name)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)
            stopped.append(f"{name} ({pid})")
        (PIDS / f"{name}.pid").unlink(missing_ok=True)
    ENV_FILE.unlink(missing_ok=True)
    if shutil.which("podman"):
        local_image.remove_containers()  # none should be left; make sure
    say("stopped " + (", ".join(stopped) if stopped else "nothing: the local stack was not running"))


def status() -> None:
    for name in PROCESSES:
        pid = pid_of(name)
        print(f"{name:14} {'running, pid ' + str(pid) if pid else 'not running'}")
    if ENV_FILE.exists():
        print(ENV_FILE.read_text())


if __name__ == "__main__":
    {"up": up, "down": down, "status": status}[sys.argv[1] if len(sys.argv) > 1 else "status"]()
