"""The template's IAM, mutation-tested offline: every Allow statement must be needed.

For each Allow statement of each role's policies (and of each bucket or queue
policy), remove it and evaluate again the requests recorded for that role (or that
resource) by baton_local.iam.record: at least one request allowed with the full
policies must turn into a denial. A statement that no recorded request needs is
reported: either the suite never exercises it or the grant is wider than any call.

The policies come either from the template, resolved (baton_local.iam.template), or
from a deployed stack's IAM, S3 and SQS (policies_from_stack), which is what the
local deploy really created:

    python -m baton_local.iam.mutation --record .local/iam.jsonl \\
        --endpoint http://127.0.0.1:4566 --role-prefix baton-local-

or from a snapshot of them taken before the stack stopped (save_policies; the
end-to-end suite takes one beside its record, and `make test` checks it):

    python -m baton_local.iam.mutation --record .local/iam.jsonl --policies .local/iam.jsonl.policies.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .evaluate import Decision, Principal, evaluate, named_policies, statements
from .record import UNMAPPED, Recorded, read


@dataclass(frozen=True)
class Grant:
    """One Allow statement: of a role's identity policy, or of a resource policy."""

    owner: str  # the role ARN, or the bucket/queue ARN
    policy: str
    sid: str
    kind: str  # "identity" | "resource"


# Allow statements AWS needs that no request made on the local stack can need: the
# requests are AWS's own, made where the local stack has no counterpart. Each is
# (a fragment of the owner's ARN, or "*"; the statement's Sid): why, and the source.
# The check reports them as EXEMPT, and they must still be needed by nothing else.
EXEMPT: dict[tuple[str, str], str] = {
    ("StateMachineRole", "SyncIntegrationRule"):
        "events:PutTargets/PutRule/DescribeRule on Step Functions' managed rule for .sync: AWS's "
        "service creates it; moto's interpreter polls instead (Step Functions guide, \"IAM policies for "
        "Amazon ECS/AWS Fargate\", https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html)",
    ("StateMachineRole", "LogDelivery"):
        "logs:*LogDelivery for the state machines' logging configuration: called by Step Functions when the "
        "state machine is created, not by an execution; moto logs without IAM (Step Functions guide, "
        "\"Logging using CloudWatch Logs\", IAM policies for logging to CloudWatch Logs)",
    ("TaskExecutionRole", "RegistryLogin"):
        "ecr:GetAuthorizationToken by the ECS agent to pull the image: no registry locally (ECS guide, "
        "\"Amazon ECS task execution IAM role\")",
    ("TaskExecutionRole", "PullImages"):
        "ecr:BatchGetImage/GetDownloadUrlForLayer by the ECS agent: no registry locally (ECS guide, "
        "\"Amazon ECS task execution IAM role\")",
    ("TaskExecutionRole", "WriteLogs"):
        "logs:CreateLogStream/PutLogEvents by the awslogs driver: the local runner writes .local/logs "
        "(ECS guide, \"Amazon ECS task execution IAM role\")",
    ("DeadLetterQueue", "EventBridgeDelivers"):
        "EventBridge sends to the dead-letter queue only after a failed delivery, which the end-to-end "
        "suite never causes; tests/compat/test_events.py::test_fixed_eventbridge_dead_letter_queues_need_"
        "their_policy_too exercises it (EventBridge guide, \"Event retry policy and using dead-letter queues\")",
}


def exemption(grant: "Grant") -> str | None:
    return next((why for (owner, sid), why in EXEMPT.items()
                 if sid == grant.sid and (owner == "*" or owner in grant.owner)), None)


@dataclass
class Report:
    needed: dict[Grant, Recorded] = field(default_factory=dict)  # grant -> a request that needs it
    unneeded: list[Grant] = field(default_factory=list)
    mismatches: list[tuple[Recorded, Decision]] = field(default_factory=list)  # recorded vs re-evaluated
    exempt: list[Grant] = field(default_factory=list)  # needed by none, and on EXEMPT

    @property
    def ok(self) -> bool:
        return not self.unneeded and not self.mismatches

    def lines(self) -> list[str]:
        out = [f"NEEDED   {g.owner} {g.policy} {g.sid}: {r.request.action} {' '.join(r.request.resources)}"
               for g, r in self.needed.items()]
        out += [f"UNNEEDED {g.owner} {g.policy} {g.sid}: no recorded request needs it" for g in self.unneeded]
        out += [f"EXEMPT   {g.owner} {g.policy} {g.sid}: {exemption(g)}" for g in self.exempt]
        out += [f"MISMATCH {r.request.principal} {r.request.action} {r.request.resources}: recorded "
                f"{'allow' if r.allowed else 'deny'}, now {d.reason}" for r, d in self.mismatches]
        return out


def resource_policy_key(resource: str) -> str | None:
    """The ARN a resource policy is attached to: the bucket of an S3 object, the queue."""
    parts = resource.split(":", 5)
    if len(parts) != 6:
        return None
    if parts[2] == "s3":
        return f"arn:{parts[1]}:s3:::{parts[5].split('/', 1)[0]}"
    if parts[2] == "sqs":
        return resource
    return None


def _role_of(record: Recorded) -> str:
    who = Principal.parse(record.request.principal, record.request.role_arn)
    return who.service or who.role_arn or who.arn


def _resource_key(record: Recorded) -> str | None:
    if record.resource_policy:
        return record.resource_policy
    keys = {resource_policy_key(r) for r in record.request.resources}
    return keys.pop() if len(keys) == 1 else None


def _without(documents: Mapping[str, Mapping], policy: str, index: int) -> dict[str, Mapping]:
    trimmed = {name: doc for name, doc in documents.items()}
    doc = copy.deepcopy(dict(trimmed[policy]))
    body = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    doc["Statement"] = body[:index] + body[index + 1:]
    trimmed[policy] = doc
    return trimmed


def _dedupe(records: Iterable[Recorded]) -> list[Recorded]:
    seen: dict[str, Recorded] = {}
    for r in records:
        if r.reason.startswith(UNMAPPED):
            continue  # no policy decides a call that has no row in the actions table
        key = json.dumps([r.request.principal, r.request.role_arn, r.request.action, r.request.resources,
                          r.request.context, r.resource_policy], sort_keys=True, default=str)
        seen.setdefault(key, r)
    return list(seen.values())


def _allow_statements(documents: Mapping[str, Mapping], identity: bool = True) -> Iterable[tuple[str, int, str]]:
    """The Allow statements of the policies the stack defines: a role's AWS managed
    policies (named by their ARN) are AWS's, not the template's, to mutate."""
    for name, doc in documents.items():
        if identity and name.startswith("arn:"):
            continue
        for index, (sid, statement) in enumerate(statements(name, doc)):
            if statement.get("Effect") == "Allow":
                yield name, index, sid


def mutation_check(records: Iterable[Recorded], identity: Mapping[str, Mapping[str, Mapping]],
                   resources: Mapping[str, Mapping] | None = None) -> Report:
    """identity: {role ARN: {policy name: document}}; resources: {bucket or queue
    ARN: document}. Records of principals not in `identity` (administrators, other
    roles) are only used for the resource policies' statements."""
    resources = resources or {}
    identity = {role: dict(named_policies(docs, role)) for role, docs in identity.items()}
    report = Report()

    def decide(record: Recorded, role_docs: Mapping | None, resource_docs: Mapping | None) -> Decision:
        key = _resource_key(record)
        resource_policy = (resource_docs if resource_docs is not None else resources).get(key) if key else None
        own = role_docs if role_docs is not None else identity.get(_role_of(record), {})
        return evaluate(record.request, own, resource_policy)

    allowed = []
    for record in _dedupe(records):
        who = Principal.parse(record.request.principal, record.request.role_arn)
        if not who.service and _role_of(record) not in identity:
            continue  # another role (a test's own, or one outside --role-prefix): not the stack's policies
        decision = decide(record, None, None)
        if decision.allowed != record.allowed:
            report.mismatches.append((record, decision))
        elif decision.allowed:
            allowed.append(record)

    for role, documents in identity.items():
        mine = [r for r in allowed if _role_of(r) == role]
        for name, index, sid in _allow_statements(documents):
            grant = Grant(role, name, sid, "identity")
            trimmed = _without(documents, name, index)
            witness = next((r for r in mine if not decide(r, trimmed, None).allowed), None)
            _note(report, grant, witness)

    for owner, document in resources.items():
        documents = {owner: document}
        mine = [r for r in allowed if _resource_key(r) == owner]
        for name, index, sid in _allow_statements(documents, identity=False):
            grant = Grant(owner, name, sid, "resource")
            trimmed = {**resources, owner: _without(documents, name, index)[owner]}
            witness = next((r for r in mine if not decide(r, None, trimmed).allowed), None)
            _note(report, grant, witness)
    return report


def _note(report: Report, grant: Grant, witness: Recorded | None) -> None:
    if witness is None:
        (report.exempt if exemption(grant) else report.unneeded).append(grant)
    else:
        report.needed[grant] = witness


def _as_document(document):
    """A policy document as IAM returns it: a dict, JSON text, or (for the inline
    policies moto's CloudFormation created) the text of a Python dict."""
    if not isinstance(document, str):
        return document
    try:
        return json.loads(document)
    except json.JSONDecodeError:
        import ast

        return ast.literal_eval(document)


def policies_from_stack(session, endpoint: str, role_prefix: str = "") -> tuple[dict, dict]:
    """({role ARN: {policy name or ARN: document}}, {bucket or queue ARN: document})
    as a deployed stack has them: inline and attached managed policies of the roles
    whose names start with role_prefix, and every bucket and queue policy."""
    iam, s3, sqs = (session.client(s, endpoint_url=endpoint) for s in ("iam", "s3", "sqs"))
    identity: dict[str, dict] = {}
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if not role["RoleName"].startswith(role_prefix):
                continue
            docs = identity.setdefault(role["Arn"], {})
            for name in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                docs[name] = _as_document(
                    iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"])
            for attached in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]:
                policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
                version = iam.get_policy_version(PolicyArn=attached["PolicyArn"],
                                                 VersionId=policy["DefaultVersionId"])
                docs[attached["PolicyArn"]] = version["PolicyVersion"]["Document"]
    found: dict[str, dict] = {}
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            found[f"arn:aws:s3:::{bucket['Name']}"] = json.loads(s3.get_bucket_policy(Bucket=bucket["Name"])["Policy"])
        except s3.exceptions.ClientError:
            pass
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy", "QueueArn"])["Attributes"]
        if attributes.get("Policy"):
            found[attributes["QueueArn"]] = json.loads(attributes["Policy"])
    return identity, found


def save_policies(path, endpoint: str, role_prefix: str = "", region: str = "us-east-1") -> None:
    """Write policies_from_stack of the running stack to `path` (JSON), for a check
    after the stack has stopped."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
    identity, resources = policies_from_stack(session, endpoint, role_prefix)
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"identity": identity, "resources": resources}, out, indent=1, sort_keys=True)


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", required=True, help="the JSON-lines record (BATON_LOCAL_IAM_RECORD)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--endpoint", help="read the policies from the running stack")
    source.add_argument("--policies", help="read them from a snapshot written by save_policies")
    parser.add_argument("--role-prefix", default="", help="only the roles whose names start with this")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--verbose", action="store_true", help="list the needed statements too")
    args = parser.parse_args()
    if args.policies:
        with open(args.policies, encoding="utf-8") as snapshot:
            loaded = json.load(snapshot)
        identity = {arn: docs for arn, docs in loaded["identity"].items()
                    if arn.rsplit("/", 1)[-1].startswith(args.role_prefix)}
        resources = loaded["resources"]
    else:
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=args.region)
        identity, resources = policies_from_stack(session, args.endpoint, args.role_prefix)
    records = list(read(args.record))
    report = mutation_check(records, identity, resources)
    lines = report.lines() if args.verbose else [line for line in report.lines() if not line.startswith("NEEDED")]
    print("\n".join(lines))
    print(f"iam mutation: {len(records)} recorded decisions; of the stack's Allow statements {len(report.needed)} "
          f"are each needed by a recorded request, {len(report.exempt)} exempt (AWS's own requests, "
          f"EXEMPT), {len(report.unneeded)} needed by none; {len(report.mismatches)} decisions the policies "
          f"no longer explain")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
