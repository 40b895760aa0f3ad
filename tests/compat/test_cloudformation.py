"""compat.cloudformation's fix_cloudformation_skips_bucket_and_queue_policies: moto's
CloudFormation has no AWS::S3::BucketPolicy or AWS::SQS::QueuePolicy, so a stack's
bucket and queues get no policy; with the fix they get the template's, with Ref and
GetAtt resolved, replaced by an update and removed with the stack.

And fix_cloudformation_roles_skip_managed_policy_arns: moto's AWS::IAM::Role ignores
ManagedPolicyArns, so the role has no attached policy; with the fix every ARN is
attached (an AWS managed policy with its real document), updates attach and detach,
and an ARN that names no policy fails the stack."""

import json

import pytest
from botocore.exceptions import ClientError

from baton_local.testing import client


def tls_only(resource):
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": resource,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def senders(resource, sid="EventBridgeDelivers"):
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": sid, "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": resource}]}


def template():
    """A bucket and two queues of the stack's own, with policies naming them by Ref and
    GetAtt, as template.yaml's DataBucketPolicy and WatchdogQueuePolicy do."""
    bucket_arn = {"Fn::GetAtt": ["Data", "Arn"]}
    return {
        "Resources": {
            "Data": {"Type": "AWS::S3::Bucket"},
            "DataPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
                "Bucket": {"Ref": "Data"},
                "PolicyDocument": tls_only([bucket_arn, {"Fn::Sub": "${Data.Arn}/*"}])}},
            "Watchdog": {"Type": "AWS::SQS::Queue"},
            "WatchdogDlq": {"Type": "AWS::SQS::Queue"},
            "WatchdogPolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
                "Queues": [{"Ref": "Watchdog"}, {"Ref": "WatchdogDlq"}],
                "PolicyDocument": senders([{"Fn::GetAtt": ["Watchdog", "Arn"]},
                                           {"Fn::GetAtt": ["WatchdogDlq", "Arn"]}])}},
        },
        "Outputs": {"Bucket": {"Value": {"Ref": "Data"}},
                    "Queues": {"Value": {"Fn::Join": [",", [{"Ref": "Watchdog"}, {"Ref": "WatchdogDlq"}]]}}},
    }


def deploy(endpoint, name, body):
    cfn = client(endpoint, "cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(body))
    outputs = cfn.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def bucket_policy(endpoint, bucket):
    try:
        return json.loads(client(endpoint, "s3").get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchBucketPolicy"
        return None


def queue_policy(endpoint, url):
    attributes = client(endpoint, "sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    policy = attributes.get("Attributes", {}).get("Policy")
    return json.loads(policy) if policy else None


def test_gap_bucket_and_queue_policies_are_skipped_in_plain_moto(moto):
    outputs = deploy(moto, "gap-policies", template())
    queues = outputs["Queues"].split(",")
    found = (bucket_policy(moto, outputs["Bucket"]), [queue_policy(moto, url) for url in queues])
    assert found == (None, [None, None]), (
        "moto's CloudFormation now creates bucket or queue policies: "
        "delete compat.fix_cloudformation_skips_bucket_and_queue_policies")


def test_fixed_bucket_and_queue_policies_are_applied(host):
    outputs = deploy(host, "policies", template())
    bucket, queues = outputs["Bucket"], outputs["Queues"].split(",")
    assert bucket_policy(host, bucket) == tls_only([f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"])
    arns = [f"arn:aws:sqs:us-east-1:123456789012:{url.rsplit('/', 1)[1]}" for url in queues]
    assert [queue_policy(host, url) for url in queues] == [senders(arns)] * 2
    resources = client(host, "cloudformation").describe_stack_resources(StackName="policies")["StackResources"]
    assert {r["LogicalResourceId"]: r["ResourceStatus"] for r in resources
            if r["ResourceType"] in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy")} == {
        "DataPolicy": "CREATE_COMPLETE", "WatchdogPolicy": "CREATE_COMPLETE"}


def test_fixed_policies_of_resources_outside_the_stack_are_updated_and_removed(host):
    s3, sqs, cfn = client(host, "s3"), client(host, "sqs"), client(host, "cloudformation")
    s3.create_bucket(Bucket="policies-outside")
    url = sqs.create_queue(QueueName="policies-outside")["QueueUrl"]
    arn = "arn:aws:sqs:us-east-1:123456789012:policies-outside"

    def body(sid):
        return {"Parameters": {"Bucket": {"Type": "String"}, "Queue": {"Type": "String"}}, "Resources": {
            "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {
                "Bucket": {"Ref": "Bucket"}, "PolicyDocument": tls_only({"Fn::Sub": "arn:aws:s3:::${Bucket}/*"})}},
            "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
                "Queues": [{"Ref": "Queue"}], "PolicyDocument": json.dumps(senders(arn, sid))}}}}

    parameters = [{"ParameterKey": "Bucket", "ParameterValue": "policies-outside"},
                  {"ParameterKey": "Queue", "ParameterValue": url}]
    cfn.create_stack(StackName="policies-outside", TemplateBody=json.dumps(body("First")), Parameters=parameters)
    assert bucket_policy(host, "policies-outside") == tls_only("arn:aws:s3:::policies-outside/*")
    assert queue_policy(host, url) == senders(arn, "First")

    cfn.update_stack(StackName="policies-outside", TemplateBody=json.dumps(body("Second")), Parameters=parameters)
    assert queue_policy(host, url) == senders(arn, "Second")

    cfn.delete_stack(StackName="policies-outside")
    assert (bucket_policy(host, "policies-outside"), queue_policy(host, url)) == (None, None)


def test_fixed_a_queue_policy_naming_no_queue_fails_the_stack(host):
    cfn = client(host, "cloudformation")
    body = {"Resources": {"QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": ["https://sqs.us-east-1.amazonaws.com/123456789012/policies-nowhere"],
        "PolicyDocument": senders("*")}}}}
    # (moto creates a stack's resources within CreateStack, so the call itself fails)
    with pytest.raises(ClientError) as raised:
        cfn.create_stack(StackName="policies-nowhere", TemplateBody=json.dumps(body))
    assert raised.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


SQS_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def role_template(*arns):
    """A role (as the SAM transform writes a function's) with these ManagedPolicyArns,
    and a customer managed policy of the stack's own that the ARNs may name by Ref."""
    return {
        "Resources": {
            "Reader": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]},
                "ManagedPolicyArns": list(arns)}},
        },
        "Outputs": {"Role": {"Value": {"Ref": "Role"}}, "Reader": {"Value": {"Ref": "Reader"}}},
    }


def attached(endpoint, role):
    return sorted(p["PolicyArn"] for p in
                  client(endpoint, "iam").list_attached_role_policies(RoleName=role)["AttachedPolicies"])


def default_document(endpoint, arn):
    iam = client(endpoint, "iam")
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return json.loads(document) if isinstance(document, str) else document


def test_gap_role_managed_policy_arns_are_ignored_in_plain_moto(moto):
    outputs = deploy(moto, "gap-managed-policies", role_template(SQS_EXECUTION))
    assert attached(moto, outputs["Role"]) == [], (
        "moto's CloudFormation now attaches a role's ManagedPolicyArns: "
        "delete compat.fix_cloudformation_roles_skip_managed_policy_arns")


def test_fixed_role_managed_policy_arns_are_attached_updated_and_detached(host):
    cfn = client(host, "cloudformation")
    body = role_template({"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                                     "AWSLambdaSQSQueueExecutionRole"}, {"Ref": "Reader"})
    outputs = deploy(host, "managed-policies", body)
    role, reader = outputs["Role"], outputs["Reader"]
    assert attached(host, role) == sorted([SQS_EXECUTION, reader])
    # the AWS managed policy, with its document as AWS publishes it
    statements = default_document(host, SQS_EXECUTION)["Statement"]
    actions = {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= actions

    cfn.update_stack(StackName="managed-policies", TemplateBody=json.dumps(role_template(BASIC_EXECUTION)))
    assert attached(host, role) == [BASIC_EXECUTION]

    cfn.delete_stack(StackName="managed-policies")
    assert role not in [r["RoleName"] for r in client(host, "iam").list_roles()["Roles"]]


def test_fixed_an_unknown_managed_policy_arn_fails_the_stack(host):
    cfn = client(host, "cloudformation")
    missing = "arn:aws:iam::aws:policy/service-role/AWSLambdaNoSuchExecutionRole"
    # (moto creates a stack's resources within CreateStack, so the call itself fails)
    with pytest.raises(ClientError) as raised:
        cfn.create_stack(StackName="managed-policies-missing", TemplateBody=json.dumps(role_template(missing)))
    error = raised.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "NoSuchEntity", f"Policy {missing} does not exist or is not attachable.")
    assert not [r for r in client(host, "iam").list_roles()["Roles"]
                if r["RoleName"].startswith("managed-policies-missing")]


def task_definition_template():
    """A task definition with its roles, size and platform, as template.yaml's Task1Definition."""
    return {"Resources": {
        "Job": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}}},
        "Definition": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "Family": "job", "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"], "TaskRoleArn": {"Fn::GetAtt": ["Job", "Arn"]},
            "ExecutionRoleArn": {"Fn::GetAtt": ["Job", "Arn"]},
            "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
            "Tags": [{"Key": "team", "Value": "data"}],
            "ContainerDefinitions": [{"Name": "worker", "Image": "baton-worker", "Essential": True}]}},
    }, "Outputs": {"Definition": {"Value": {"Ref": "Definition"}}, "Role": {"Value": {"Fn::GetAtt": ["Job", "Arn"]}}}}


def test_gap_task_definitions_lose_their_roles_in_plain_moto(moto):
    outputs = deploy(moto, "task-definition-gap", task_definition_template())
    definition = client(moto, "ecs").describe_task_definition(taskDefinition=outputs["Definition"])["taskDefinition"]
    assert definition.get("taskRoleArn") is None and definition.get("cpu") is None, (
        "moto's CloudFormation now registers a task definition's roles and size: "
        "delete compat.fix_cloudformation_task_definitions_drop_their_roles")


def test_fixed_task_definitions_keep_their_roles_size_platform_and_tags(host):
    outputs = deploy(host, "task-definition", task_definition_template())
    answer = client(host, "ecs").describe_task_definition(taskDefinition=outputs["Definition"], include=["TAGS"])
    definition = answer["taskDefinition"]
    assert definition["taskRoleArn"] == outputs["Role"] and definition["executionRoleArn"] == outputs["Role"]
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == ("256", "512", "awsvpc")
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["runtimePlatform"] == {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
    assert answer["tags"] == [{"key": "team", "value": "data"}]


def change_set_outputs(endpoint, name):
    """A stack created by executing a change set of a queue and an output naming it:
    (its Outputs as DescribeStacks answers them, the queue's URL)."""
    cfn = client(endpoint, "cloudformation")
    body = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                       "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}}})
    cfn.create_change_set(StackName=name, ChangeSetName="create", ChangeSetType="CREATE", TemplateBody=body)
    cfn.execute_change_set(StackName=name, ChangeSetName="create")
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    queues = client(endpoint, "sqs").list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    return stack.get("Outputs", []), queues


def test_gap_change_sets_leave_no_outputs_in_plain_moto(moto):
    outputs, _ = change_set_outputs(moto, "gap-change-set")
    assert outputs == [], "moto now gives a change set's stack its outputs: delete " \
                          "compat.fix_cloudformation_change_sets_leave_no_outputs"


def test_fixed_a_change_sets_stack_answers_its_outputs(host):
    # AWS (ExecuteChangeSet, DescribeStacks): the stack a change set creates has the
    # template's outputs, resolved (sam deploy creates stacks this way).
    outputs, queues = change_set_outputs(host, "fixed-change-set")
    assert [(o["OutputKey"], o["OutputValue"].rsplit("/", 1)[1]) for o in outputs] == [
        ("QueueUrl", queues[0].rsplit("/", 1)[1])], (outputs, queues)
