"""compat.lambda_: Lambda invocations reach `cargo lambda watch` (moto would need
Docker), and a function error comes back flagged as one."""

import json

from baton_local.testing import client
from compat_helpers import FakeWatch, lambda_role


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
