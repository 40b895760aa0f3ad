"""Matching as IAM matches: wildcards in actions and ARNs, and the Condition element.

Sources (IAM user guide):
- "IAM JSON policy elements: Action" / "Resource": `*` matches any run of characters
  and `?` any one; actions match case-insensitively, ARNs case-sensitively, and each
  of an ARN's six colon-separated parts is matched on its own (the last, the
  resource, may itself hold colons).
- "IAM JSON policy elements: Condition operators": the String, Numeric, Bool, ARN and
  Null operators; the `...IfExists` suffix; a key missing from the request context
  makes a condition false, except for the negated operators (true), `IfExists`
  (true) and `Null`.
- "Conditions with multiple context keys or values": operators and keys are ANDed;
  the values of one key are ORed (NORed for a negated operator).
- "Single-valued vs. multivalued context keys": `ForAllValues:` is true when every
  request value matches one policy value, and also when the key is missing or
  empty; `ForAnyValue:` when at least one does, false when the key is missing.

Condition *key* names are case-insensitive (callers pass the context with its keys
lowercased); values are compared as each operator says. Operators this module does
not know (Date*, IpAddress, Binary*) raise UnsupportedPolicy, so a policy that needs
them fails loudly instead of being evaluated wrongly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any


class UnsupportedPolicy(ValueError):
    """A policy uses something this evaluator does not implement."""


@functools.lru_cache(maxsize=4096)
def _glob_regex(pattern: str, ignore_case: bool) -> re.Pattern:
    # Every character but the two wildcards is literal: regex metacharacters in ARNs
    # and keys (`.`, `+`, `$`, `(`…) must not act as regex syntax.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """`*` and `?` wildcards over the whole string."""
    return _glob_regex(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """An Action element against "service:Operation", case-insensitively."""
    return glob(pattern, action, ignore_case=True)


def arn_matches(pattern: str, value: str) -> bool:
    """A Resource element, or an ArnLike/ArnEquals value, against an ARN: part by part
    over the six colon-separated parts, case-sensitively. A bare `*` matches
    everything; an ARN with fewer than six parts matches nothing (IAM refuses it in a
    policy); two values that are not ARNs are matched as a whole."""
    if pattern == "*":
        return True
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) == 6 and len(v) == 6:
        return all(glob(a, b) for a, b in zip(p, v))
    if pattern.startswith("arn:") or value.startswith("arn:"):
        return False
    return glob(pattern, value)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bool_text(value: Any) -> str:
    return str(value).lower()


# base operator -> (negated, compare(policy value, request value) -> bool)
_STRING = {
    "StringEquals": (False, lambda p, v: str(p) == str(v)),
    "StringNotEquals": (True, lambda p, v: str(p) == str(v)),
    "StringEqualsIgnoreCase": (False, lambda p, v: str(p).casefold() == str(v).casefold()),
    "StringNotEqualsIgnoreCase": (True, lambda p, v: str(p).casefold() == str(v).casefold()),
    "StringLike": (False, lambda p, v: glob(str(p), str(v))),
    "StringNotLike": (True, lambda p, v: glob(str(p), str(v))),
    "ArnEquals": (False, lambda p, v: arn_matches(str(p), str(v))),
    "ArnLike": (False, lambda p, v: arn_matches(str(p), str(v))),
    "ArnNotEquals": (True, lambda p, v: arn_matches(str(p), str(v))),
    "ArnNotLike": (True, lambda p, v: arn_matches(str(p), str(v))),
    "Bool": (False, lambda p, v: _bool_text(p) == _bool_text(v)),
}


def _numeric(test):
    def compare(p, v):
        a, b = _number(v), _number(p)
        return a is not None and b is not None and test(a, b)

    return compare


_NUMERIC = {
    "NumericEquals": (False, _numeric(lambda a, b: a == b)),
    "NumericNotEquals": (True, _numeric(lambda a, b: a == b)),
    "NumericLessThan": (False, _numeric(lambda a, b: a < b)),
    "NumericLessThanEquals": (False, _numeric(lambda a, b: a <= b)),
    "NumericGreaterThan": (False, _numeric(lambda a, b: a > b)),
    "NumericGreaterThanEquals": (False, _numeric(lambda a, b: a >= b)),
}
_OPERATORS = {name.lower(): (name, *spec) for name, spec in {**_STRING, **_NUMERIC}.items()}


def parse_operator(operator: str) -> tuple[str | None, str, bool]:
    """"ForAnyValue:StringLikeIfExists" -> ("ForAnyValue", "StringLike", True)."""
    set_op = None
    base = operator
    if ":" in operator:
        qualifier, base = operator.split(":", 1)
        set_op = {"forallvalues": "ForAllValues", "foranyvalue": "ForAnyValue"}.get(qualifier.lower())
        if set_op is None:
            raise UnsupportedPolicy(f"unknown condition set operator {qualifier!r}")
    if_exists = base.lower().endswith("ifexists") and base.lower() != "null"
    if if_exists:
        base = base[: -len("IfExists")]
    if base.lower() == "null":
        if set_op or if_exists:
            raise UnsupportedPolicy(f"{operator}: Null takes no qualifier")
        return None, "Null", False
    if base.lower() not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator!r} is not supported")
    return set_op, _OPERATORS[base.lower()][0], if_exists


def _present(value: Any) -> bool:
    return value is not None and value != [] and value != ()


def key_matches(operator: str, policy_values: Any, request_value: Any) -> bool:
    """One operator, one key: the policy's values against the request's value(s)
    (None when the key is not in the request context)."""
    set_op, base, if_exists = parse_operator(operator)
    policy_values = _as_list(policy_values)
    if base == "Null":
        # {"key": "true"}: the key is absent; {"key": "false"}: it is present.
        want_absent = any(_bool_text(p) == "true" for p in policy_values)
        want_present = any(_bool_text(p) == "false" for p in policy_values)
        present = _present(request_value)
        return (want_absent and not present) or (want_present and present)
    _, negated, compare = _OPERATORS[base.lower()]
    if not _present(request_value):
        if if_exists or set_op == "ForAllValues":
            return True
        if set_op == "ForAnyValue":
            return False
        return negated
    values = _as_list(request_value)

    def hit(value) -> bool:
        return any(compare(p, value) for p in policy_values)

    if set_op is None:
        # A single-valued key (or, by choice, a multivalued one without a set
        # operator): any request value matching any policy value; NOR when negated.
        matched = any(hit(v) for v in values)
        return not matched if negated else matched
    each = (lambda v: not hit(v)) if negated else hit
    if set_op == "ForAllValues":
        return all(each(v) for v in values)
    return any(each(v) for v in values)


def conditions_match(condition: Mapping[str, Any] | None, context: Mapping[str, Any]) -> bool:
    """A whole Condition element against a context whose keys are lowercased."""
    if not condition:
        return True
    for operator, pairs in condition.items():
        if not isinstance(pairs, Mapping):
            raise UnsupportedPolicy(f"condition {operator!r} is not a key/value block")
        for key, values in pairs.items():
            if not key_matches(operator, values, context.get(key.lower())):
                return False
    return True
