"""compat.lambda_: Lambda invocations reach `cargo lambda watch` (moto would need
Docker), and a function error comes back flagged as one."""

import json
import time

from baton_local.testing import client
from compat_helpers import FakeWatch, WatchServer, lambda_role


def test_fixed_lambda_invocations_reach_cargo_lambda_watch(host):
    lam = client(host, "lambda")
    lam.create_function(FunctionName="stack-EchoFunction-abc", Runtime="provided.al2023", Role=lambda_role(host),
                        Handler="bootstrap", Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    out = lam.invoke(FunctionName="stack-EchoFunction-abc", Payload=json.dumps({"hello": 1}))
    assert json.loads(out["Payload"].read()) == {"echo": {"hello": 1}}
    assert "FunctionError" not in out
    failed = lam.invoke(FunctionName="stack-EchoFunction-abc", Payload=json.dumps({"please-fail": 1}))
    assert failed.get("FunctionError") == "Handled"
    assert json.loads(failed["Payload"].read())["errorType"] == "Baton.InvalidInput"
    assert FakeWatch.calls[-1][0] == "/2015-03-31/functions/echo-binary/invocations"


def test_at_most_a_few_invocations_of_a_function_are_forwarded_at_once():
    # cargo lambda watch's request channel holds 100: with 200 waiting it handed none
    # to its idle instances. The forwarder lets FORWARDED_AT_ONCE through at a time,
    # the others wait their turn, and every one is answered.
    import threading
    from http.server import BaseHTTPRequestHandler

    from moto.awslambda.models import LambdaFunction

    from baton_local.compat.lambda_ import FORWARDED_AT_ONCE, fix_lambda_invoke_needs_docker

    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    class SlowWatch(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            time.sleep(0.05)
            with lock:
                state["now"] -= 1
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = WatchServer(("127.0.0.1", 0), SlowWatch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    original = LambdaFunction._invoke_lambda
    try:
        fix_lambda_invoke_needs_docker(f"http://127.0.0.1:{server.server_port}", {"Fn": "fn"})
        function = type("F", (), {"function_name": "stack-Fn-1"})()
        answers = []

        def call():
            try:
                answers.append(LambdaFunction._invoke_lambda(function, {"n": 1}))
            except Exception as error:  # shown by the assertion, not lost in its thread
                answers.append(repr(error))

        threads = [threading.Thread(target=call) for _ in range(3 * FORWARDED_AT_ONCE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        LambdaFunction._invoke_lambda = original
        server.shutdown()
    assert answers == [("{}", False, "")] * (3 * FORWARDED_AT_ONCE)
    assert 1 < state["most"] <= FORWARDED_AT_ONCE, state
