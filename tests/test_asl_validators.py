"""AWS's ASL language service and asl-validator (npm, pinned in tests/asl) on every
state machine of the template, after substitution with realistic values: cfn-lint
and sam validate do not read DefinitionUri files at all. Both must report nothing."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from template_model import ROOT, load_template, render, state_machines

CHECK = ROOT / "tests" / "asl" / "check.js"
MACHINES = state_machines(load_template())


@pytest.mark.parametrize("name", [name for name, _ in MACHINES])
def test_aws_asl_validators_report_nothing(name, tmp_path):
    assert shutil.which("node"), "node is needed (make lint-asl installs the validators with npm)"
    assert (CHECK.parent / "node_modules" / "asl-validator").exists(), "run make lint-asl (npm ci in tests/asl)"
    definition, _, _ = render(dict(MACHINES)[name])
    path = tmp_path / f"{name}.asl.json"
    path.write_text(json.dumps(definition, indent=2))
    done = subprocess.run(["node", str(CHECK), str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "asl-validator valid, language service 0 diagnostics" in done.stdout, done.stdout


def test_the_validators_do_catch_a_broken_definition(tmp_path):
    # A definition with a dangling Next and an unknown state type must be refused,
    # so a pass above means something.
    definition, _, _ = render(dict(MACHINES)["SyncStateMachine"])
    first = definition["StartAt"]
    definition["States"][first]["Next"] = "Nowhere"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(definition, indent=2))
    done = subprocess.run(["node", str(CHECK), str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout
    assert "must be the name of an existing state" in done.stdout


EXAMPLES = sorted((ROOT / "examples" / "pipelines").glob("*.asl.json"))
EXAMPLE_VALUES = {
    "TaskStateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:baton-TaskStateMachine-AbC123",
    "MaxConcurrency": "5", "ItemsPerBatch": "10", "ToleratedFailurePercentage": "0", "Bucket": "baton-data-123456789012",
}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_pipelines_pass_the_validators_too(path, tmp_path):
    import re
    assert (CHECK.parent / "node_modules" / "asl-validator").exists(), "run make lint-asl (npm ci in tests/asl)"
    text = path.read_text()
    for name in set(re.findall(r"\$\{(\w+)\}", text)):
        value = EXAMPLE_VALUES.get(name, f"arn:aws:ecs:eu-west-1:123456789012:task-definition/baton-{name.lower()}:1")
        text = text.replace("${" + name + "}", value)
    rendered = tmp_path / path.name
    rendered.write_text(json.dumps(json.loads(text), indent=2))
    done = subprocess.run(["node", str(CHECK), str(rendered)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "asl-validator valid, language service 0 diagnostics" in done.stdout, done.stdout
