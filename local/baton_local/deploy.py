"""Deploy template.yaml to the local stack, as `sam package` + `sam deploy` would:
the state machine files and a placeholder code bundle go to the local S3, CodeUri and
DefinitionUri point at them, and the local CloudFormation (with the SAM transform
from compat) creates the stack. The same template and state machine files as on
AWS: nothing here lists resources.

    python -m baton_local.deploy --endpoint http://localhost:4566 --stack-name baton-local

Prints the stack's outputs as JSON. The Lambdas themselves run under
`cargo lambda watch`; the placeholder bundle only says so.
"""

import argparse
import copy
import io
import json
import sys
import time
import zipfile
from pathlib import Path

import boto3

from . import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]  # local/baton_local/<this file>
ARTIFACTS = "baton-local-artifacts"
PLACEHOLDER = b"#!/bin/sh\necho 'Locally, Baton Lambdas run under cargo lambda watch.' >&2\nexit 1\n"


def placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, PLACEHOLDER)
    return buffer.getvalue()


def package(template: dict, s3) -> dict:
    """Upload what CodeUri and DefinitionUri name; point them at S3."""
    packaged = copy.deepcopy(template)
    s3.put_object(Bucket=ARTIFACTS, Key="code/placeholder.zip", Body=placeholder_zip())
    for logical_id, resource in packaged["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = f"s3://{ARTIFACTS}/code/placeholder.zip"
        elif resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            key = f"statemachine/{logical_id}.asl.json"
            s3.put_object(Bucket=ARTIFACTS, Key=key, Body=(ROOT / props["DefinitionUri"]).read_bytes())
            props["DefinitionUri"] = f"s3://{ARTIFACTS}/{key}"
    return packaged


def binaries(template: dict) -> dict:
    """Function logical id → cargo binary, from each function's BuildProperties."""
    return {
        logical_id: resource["Metadata"]["BuildProperties"]["Binary"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def function_roles(cfn, lambda_client, stack_name: str, template: dict) -> dict:
    """Binary → the execution role ARN of its deployed function: each runs locally with
    a session of that role (baton_local.stack)."""
    by_logical_id = binaries(template)
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    return {
        by_logical_id[r["LogicalResourceId"]]:
            lambda_client.get_function_configuration(FunctionName=r["PhysicalResourceId"])["Role"]
        for r in resources
        if r.get("ResourceType") == "AWS::Lambda::Function" and r.get("LogicalResourceId") in by_logical_id
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--stack-name", default="baton-local")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--print-binaries", action="store_true", help="print the logical id → binary map and exit")
    args = parser.parse_args()
    template = cfn_yaml.load((ROOT / "template.yaml").read_text())
    if args.print_binaries:
        print(json.dumps(binaries(template)))
        return
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=args.region)
    s3 = session.client("s3", endpoint_url=args.endpoint)
    ec2 = session.client("ec2", endpoint_url=args.endpoint)
    cfn = session.client("cloudformation", endpoint_url=args.endpoint)
    s3.create_bucket(Bucket=ARTIFACTS)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    parameters = {
        "WorkerImageUri": "baton-worker",
        "CreateVpc": "false",
        "SubnetIds": subnet,
        "SecurityGroupIds": group,
        "AssignPublicIp": "ENABLED",
        "Architecture": "x86_64",
    }
    started = time.monotonic()
    cfn.create_stack(
        StackName=args.stack_name,
        TemplateBody=json.dumps(package(template, s3)),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    while True:
        stack = cfn.describe_stacks(StackName=args.stack_name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            break
        time.sleep(0.2)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=args.stack_name)["StackEvents"]
        failed = [e for e in events if "FAILED" in e["ResourceStatus"]]
        sys.exit(f"stack {stack['StackStatus']}: {json.dumps(failed, default=str, indent=1)[:4000]}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    roles = function_roles(cfn, session.client("lambda", endpoint_url=args.endpoint), args.stack_name, template)
    print(json.dumps({"seconds": round(time.monotonic() - started, 1), "outputs": outputs, "function_roles": roles}))


if __name__ == "__main__":
    main()
