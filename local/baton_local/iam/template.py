"""The IAM policies a template gives each role, and the resource policies it sets,
resolved with the values of a deployed stack, for the offline mutation check
(baton_local.iam.mutation). The template is read with baton_local.cfn_yaml.

`values` holds what CloudFormation would resolve: parameters and pseudo parameters
by name ("AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName"),
`Ref` of a resource by its logical id, `Fn::GetAtt` by "<LogicalId>.<Attribute>".
`conditions` holds each template condition's truth value. A name that is not in
`values` raises KeyError: a policy is never guessed.

SAM resources are expanded as the SAM translator does: a function or state machine
with `Policies` gets the role <LogicalId>Role with inline policies
<LogicalId>RolePolicy<n> (samtranslator, role_constructor), a function gets the
managed policy AWSLambdaBasicExecutionRole, and an SQS event adds
AWSLambdaSQSQueueExecutionRole (samtranslator, eventsources/pull.py). Managed
policies' documents are taken from `managed` (by ARN); those missing are listed in
RolePolicies.missing_managed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

_NO_VALUE = object()  # Ref AWS::NoValue: the property or list item is removed


class Resolver:
    def __init__(self, values: Mapping[str, Any], conditions: Mapping[str, bool] | None = None):
        self.values = values
        self.conditions = conditions or {}

    def _value(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"no resolved value for {name!r}") from None

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            return str(variables[name] if name in variables else self._value(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self._value(arg)
            if key == "Fn::GetAtt":
                name = ".".join(arg) if isinstance(arg, list) else arg
                return self._value(name)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return self._sub(text, variables)
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::If":
                return self.resolve(arg[1] if self.conditions[arg[0]] else arg[2])
            if key.startswith("Fn::"):
                raise ValueError(f"intrinsic function {key} is not supported")
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}


@dataclass
class RolePolicies:
    logical_id: str
    arn: str
    policies: dict[str, dict] = field(default_factory=dict)  # policy name -> document
    missing_managed: list[str] = field(default_factory=list)


def _managed_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/service-role/{name}"


def _included(resource: Mapping[str, Any], conditions: Mapping[str, bool]) -> bool:
    return "Condition" not in resource or bool(conditions.get(resource["Condition"]))


def role_policies(template: Mapping[str, Any], values: Mapping[str, Any],
                  conditions: Mapping[str, bool] | None = None,
                  managed: Mapping[str, Mapping] | None = None) -> dict[str, RolePolicies]:
    """{role ARN: RolePolicies} for each AWS::IAM::Role and each SAM function or state
    machine with Policies."""
    conditions = conditions or {}
    managed = managed or {}
    resolver = Resolver(values, conditions)
    partition = values.get("AWS::Partition", "aws")
    roles: dict[str, RolePolicies] = {}
    for logical_id, resource in template["Resources"].items():
        if not _included(resource, conditions):
            continue
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            role = RolePolicies(logical_id, resolver.resolve({"Fn::GetAtt": [logical_id, "Arn"]}))
            for policy in props.get("Policies", []):
                role.policies[policy["PolicyName"]] = resolver.resolve(policy["PolicyDocument"])
            managed_arns = resolver.resolve(props.get("ManagedPolicyArns", []))
        elif kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine") and "Role" not in props:
            role_id = f"{logical_id}Role"
            role = RolePolicies(role_id, resolver.resolve({"Fn::GetAtt": [role_id, "Arn"]}))
            documents = [p for p in props.get("Policies", []) if isinstance(p, dict) and "Statement" in p]
            for n, document in enumerate(documents):
                role.policies[f"{role_id}Policy{n}"] = resolver.resolve(document)
            managed_arns = []
            if kind == "AWS::Serverless::Function":
                managed_arns.append(_managed_arn(partition, "AWSLambdaBasicExecutionRole"))
                if any(e.get("Type") == "SQS" for e in props.get("Events", {}).values()):
                    managed_arns.append(_managed_arn(partition, "AWSLambdaSQSQueueExecutionRole"))
        else:
            continue
        for arn in managed_arns:
            if arn in managed:
                role.policies[arn] = dict(managed[arn])
            else:
                role.missing_managed.append(arn)
        roles[role.arn] = role
    return roles


@functools.lru_cache(maxsize=4)
def aws_managed_policies(partition: str = "aws") -> dict[str, dict]:
    """{ARN: document} of the AWS managed policies, from the copy moto ships (one
    shared dict: read it, do not change it)."""
    import json

    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return {f"arn:{partition}:iam::aws:policy{p['Path']}{name}": p["Document"]
            for name, p in json.loads(aws_managed_policies_data).items()}


def _queue_arn_from_url(url: str, region: str, partition: str) -> str:
    account, name = urlparse(url).path.strip("/").split("/")[-2:]
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def resource_policies(template: Mapping[str, Any], values: Mapping[str, Any],
                      conditions: Mapping[str, bool] | None = None) -> dict[str, dict]:
    """{bucket or queue ARN: policy document} from AWS::S3::BucketPolicy and
    AWS::SQS::QueuePolicy (whose Queues are the queues' URLs, as `Ref` gives them)."""
    conditions = conditions or {}
    resolver = Resolver(values, conditions)
    partition = values.get("AWS::Partition", "aws")
    found: dict[str, dict] = {}
    for resource in template["Resources"].values():
        if not _included(resource, conditions):
            continue
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::S3::BucketPolicy":
            bucket = resolver.resolve(props["Bucket"])
            found[f"arn:{partition}:s3:::{bucket}"] = resolver.resolve(props["PolicyDocument"])
        elif resource["Type"] == "AWS::SQS::QueuePolicy":
            document = resolver.resolve(props["PolicyDocument"])
            for url in resolver.resolve(props["Queues"]):
                found[_queue_arn_from_url(url, values["AWS::Region"], partition)] = document
    return found


# What Ref and Fn::GetAtt <Arn> give for each resource type (CloudFormation resource
# type reference, "Return values"), for synthetic_values.
_REF = {
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}",
    "AWS::Serverless::StateMachine": "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
    "AWS::ECS::TaskDefinition": "arn:{partition}:ecs:{region}:{account}:task-definition/{name}:1",
}
_ARN = {
    "AWS::S3::Bucket": "arn:{partition}:s3:::{name}",
    "AWS::ECS::Cluster": "arn:{partition}:ecs:{region}:{account}:cluster/{name}",
    "AWS::SQS::Queue": "arn:{partition}:sqs:{region}:{account}:{name}",
    "AWS::Logs::LogGroup": "arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
    "AWS::IAM::Role": "arn:{partition}:iam::{account}:role/{name}",
    "AWS::Serverless::Function": "arn:{partition}:lambda:{region}:{account}:function:{name}",
    "AWS::Events::Rule": "arn:{partition}:events:{region}:{account}:rule/{name}",
}


class SyntheticValues(dict):
    """Plausible resolved values for every resource of a template, as a stack named
    `stack` would have them (physical names <stack>-<LogicalId>), with the
    parameters' defaults: for checking a template offline, without a deployment."""

    def __init__(self, template: Mapping[str, Any], stack: str = "baton", region: str = "us-east-1",
                 account: str = "123456789012", partition: str = "aws", **overrides: Any):
        super().__init__({"AWS::StackName": stack, "AWS::Region": region, "AWS::AccountId": account,
                          "AWS::Partition": partition, "AWS::URLSuffix": "amazonaws.com"})
        for name, parameter in template.get("Parameters", {}).items():
            if "Default" in parameter:
                default = parameter["Default"]
                self[name] = default.split(",") if parameter.get("Type", "").startswith("List<") or \
                    parameter.get("Type") == "CommaDelimitedList" else default
        self.update(overrides)
        self._types = {k: r["Type"] for k, r in template.get("Resources", {}).items()}
        for logical_id, kind in list(self._types.items()):
            if kind in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
                self._types.setdefault(f"{logical_id}Role", "AWS::IAM::Role")
        self._where = {"partition": partition, "region": region, "account": account, "stack": stack}

    def __missing__(self, key: str) -> Any:
        logical_id, _, attribute = key.partition(".")
        kind = self._types.get(logical_id)
        if kind is None or attribute not in ("", "Arn"):
            raise KeyError(key)
        name = f"{self._where['stack']}-{logical_id}"
        fields = {**self._where, "name": name.lower() if kind == "AWS::S3::Bucket" else name}
        template = (_ARN.get(kind) if attribute == "Arn" else _REF.get(kind, "{name}"))
        if template is None:
            raise KeyError(key)
        return template.format(**fields)
