"""Reading template.yaml and the state machine files it names, for the checks in
test_template.py (no AWS, no network)."""

import json
import re
from pathlib import Path

from baton_local import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent


def load_template(path: Path = ROOT / "template.yaml") -> dict:
    return cfn_yaml.load(path.read_text())


def state_machines(template: dict):
    """(logical id, resource) of every AWS::Serverless::StateMachine."""
    return [(k, r) for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::StateMachine"]


# Plausible worst-case values for substitutions, as CloudFormation would render them.
SAMPLE_SUBSTITUTIONS = {
    "SubnetIds": 'subnet-0123456789abcdef0","subnet-0123456789abcdef1',
    "SecurityGroupIds": "sg-0123456789abcdef0",
    "AssignPublicIp": "ENABLED",
    "CapacityProvider": "FARGATE_SPOT",
    "HeartbeatSeconds": "300",
    "TimeoutSeconds": "86400",
}


def placeholders(text: str) -> set:
    return set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))


def render(resource: dict) -> tuple:
    """The definition with every substitution filled in: (definition dict, raw text,
    substitution names)."""
    props = resource["Properties"]
    text = (ROOT / props["DefinitionUri"]).read_text()
    names = set(props.get("DefinitionSubstitutions", {}))
    rendered = text
    for name in placeholders(text):
        value = SAMPLE_SUBSTITUTIONS.get(name, f"sample-{name}")
        rendered = rendered.replace("${" + name + "}", value)
    return json.loads(rendered), text, names


def baton_error_names() -> set:
    """The Baton.* names the library defines (crates/baton/src/error.rs)."""
    source = (ROOT / "crates/baton/src/error.rs").read_text()
    return set(re.findall(r'"(Baton\.[A-Za-z]+)"', source))


def iam_statements(template: dict):
    """(logical id, statement) of every IAM statement in roles, SAM functions and
    state machines."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            documents = [p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, statement
