"""Make moto enforce IAM as AWS does, for callers holding role credentials.

Off unless installed: `install_from_env()` installs it when BATON_LOCAL_IAM=enforce
(baton_local.moto_host.configure calls it, after the compat fixes), and tests
call `install()` / `uninstall()` directly. Once installed, every request moto serves
goes through `_authorize` (it replaces moto's own
ActionAuthenticatorMixin._authenticate_and_authorize_action, which moto calls for
every operation of every service):

1. The access key is mapped to a principal: credentials that moto's STS issued by
   AssumeRole are that role's session. Any other key (the harness's static `test`
   keys, moto's Step Functions interpreter's fixed keys) is the account's
   administrator and is not checked, as the root user is not.
2. The call (service, operation, parameters) is mapped by baton_local.iam.actions to
   the checks AWS makes. An operation without a row there is refused.
3. Each check is evaluated (baton_local.iam.evaluate) against the role's policies in
   moto's IAM (inline and attached managed) and, for S3 objects and buckets and for
   SQS queues, the bucket's or queue's policy; each decision is recorded to
   BATON_LOCAL_IAM_RECORD when set (baton_local.iam.record).
4. A refusal is the service's own AWS error (baton_local.iam.refusal).

The services' own deliveries, which moto makes inside the process without a request,
are authorised by the compat fixes through `authorize` / `authorize_delivery` while
the hook is `installed()`: EventBridge to SQS targets and dead-letter queues, and to
Step Functions targets with the target's role (compat.events), and Lambda's SQS
event source mappings with the function's role (compat.sqs).

aws:SecureTransport. The local stack speaks plain http on 127.0.0.1, so the
request's scheme cannot say what the same request would use on AWS (where every
SDK call goes over https unless its endpoint is overridden, which is exactly what
the local stack does). The hook therefore treats the local endpoint as
TLS-equivalent: aws:SecureTransport is true for https requests, for requests with
`X-Forwarded-Proto: https`, and, while BATON_LOCAL_IAM_TLS_EQUIVALENT is "1" (the
default), for plain-http ones too. With it set to "0", plain http is insecure
transport and the bucket's DenyInsecureTransport statement refuses it, as AWS would.
Serving TLS instead would test the clients' TLS settings too, but every client would
need a local CA: boto3 (AWS_CA_BUNDLE), the Rust SDK (SSL_CERT_FILE with native
roots), the task containers (the CA mounted) and moto's embedded interpreter.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from .actions import Call, Check, UnknownOperation, checks_for
from .evaluate import Decision, Request, evaluate
from .record import UNMAPPED, Recorder
from .refusal import refuse, s3_operation

ENV = "BATON_LOCAL_IAM"
RECORD_ENV = "BATON_LOCAL_IAM_RECORD"
TLS_ENV = "BATON_LOCAL_IAM_TLS_EQUIVALENT"

# moto's service names -> IAM service prefixes
_PREFIX = {"stepfunctions": "states", "awslambda": "lambda"}


@dataclass
class Settings:
    recorder: Recorder | None = None
    tls_equivalent: bool = True


_settings = Settings()
_original = None
_lock = threading.Lock()


# ------------------------------------------------------------ moto's state
def _session(account: str, access_key: str):
    """moto's STS AssumedRole for the access key, or None."""
    from moto.sts.models import sts_backends

    for backend in list(sts_backends[account].values()):
        found = backend.get_assumed_role_from_access_key(access_key)
        if found is not None:
            return found
    return None


def _policy_text(document: Any) -> Any:
    if isinstance(document, bytes):
        document = document.decode()
    if isinstance(document, str):
        text = unquote(document) if document.lstrip().startswith("%7B") else document
        return json.loads(text)
    return document


def role_policies(account: str, partition: str, role_arn: str) -> dict[str, Any]:
    """{policy name or ARN: document}: the role's inline and attached managed
    policies, as moto's IAM holds them; {} for a role that does not exist."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account][partition]
    role = next((r for r in backend.roles.values() if r.arn == role_arn), None)
    if role is None:
        name = role_arn.rsplit("/", 1)[-1]
        role = next((r for r in backend.roles.values() if r.name == name), None)
    if role is None:
        return {}
    policies = {name: _policy_text(doc) for name, doc in role.policies.items()}
    for arn, managed in role.managed_policies.items():
        default = next(v for v in managed.versions if v.is_default)
        policies[arn] = _policy_text(default.document)
    return policies


def resource_policy(check: Check, account: str, region: str) -> tuple[str | None, Any]:
    """(the ARN it is attached to, document) of the bucket or queue policy that applies
    to the check's resource, or (None, None)."""
    resource = check.resources[0] if check.resources else "*"
    parts = resource.split(":", 5)
    if len(parts) != 6:
        return None, None
    if parts[2] == "s3":
        from moto.s3.models import s3_backends

        bucket_name = parts[5].split("/", 1)[0]
        bucket = s3_backends[account][parts[1]].buckets.get(bucket_name)
        if bucket is not None and bucket.policy:
            return f"arn:{parts[1]}:s3:::{bucket_name}", _policy_text(bucket.policy)
    elif parts[2] == "sqs":
        from moto.sqs.models import sqs_backends

        queue = sqs_backends[parts[4] or account][parts[3] or region].queues.get(parts[5])
        if queue is not None and queue.policy:
            return resource, _policy_text(queue.policy)
    return None, None


def trust_policy(role_arn: str) -> Any:
    """The role's trust policy (who may assume it), as moto's IAM holds it; None for
    a role that does not exist."""
    from moto.iam.models import iam_backends

    parts = role_arn.split(":", 5)
    if len(parts) != 6:
        return None
    name = parts[5].rsplit("/", 1)[-1]
    role = next((r for r in iam_backends[parts[4]][parts[1]].roles.values() if r.arn == role_arn or r.name == name),
                None)
    return _policy_text(role.assume_role_policy_document) if role is not None else None


def role_session(role_arn: str, session_name: str) -> str:
    """The ARN of a session of the role, as AWS shows a service acting with it
    (arn:aws:sts::<account>:assumed-role/<role name>/<session name>)."""
    parts = role_arn.split(":", 5)
    return f"arn:{parts[1]}:sts::{parts[4]}:assumed-role/{parts[5].rsplit('/', 1)[-1]}/{session_name}"


class MotoResolver:
    """Task definitions as moto's ECS holds them."""

    def task_definition(self, call: Call, reference: str) -> Mapping[str, Any] | None:
        from moto.ecs.models import ecs_backends

        try:
            definition = ecs_backends[call.account][call.region].describe_task_definition(reference)
        except Exception:  # noqa: BLE001 - an unknown definition: RunTask itself will refuse it
            return None
        return {"taskDefinitionArn": definition.arn, "taskRoleArn": getattr(definition, "task_role_arn", None),
                "executionRoleArn": getattr(definition, "execution_role_arn", None), "tags": definition.tags}


# ------------------------------------------------------------ the decision
def authorize(call: Call, caller: str, role_arn: str | None) -> tuple[Decision, str]:
    """Evaluate and record every check of the call made by `caller` (a role session
    ARN, with its role's ARN, or a service principal with role_arn None, whose
    context carries aws:SourceArn and aws:SourceAccount): (the first denial, or the
    last allow; the action it is about)."""
    try:
        checks = checks_for(call, MotoResolver())
    except UnknownOperation as error:
        request = Request(caller, f"{call.service}:{call.operation}", ("*",), {}, role_arn)
        decision = Decision(False, f"{UNMAPPED}: {error}", resource="*")
        _record(request, decision, call, None)
        return decision, request.action
    identity = role_policies(call.account, call.partition, role_arn) if role_arn else {}
    decision, action = Decision(True, "no check needed"), ""
    for check in checks:
        key, document = resource_policy(check, call.account, call.region)
        request = Request(caller, check.action, check.resources, check.context, role_arn)
        decision, action = evaluate(request, identity, document), check.action
        _record(request, decision, call, key)
        if not decision.allowed:
            break
    return decision, action


def authorize_delivery(service_principal: str, action: str, resource: str, source_arn: str, account: str,
                       region: str, partition: str = "aws") -> Decision:
    """A service's delivery authorised by the target's resource policy alone (an
    EventBridge rule sending to a queue): a check with aws:SourceArn and
    aws:SourceAccount, recorded like any other."""
    context = {"aws:SourceArn": source_arn, "aws:SourceAccount": account, "aws:SecureTransport": True}
    check = Check(action, "", (resource,), context)
    key, document = resource_policy(check, account, region)
    request = Request(service_principal, action, (resource,), context)
    decision = evaluate(request, None, document)
    _record(request, decision, Call(action.split(":")[0], action.split(":")[1], {}, region, account, partition),
            key)
    return decision


def _record(request: Request, decision: Decision, call: Call, resource_key: str | None) -> None:
    if _settings.recorder is not None:
        _settings.recorder.record(request, decision, f"{call.service}:{call.operation}", resource_key)


# ---------------------------------------------------------------- the hook
def _secure(response) -> bool:
    if urlparse(response.uri).scheme == "https" or response.headers.get("X-Forwarded-Proto") == "https":
        return True
    return _settings.tls_equivalent


def _params(response, service: str, resource: str) -> tuple[str, dict]:
    """(operation, parameters as the API takes them) of the request moto serves."""
    query = parse_qs(urlparse(response.uri).query, keep_blank_values=True)
    if service == "s3":
        return s3_operation(response.method, resource, query, response.headers)
    operation = response._get_action()
    if service == "lambda":
        path = unquote(urlparse(response.uri).path)
        name = path.split("/functions/", 1)[1].split("/")[0] if "/functions/" in path else ""
        return operation, {"FunctionName": name, **({"Qualifier": query["Qualifier"][0]} if "Qualifier" in query else {})}
    body = response.body.decode() if isinstance(response.body, bytes) else response.body
    if "json" in (response.headers.get("Content-Type") or "") and body:
        return operation, json.loads(body)
    return operation, {k: v[0] for k, v in response.querystring.items() if k not in ("Action", "Version")}


def _authorize(response, iam_request_cls: type, resource: str = "*") -> None:
    """In place of moto's ActionAuthenticatorMixin._authenticate_and_authorize_action."""
    account = response.current_account
    session = _session(account, response.get_access_key())
    if session is None:
        return  # the account's administrator
    service = _PREFIX.get(response.service_name, response.service_name)
    operation, params = _params(response, service, resource)
    call = Call(service, operation, params, response.region, account, session.partition, _secure(response))
    if response.headers.get("X-Amz-Security-Token") != session.session_token:
        decision, action = Decision(False, "the session token does not match the access key", resource="*"), \
            f"{service}:{operation}"
    else:
        decision, action = authorize(call, session.arn, session.role_arn)
    if not decision.allowed:
        refuse(response, service, session.arn, action, decision)


def _neutral_bucket_permission(self, action: str, resource: str):
    from moto.iam.access_control import PermissionResult

    return PermissionResult.NEUTRAL


def install(record: str | os.PathLike | None = None, tls_equivalent: bool = True) -> None:
    """Enforce from now on, in this process (idempotent).

    moto's S3 also checks a bucket's policy on its own, for every caller, without
    conditions (FakeBucket.get_permission: a conditional Deny such as the TLS-only
    one refuses everyone, over any transport). The hook evaluates bucket policies
    itself, with their conditions, so it turns moto's check off while installed."""
    global _original
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.s3.models import FakeBucket

    with _lock:
        _settings.recorder = Recorder(record) if record else None
        _settings.tls_equivalent = tls_equivalent
        if _original is None:
            _original = (ActionAuthenticatorMixin._authenticate_and_authorize_action, FakeBucket.get_permission)
            ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize
            FakeBucket.get_permission = _neutral_bucket_permission


def uninstall() -> None:
    global _original
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.s3.models import FakeBucket

    with _lock:
        if _original is not None:
            ActionAuthenticatorMixin._authenticate_and_authorize_action, FakeBucket.get_permission = _original
            _original = None
        _settings.recorder = None


def installed() -> bool:
    """Is the hook enforcing in this process? (The compat fixes authorise the
    services' own deliveries only then.)"""
    return _original is not None


def install_from_env() -> bool:
    """install() when BATON_LOCAL_IAM=enforce, recording to BATON_LOCAL_IAM_RECORD;
    True when installed."""
    if os.environ.get(ENV) != "enforce":
        return False
    install(os.environ.get(RECORD_ENV) or None, os.environ.get(TLS_ENV, "1") == "1")
    return True
