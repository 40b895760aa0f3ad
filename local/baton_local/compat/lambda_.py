"""Lambda: invocations go to `cargo lambda watch` (moto runs functions only in Docker).
Named `lambda_` since `lambda` is a keyword."""

from ._shared import dumps

# Invocations of one binary forwarded to cargo lambda watch at a time (its request
# channel holds 100).
FORWARDED_AT_ONCE = 32


def fix_lambda_invoke_needs_docker(endpoint, binaries):
    """moto runs Lambda functions only in Docker, which this machine does not have.
    Forward each invocation to the Lambda Invoke API of `cargo lambda watch` at
    `endpoint`, naming the binary: `binaries` maps a function's logical id (a part of
    its generated name) or its name to the binary (`BuildProperties.Binary`).

    cargo lambda watch answers a function error with HTTP 500 and
    `{"errorType", "errorMessage"}`; moto's caller gets that body flagged as a
    function error, as real Lambda would flag it with X-Amz-Function-Error.

    `endpoint` may instead map a binary to its own `cargo lambda watch` (the local
    stack runs one per function, each with its function role's credentials), "*" to
    the one for any other binary.

    At most FORWARDED_AT_ONCE invocations of a binary are forwarded at a time; the
    others wait here for a turn. cargo lambda watch takes its requests through a
    channel of 100: with 200 PrepareInput calls at once (a Distributed Map's 200
    batches starting together) it stopped handing any to its 8 idle instances, and
    the 200 waited for ever (observed 2026-12-07, cargo-lambda 1.8). On AWS they run
    side by side; locally they queue either way (8 instances a function)."""
    import threading
    import urllib.error
    import urllib.request

    from moto.awslambda.models import LambdaFunction

    turns = {}  # binary → the semaphore of its forwarded invocations
    turns_lock = threading.Lock()

    def turn(binary):
        with turns_lock:
            return turns.setdefault(binary, threading.BoundedSemaphore(FORWARDED_AT_ONCE))

    def binary_for(function_name):
        if function_name in binaries.values():
            return function_name
        for key, binary in binaries.items():
            if key in function_name:
                return binary
        return None

    def invoke_lambda(self, event=None):
        binary = binary_for(self.function_name)
        if binary is None:
            message = f"no local binary for Lambda function {self.function_name}"
            return dumps({"errorType": "Baton.LocalStack", "errorMessage": message}), True, message
        body = event if isinstance(event, (str, bytes)) else dumps(event)
        if isinstance(body, str):
            body = body.encode()
        base = endpoint.get(binary, endpoint.get("*")) if isinstance(endpoint, dict) else endpoint
        request = urllib.request.Request(
            f"{base}/2015-03-31/functions/{binary}/invocations",
            data=body, method="POST", headers={"Content-Type": "application/json"},
        )
        with turn(binary):
            try:
                with urllib.request.urlopen(request, timeout=900) as response:
                    return response.read().decode(), False, ""
            except urllib.error.HTTPError as error:
                payload = error.read().decode()
                return payload, True, payload

    LambdaFunction._invoke_lambda = invoke_lambda
