"""baton_local.iam.conditions: wildcards and condition operators, against the
examples of AWS's IAM user guide ("IAM JSON policy elements: Condition operators",
"Conditions with multiple context keys or values", "Single-valued vs. multivalued
context keys", "Multivalued context key examples")."""

import pytest

from baton_local.iam.conditions import (
    UnsupportedPolicy, action_matches, arn_matches, conditions_match, glob, key_matches, parse_operator,
)


def ctx(**values):
    """A request context: keys as the evaluator passes them, lowercased; "__" in a
    keyword stands for ":" and "_" for "/"."""
    return {k.replace("__", ":").replace("_", "/").lower(): v for k, v in values.items()}


def test_wildcards_escape_regex_metacharacters():
    assert glob("a.b", "a.b") and not glob("a.b", "axb")
    assert glob("arn:aws:s3:::my+bucket/(x)/*", "arn:aws:s3:::my+bucket/(x)/key")
    assert not glob("arn:aws:s3:::my+bucket/*", "arn:aws:s3:::myybucket/k")
    assert glob("ab?", "abc") and not glob("ab?", "abcd") and glob("a*", "a") and glob("*", "")
    assert glob("$[^]{}|\\", "$[^]{}|\\")


def test_actions_match_case_insensitively_and_with_wildcards():
    assert action_matches("ecs:ListTasks", "ECS:listtasks")
    assert action_matches("s3:Get*", "s3:GetObjectVersion")
    assert action_matches("s3:*", "s3:ListBucket") and action_matches("*", "states:SendTaskSuccess")
    assert not action_matches("s3:Get*", "s3:PutObject")
    assert not action_matches("ecs:List*", "ecs:DescribeTasks")


def test_arns_match_case_sensitively_part_by_part():
    task = "arn:aws:ecs:us-east-1:123456789012:task/baton/abc"
    assert arn_matches("arn:aws:ecs:us-east-1:123456789012:task/baton/*", task)
    assert not arn_matches("arn:aws:ecs:us-east-1:123456789012:task/Baton/*", task)
    assert not arn_matches("arn:aws:ecs:us-east-1:123456789012:task/other/*", task)
    # a wildcard within one part does not reach into the next
    assert not arn_matches("arn:aws:ecs:us-*:task/baton/abc", task)
    assert arn_matches("arn:aws:ecs:*:*:task/baton/abc", task)
    # the resource part may hold colons, and * spans them there
    execution = "arn:aws:states:us-east-1:123456789012:execution:task:run-1"
    assert arn_matches("arn:aws:states:us-east-1:123456789012:execution:task:*", execution)
    assert not arn_matches("arn:aws:states:us-east-1:123456789012:execution:pipeline:*", execution)
    # a request on "*" is not covered by a resource-scoped grant
    assert arn_matches("*", "*") and not arn_matches("arn:aws:ecs:us-east-1:1:container-instance/c/*", "*")


def test_parse_operator():
    assert parse_operator("ForAnyValue:StringLikeIfExists") == ("ForAnyValue", "StringLike", True)
    assert parse_operator("foranyvalue:stringequals") == ("ForAnyValue", "StringEquals", False)
    assert parse_operator("Null") == (None, "Null", False)
    with pytest.raises(UnsupportedPolicy):
        parse_operator("DateGreaterThan")
    with pytest.raises(UnsupportedPolicy):
        parse_operator("Sometimes:StringEquals")


@pytest.mark.parametrize("operator,policy,request_value,expected", [
    ("StringEquals", "RunTask", "RunTask", True),
    ("StringEquals", "RunTask", "runtask", False),
    ("StringEqualsIgnoreCase", "RunTask", "runtask", True),
    ("StringNotEquals", ["a", "b"], "c", True),
    ("StringNotEquals", ["a", "b"], "b", False),  # NOR over the values
    ("StringNotEqualsIgnoreCase", "A", "a", False),
    ("StringLike", ["inbox/*", "executions/*"], "executions/run-1/out", True),
    ("StringLike", ["inbox/*", "executions/*"], "other/x", False),
    ("StringLike", "inbox/*", "Inbox/x", False),
    ("StringNotLike", "key1*", "key2", True),
    ("ArnEquals", "arn:aws:ecs:us-east-1:1:cluster/baton", "arn:aws:ecs:us-east-1:1:cluster/baton", True),
    ("ArnEquals", "arn:aws:ecs:us-east-1:1:cluster/baton", "arn:aws:ecs:us-east-1:1:cluster/other", False),
    ("ArnLike", "arn:aws:iam::1:role/baton-*", "arn:aws:iam::1:role/baton-Watchdog", True),
    ("ArnNotLike", ["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"], "arn:aws:iam::1:role/b", False),
    ("ArnNotLike", ["arn:aws:iam::1:role/a", "arn:aws:iam::1:role/b"], "arn:aws:iam::1:role/c", True),
    ("Bool", "false", False, True),
    ("Bool", "false", "false", True),
    ("Bool", "false", True, False),
    ("Bool", "true", "TRUE", True),
    # the guide's "NumericLessThanEquals": {"s3:max-keys": "10"}
    ("NumericLessThanEquals", "10", "10", True),
    ("NumericLessThanEquals", "10", 11, False),
    ("NumericLessThan", "10", "9.5", True),
    ("NumericGreaterThan", "10", "x", False),
    ("NumericGreaterThanEquals", 10, 10, True),
    ("NumericEquals", "3", 3, True),
    ("NumericNotEquals", "3", 4, True),
])
def test_operators(operator, policy, request_value, expected):
    assert key_matches(operator, policy, request_value) is expected


@pytest.mark.parametrize("operator,expected", [
    ("StringEquals", False), ("StringLike", False), ("ArnEquals", False), ("Bool", False),
    ("NumericLessThan", False),
    # "If the policy condition requires that the key is not matched, such as
    # StringNotLike or ArnNotLike, and the right key is not present, the condition is true."
    ("StringNotEquals", True), ("StringNotLike", True), ("ArnNotLike", True), ("NumericNotEquals", True),
    ("StringEqualsIfExists", True), ("ArnLikeIfExists", True), ("StringNotEqualsIfExists", True),
    ("ForAllValues:StringLike", True), ("ForAnyValue:StringLike", False),
])
def test_a_missing_key(operator, expected):
    assert key_matches(operator, ["x"], None) is expected
    assert key_matches(operator, ["x"], []) is expected


def test_if_exists_checks_the_value_when_present():
    # the guide: "StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}
    types = ["t1.*", "t2.*", "m3.*"]
    assert key_matches("StringLikeIfExists", types, "t2.micro")
    assert not key_matches("StringLikeIfExists", types, "m5.large")
    assert key_matches("StringLikeIfExists", types, None)


def test_null():
    # "Null": {"aws:TokenIssueTime": "true"}: true when the key is absent
    assert key_matches("Null", "true", None) and not key_matches("Null", "true", "2026-01-01T00:00:00Z")
    assert key_matches("Null", "false", "x") and not key_matches("Null", "false", None)


def test_for_all_values_the_guides_deny_example():
    # "Multivalued context key examples": Deny with
    # "ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}
    op = "ForAllValues:StringNotLike"
    assert not key_matches(op, "key1*", ["key1:legal"])
    assert not key_matches(op, "key1*", ["key1:hr", "key1:personnel"])
    assert key_matches(op, "key1*", ["key2:audit"])
    assert key_matches(op, "key1*", None)  # no aws:TagKeys in the request: match


def test_for_all_and_for_any_values():
    assert key_matches("ForAllValues:StringEquals", ["a", "b"], ["a", "b"])
    assert not key_matches("ForAllValues:StringEquals", ["a", "b"], ["a", "c"])
    assert key_matches("ForAnyValue:StringEquals", ["a", "b"], ["c", "b"])
    assert not key_matches("ForAnyValue:StringEquals", ["a", "b"], ["c", "d"])
    assert not key_matches("ForAnyValue:StringEquals", ["a"], None)
    assert key_matches("ForAnyValue:StringNotEquals", ["a"], ["a", "z"])


def test_several_keys_and_operators_the_guides_example():
    # "Conditions with multiple context keys or values": operators AND, keys AND,
    # values of one key OR.
    condition = {
        "StringEquals": {"aws:PrincipalTag/department": ["finance", "hr", "legal"],
                         "aws:PrincipalTag/role": ["audit", "security"]},
        "ArnLike": {"aws:PrincipalArn": ["arn:aws:iam::222222222222:user/Ana",
                                         "arn:aws:iam::222222222222:user/Mary"]},
    }
    mary = "arn:aws:iam::222222222222:user/Mary"
    assert conditions_match(condition, ctx(aws__PrincipalTag_department="finance", aws__PrincipalTag_role="audit",
                                           aws__PrincipalArn=mary))
    assert not conditions_match(condition, ctx(aws__PrincipalTag_department="finance", aws__PrincipalArn=mary))
    assert not conditions_match(condition, ctx(aws__PrincipalTag_department="hr", aws__PrincipalTag_role="audit",
                                               aws__PrincipalArn="arn:aws:iam::222222222222:user/Nikhil"))


def test_negated_operators_over_several_keys_the_guides_example():
    # "Evaluation logic for negated matching condition operators" (a Deny)
    condition = {
        "StringNotEquals": {"aws:PrincipalTag/department": ["finance", "hr", "legal"],
                            "aws:PrincipalTag/role": ["audit", "security"]},
        "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::222222222222:user/Ana",
                                            "arn:aws:iam::222222222222:user/Mary"]},
    }
    assert conditions_match(condition, ctx(aws__PrincipalTag_department="payroll", aws__PrincipalTag_role="intern",
                                           aws__PrincipalArn="arn:aws:iam::222222222222:user/Nikhil"))
    assert not conditions_match(condition, ctx(aws__PrincipalTag_department="legal", aws__PrincipalTag_role="intern",
                                               aws__PrincipalArn="arn:aws:iam::222222222222:user/Nikhil"))
    assert conditions_match(condition, ctx(aws__PrincipalArn="arn:aws:iam::222222222222:user/Nikhil"))


def test_condition_key_names_are_case_insensitive():
    # the evaluator lowercases the context's keys; the policy's are lowercased here
    assert conditions_match({"ArnEquals": {"ECS:Cluster": "arn:aws:ecs:r:1:cluster/c"}},
                            {"ecs:cluster": "arn:aws:ecs:r:1:cluster/c"})
    assert conditions_match({"StringEquals": {"ecs:CreateAction": "RunTask"}}, ctx(ECS__CREATEACTION="RunTask"))


def test_unknown_operators_are_refused_loudly():
    with pytest.raises(UnsupportedPolicy):
        conditions_match({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {})
