"""Evaluate one request against the caller's identity policies and the resource's
policy, as AWS does within one account.

Source: IAM user guide, "Policy evaluation logic" and "Policy evaluation for requests
within a single account":
1. an explicit Deny in any applicable policy (identity or resource) denies;
2. else an Allow in an identity policy OR in the resource's policy allows (within one
   account either is enough; across accounts both are needed: "Cross-account policy
   evaluation logic");
3. else the request is implicitly denied.

Not modelled (Baton uses none of them): SCPs, RCPs, permissions boundaries, session
policies, policy variables (a policy holding `${` raises UnsupportedPolicy), and the
Date, IP and Binary condition operators.

A request names its principal as AWS presents it: an assumed-role session ARN
(`arn:aws:sts::<acct>:assumed-role/<role>/<session>`, whose role ARN is
`arn:aws:iam::<acct>:role/<role>` unless `role_arn` says otherwise, for a role with a
path), a role or user ARN, or a service principal (`events.amazonaws.com`). A request
on several resources (DescribeTasks of many tasks) is allowed only when each is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .conditions import UnsupportedPolicy, action_matches, arn_matches, conditions_match

GLOBAL_PRINCIPAL_KEYS = ("aws:PrincipalArn", "aws:PrincipalAccount", "aws:PrincipalServiceName")


@dataclass(frozen=True)
class Principal:
    arn: str  # as AWS shows it in an error message
    role_arn: str | None = None  # aws:PrincipalArn of a role session
    account: str | None = None
    service: str | None = None  # a service principal such as events.amazonaws.com

    @classmethod
    def parse(cls, value: str, role_arn: str | None = None) -> Principal:
        if not value.startswith("arn:"):
            return cls(arn=value, service=value)
        parts = value.split(":", 5)
        if len(parts) != 6:
            raise ValueError(f"not an ARN: {value}")
        partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
        if service == "sts" and resource.startswith("assumed-role/"):
            role_name = resource.split("/")[1]
            return cls(value, role_arn or f"arn:{partition}:iam::{account}:role/{role_name}", account)
        if service == "iam" and resource.startswith("role/"):
            return cls(value, value, account)
        return cls(value, role_arn, account)

    @property
    def principal_arn(self) -> str | None:
        """aws:PrincipalArn: the role's ARN for a role session, else the ARN itself."""
        if self.service:
            return None
        return self.role_arn or self.arn


@dataclass(frozen=True)
class Request:
    principal: str
    action: str
    resources: tuple[str, ...] = ("*",)
    context: Mapping[str, Any] = field(default_factory=dict)
    role_arn: str | None = None  # the session's role ARN, when its path matters


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed by <sid>" | "explicit deny by <sid>" | "no statement allows"
    sid: str | None = None
    statement: Mapping[str, Any] | None = None
    policy: str | None = None  # the name of the policy holding the statement
    policy_type: str | None = None  # "identity-based" | "resource-based"
    resource: str | None = None  # the resource the decision is about

    @property
    def explicit_deny(self) -> bool:
        return not self.allowed and self.statement is not None

    def message(self, caller: str, action: str) -> str:
        """AWS's access-denied message (IAM user guide, "Troubleshoot access denied
        error messages")."""
        head = f"User: {caller} is not authorized to perform: {action} on resource: {self.resource}"
        if self.explicit_deny:
            article = "an" if (self.policy_type or "")[:1] in "aeiou" else "a"
            return f"{head} with an explicit deny in {article} {self.policy_type} policy"
        kind = "resource-based" if Principal.parse(caller).service else "identity-based"
        return f"{head} because no {kind} policy allows the {action} action"


def _list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _document(policy: Any) -> Mapping[str, Any]:
    doc = json.loads(policy) if isinstance(policy, (str, bytes)) else policy
    if not isinstance(doc, Mapping):
        raise UnsupportedPolicy(f"not a policy document: {policy!r}")
    if "${" in json.dumps(doc):
        raise UnsupportedPolicy("policy variables (${...}) are not supported")
    return doc


def named_policies(policies: Mapping[str, Any] | Iterable[Any] | None, default: str) -> list[tuple[str, Mapping]]:
    """[(name, document)] from a {name: document} mapping or a list of documents
    (named <default>#<n>); documents may be JSON text."""
    if policies is None:
        return []
    if isinstance(policies, Mapping) and "Statement" not in policies:
        return [(name, _document(doc)) for name, doc in policies.items()]
    if isinstance(policies, Mapping):
        return [(default, _document(policies))]
    return [(f"{default}#{n}", _document(doc)) for n, doc in enumerate(policies)]


def statements(name: str, document: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """[(sid, statement)]: the statement's Sid, else <policy name>[<index>]."""
    return [(s.get("Sid") or f"{name}[{i}]", s) for i, s in enumerate(_list(document.get("Statement")))]


def _matches_any(patterns: Any, value: str, match) -> bool:
    return any(match(str(p), value) for p in _list(patterns))


def _principal_matches(element: Any, who: Principal, effect: str) -> bool:
    """A resource policy's Principal element. "*" and {"AWS": "*"} match anyone; a
    role ARN matches its sessions; a service name matches that service. An account
    ("123456789012" or its root ARN) matches everyone in it for a Deny, but in an
    Allow only delegates to the account's own IAM policies, so it grants nothing
    by itself."""
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        raise UnsupportedPolicy(f"unknown Principal element {element!r}")
    for kind, values in element.items():
        for value in _list(values):
            if kind == "Service" and who.service == value:
                return True
            if kind != "AWS":
                continue
            if value == "*":
                return True
            account = value if value.isdigit() else None
            if value.endswith(":root"):
                account = value.split(":")[4]
            if account is not None:
                if effect == "Deny" and who.account == account:
                    return True
                continue
            if value in (who.arn, who.role_arn):
                return True
    return False


def statement_applies(statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, Any],
                      who: Principal | None = None) -> bool:
    """Does the statement cover this action on this resource in this context (and,
    for a resource policy, when `who` is given, this principal)?"""
    if "Action" in statement and not _matches_any(statement["Action"], action, action_matches):
        return False
    if "NotAction" in statement and _matches_any(statement["NotAction"], action, action_matches):
        return False
    if "Resource" in statement and not _matches_any(statement["Resource"], resource, arn_matches):
        return False
    if "NotResource" in statement and _matches_any(statement["NotResource"], resource, arn_matches):
        return False
    if who is not None:
        effect = statement.get("Effect")
        if "Principal" in statement and not _principal_matches(statement["Principal"], who, effect):
            return False
        if "NotPrincipal" in statement and _principal_matches(statement["NotPrincipal"], who, effect):
            return False
        if "Principal" not in statement and "NotPrincipal" not in statement:
            return False  # a resource policy statement names its principals
    return conditions_match(statement.get("Condition"), context)


def request_context(request: Request, who: Principal) -> dict[str, Any]:
    """The request's context with its keys lowercased, and the principal's global keys
    (aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalServiceName) added unless
    given."""
    context = {k.lower(): v for k, v in request.context.items()}
    derived = {"aws:principalarn": who.principal_arn, "aws:principalaccount": who.account,
               "aws:principalservicename": who.service}
    for key, value in derived.items():
        if value is not None:
            context.setdefault(key, value)
    return context


def _resource_account(resource: str) -> str | None:
    parts = resource.split(":")
    return parts[4] or None if len(parts) > 5 else None


def evaluate(request: Request, identity_policies: Mapping[str, Any] | Sequence[Any] | None = None,
             resource_policy: Mapping[str, Any] | str | None = None, *,
             resource_account: str | None = None) -> Decision:
    """The decision on the request: denied at the first resource that is denied, else
    allowed (by the statements that allowed the last resource)."""
    who = Principal.parse(request.principal, request.role_arn)
    context = request_context(request, who)
    identity = [] if who.service else named_policies(identity_policies, "identity")
    resource_docs = named_policies(resource_policy, "resource") if resource_policy else []
    decision = Decision(False, "no statement allows")
    for resource in request.resources or ("*",):
        owner = resource_account or _resource_account(resource) or who.account
        # A service principal has no identity policies: the resource policy decides.
        same_account = who.service is not None or owner == who.account
        decision = _evaluate_one(request.action, resource, context, who, identity, resource_docs, same_account)
        if not decision.allowed:
            return decision
    return decision


def _evaluate_one(action: str, resource: str, context: Mapping[str, Any], who: Principal,
                  identity: list[tuple[str, Mapping]], resource_docs: list[tuple[str, Mapping]],
                  same_account: bool) -> Decision:
    candidates = [(name, "identity-based", sid, s, None) for name, doc in identity for sid, s in statements(name, doc)]
    candidates += [(name, "resource-based", sid, s, who) for name, doc in resource_docs
                   for sid, s in statements(name, doc)]
    allows: dict[str, Decision] = {}
    for name, kind, sid, statement, principal in candidates:
        if not statement_applies(statement, action, resource, context, principal):
            continue
        effect = statement.get("Effect")
        if effect == "Deny":
            return Decision(False, f"explicit deny by {sid}", sid, statement, name, kind, resource)
        if effect != "Allow":
            raise UnsupportedPolicy(f"statement {sid}: Effect {effect!r}")
        allows.setdefault(kind, Decision(True, f"allowed by {sid}", sid, statement, name, kind, resource))
    identity_allow, resource_allow = allows.get("identity-based"), allows.get("resource-based")
    if same_account and (identity_allow or resource_allow):
        return identity_allow or resource_allow
    if not same_account and identity_allow and resource_allow:
        return identity_allow
    return Decision(False, "no statement allows", resource=resource)
