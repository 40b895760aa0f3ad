"""The local AWS: moto in server mode on 127.0.0.1 with Baton's compatibility fixes.

    python -m baton_local.moto_host --port 4566

Serves S3, Step Functions (really executing state machines), ECS, EventBridge,
Lambda, CloudFormation, IAM, SQS and Logs on one port until SIGTERM.
"""

import argparse
import json
import logging
import os
import signal
import threading


def configure(port: int, lambda_endpoint: str | None, lambda_binaries: dict) -> None:
    """Settings that must be in place before moto serves anything."""
    # The state machine interpreter calls other services at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    # aws-sam-translator asks boto for the region of the stack it translates.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from moto.core.config import default_user_config
    from moto.moto_api import state_manager

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    # ECS tasks stay where RunTask put them until the local runner moves them.
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 1_000_000_000})

    from . import compat
    from .iam import moto_hook

    compat.apply_all(lambda_endpoint, lambda_binaries)
    # IAM by role (BATON_LOCAL_IAM=enforce): role sessions are held to their policies,
    # each decision recorded to BATON_LOCAL_IAM_RECORD when that is set.
    log = logging.getLogger("baton.moto_host")
    if moto_hook.install_from_env():
        record = os.environ.get(moto_hook.RECORD_ENV)
        log.info("IAM enforced by role%s", f", decisions recorded to {record}" if record else "")
    else:
        log.info("IAM not enforced (%s=%s)", moto_hook.ENV, os.environ.get(moto_hook.ENV, ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--lambda-endpoint", help="cargo lambda watch, e.g. http://127.0.0.1:9000")
    parser.add_argument("--lambda-endpoints", default="{}",
                        help="JSON: binary → its own cargo lambda watch (one per function role), else --lambda-endpoint")
    parser.add_argument("--lambda-binaries", default="{}", help="JSON: function logical id or name → binary")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    endpoints = json.loads(args.lambda_endpoints)
    endpoint = {**endpoints, "*": args.lambda_endpoint} if endpoints and args.lambda_endpoint else args.lambda_endpoint
    configure(args.port, endpoint, json.loads(args.lambda_binaries))

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    logging.getLogger("baton.moto_host").info("serving on http://%s:%d", args.host, args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()
