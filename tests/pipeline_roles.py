"""The role a user's pipeline needs (docs/pipelines.md): for the tests that run the
examples with a role of their own, as a user deploying them would."""

import json
import os

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}


def pipeline_role(iam, list_bucket=None, results_bucket=None) -> str:
    """A new role that may run and follow nested executions of any state machine (the
    stack's pipeline role may run only the reusable task; a Distributed Map's child
    executions are its own state machine's), list `list_bucket` for a prefix fan-out,
    and write a Distributed Map's results under `results_bucket`'s executions/ (and
    read the item files there). Its ARN."""
    name = f"pipeline-{os.urandom(4).hex()}"
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    statements = [
        {"Effect": "Allow", "Action": "states:StartExecution", "Resource": "arn:aws:states:*:*:stateMachine:*"},
        {"Effect": "Allow", "Action": ["states:DescribeExecution", "states:StopExecution"],
         "Resource": "arn:aws:states:*:*:execution:*"},
        {"Effect": "Allow", "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
         "Resource": "arn:aws:events:*:*:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"},
    ]
    if list_bucket:
        statements.append({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{list_bucket}"})
    if results_bucket:
        # ResultWriter (Step Functions guide, "ResultWriter (Map)", IAM policies) and the
        # JSON ItemReader (s3:GetObject).
        statements.append({"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts",
                                                         "s3:AbortMultipartUpload"],
                           "Resource": f"arn:aws:s3:::{results_bucket}/executions/*"})
    iam.put_role_policy(RoleName=name, PolicyName="pipeline",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return role
