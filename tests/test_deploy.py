"""`make deploy` and `make destroy` (deploy/baton_deploy.py) against the local stack's
moto: ECR, CloudFormation (with the SAM transform) and S3, through the real AWS CLI and
SAM CLI.

What cannot run here: the image's login, build and push. No registry exists on this
machine (moto's ECR keeps repositories and image manifests, not layers), so the
script runs with --image-dry-run and the test checks the exact commands it would run.
`sam build` (release builds of three Lambdas, minutes) is replaced by a build folder
of the same shape (CodeUri a folder with a bootstrap, the state machine files beside
the template); `sam deploy` itself then packages it, uploads it and deploys it to the
local CloudFormation with the parameters the script computed.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "baton_deploy.py"
sys.path.insert(0, str(ROOT / "deploy"))
import baton_deploy  # noqa: E402

# The builder stage's platform: this machine's (the build cross-compiles).
HOST_PLATFORM = baton_deploy.PLATFORMS[baton_deploy.host_architecture()]

@pytest.fixture(autouse=True)
def the_aws_cli():
    """make deploy drives AWS through the AWS CLI; `make test-e2e` installs it
    (.venv-awscli, pinned) and puts it on PATH. Missing, the tests fail: never a
    silent skip."""
    if shutil.which("aws") is None:
        pytest.fail("the AWS CLI (aws) is not on PATH: run through `make test-e2e`, or put .venv-awscli/bin on PATH")


def run(*args, env, check=True):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


# --------------------------------------------------------------- the content tag

def sources(tmp_path: Path) -> Path:
    root = tmp_path / "clone"
    for source in baton_deploy.IMAGE_SOURCES:
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, root / source, ignore=shutil.ignore_patterns("target", "__pycache__"))
        else:
            (root / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / source)
    (root / "worker-image" / "tests").mkdir()
    (root / "worker-image" / "tests" / "t.rs").write_text("// a test\n")
    return root


def test_the_content_tag_follows_the_image_sources_only(tmp_path):
    root = sources(tmp_path)
    tag = baton_deploy.content_tag(root, "arm64")
    assert tag.startswith("arm64-") and len(tag) == len("arm64-") + 12
    assert baton_deploy.content_tag(root, "arm64") == tag, "unchanged sources, same tag"
    assert baton_deploy.content_tag(ROOT, "arm64") == tag, "a copy of the sources has this clone's tag"
    assert baton_deploy.content_tag(root, "x86_64") != tag, "one tag per architecture"
    (root / "worker-image" / "tests" / "t.rs").write_text("// another test\n")
    (root / "README.md").write_text("docs\n")
    assert baton_deploy.content_tag(root, "arm64") == tag, "tests and docs are not in the image"
    main = root / "worker-image" / "src" / "main.rs"
    main.write_text(main.read_text() + "\n// changed\n")
    changed = baton_deploy.content_tag(root, "arm64")
    assert changed != tag, "a worker source changed, a new tag"
    (root / "crates" / "baton" / "src" / "new.rs").write_text("// new\n")
    assert baton_deploy.content_tag(root, "arm64") not in (tag, changed), "a new file in the library, a new tag"
    # The command line prints the same tag.
    printed = subprocess.run([sys.executable, str(SCRIPT), "tag", "--root", str(root), "--architecture", "arm64"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == baton_deploy.content_tag(root, "arm64")


def test_parameters_reach_sam_whole():
    """PARAMS (shell words, as samconfig's parameter_overrides) → SAM CLI's own parser."""
    from samcli.cli.types import CfnParameterOverridesType

    given = baton_deploy.parse_overrides("""A=x86_64 B='exec,--,sh,-c,sort | uniq -c' C=a,b D='say "hi" \\ bye'""")
    assert given["B"] == "exec,--,sh,-c,sort | uniq -c" and given["D"] == 'say "hi" \\ bye'
    tokens = [baton_deploy.sam_override(k, v) for k, v in given.items()]
    assert CfnParameterOverridesType().convert(tuple(tokens), None, None) == given


def test_every_template_parameter_is_in_the_deploy_docs():
    from baton_local import cfn_yaml

    parameters = cfn_yaml.load((ROOT / "template.yaml").read_text())["Parameters"]
    table = [line for line in (ROOT / "docs" / "deploy.md").read_text().splitlines() if line.startswith("| `")]
    documented = {name.strip("` ") for line in table for name in line.split("|")[1].split(",")}
    assert sorted(set(parameters) - documented) == [], "parameters missing from docs/deploy.md's table"


# --------------------------------------------------------------- against the local stack

@pytest.fixture(scope="module")
def aws(stack, tmp_path_factory):
    """The environment the script runs in: the local stack's endpoint and keys, SAM CLI
    from .venv, and SAM CLI's settings in a folder of their own (no telemetry, its
    weekly version check marked done: no traffic leaves this machine)."""
    sam_dir = tmp_path_factory.mktemp("sam-app-dir")
    (sam_dir / "metadata.json").write_text(json.dumps(
        {"telemetryEnabled": False, "lastVersionCheck": time.time() + 86400 * 365}))
    endpoint = stack.env["AWS_ENDPOINT_URL"]
    # moto reads a TemplateURL's bucket from the path (path-style, as SAM CLI writes it
    # for a custom endpoint) only when the host is "localhost": the same loopback moto.
    endpoint = endpoint.replace("127.0.0.1", "localhost")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in
           ("STACK", "REGION", "PARAMS", "EMPTY_BUCKET", "BUCKET", "DRY_RUN", "IMAGE_DRY_RUN", "CONFIG_ENV")}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_REGION=stack.env["AWS_REGION"],
               AWS_ACCESS_KEY_ID=stack.env["AWS_ACCESS_KEY_ID"], AWS_SECRET_ACCESS_KEY=stack.env["AWS_SECRET_ACCESS_KEY"],
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_EC2_METADATA_DISABLED="true",
               SAM_CLI_TELEMETRY="0", __SAM_CLI_APP_DIR=str(sam_dir),
               PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", CONTAINER_TOOL="")
    return env


def client(env, service):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """What `sam build` leaves, in shape: the template with each CodeUri a folder
    holding a bootstrap, and the state machine files beside it."""
    folder = tmp_path_factory.mktemp("sam-build")
    (folder / "fn").mkdir()
    (folder / "fn" / "bootstrap").write_text("#!/bin/sh\nexit 1\n")
    shutil.copytree(ROOT / "statemachine", folder / "statemachine")
    template = (ROOT / "template.yaml").read_text()
    assert "CodeUri: .\n" in template
    (folder / "template.yaml").write_text(template.replace("CodeUri: .\n", "CodeUri: fn\n"))
    return folder / "template.yaml"


@pytest.fixture
def names(aws):
    """A stack and repository name of this test's own; whatever a failed run leaves is removed."""
    name = f"baton-deploytest-{uuid.uuid4().hex[:6]}"
    yield name, f"{name}-worker"
    cfn, ecr = client(aws, "cloudformation"), client(aws, "ecr")
    try:
        cfn.delete_stack(StackName=name)
    except Exception:
        pass
    try:
        ecr.delete_repository(repositoryName=f"{name}-worker", force=True)
    except Exception:
        pass


def test_deploy_then_destroy(aws, built, names):
    name, repository = names
    ecr, cfn, s3, ec2 = (client(aws, s) for s in ("ecr", "cloudformation", "s3", "ec2"))
    tag = baton_deploy.content_tag(ROOT, "x86_64")
    subnet = ec2.describe_subnets()["Subnets"][0]
    vpc = subnet["VpcId"]
    group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                  {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
    table = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    # Private subnets without NAT: the template's VPC endpoints, in the local VPC.
    params = (f"Architecture=x86_64 CreateVpc=false SubnetIds={subnet['SubnetId']} SecurityGroupIds={group} "
              f"AssignPublicIp=DISABLED VpcEndpoints=true VpcId={vpc} RouteTableIds={table} "
              "Task2Command='exec,--,sh,-c,sort | uniq -c'")
    common = ["--stack", name, "--repository", repository, "--params", params]

    # 1. --dry-run: every command that would change something, and nothing changed.
    dry = run("deploy", *common, "--dry-run", "--container-tool", "sh", env=aws)
    account = "123456789012"
    uri = f"{account}.dkr.ecr.{aws['AWS_REGION']}.amazonaws.com/{repository}"
    lines = [line for line in dry.stdout.splitlines() if line.startswith("would run: ")]
    assert lines[0] == (f"would run: aws ecr create-repository --region us-east-1 --repository-name {repository} "
                        "--image-tag-mutability IMMUTABLE --image-scanning-configuration scanOnPush=true")
    assert lines[1] == (f"would run: aws ecr get-login-password --region us-east-1 | "
                        f"sh login --username AWS --password-stdin {uri.split('/')[0]}")
    assert lines[2] == (f"would run: sh build --platform linux/amd64 --target image --build-arg TARGETARCH=amd64 "
                        f"--build-arg BUILDPLATFORM={HOST_PLATFORM} -f worker-image/Dockerfile "
                        f"-t {uri}:{tag} .")
    assert lines[3] == f"would run: sh push {uri}:{tag}"
    assert " build --config-env default --beta-features --parameter-overrides Architecture=x86_64 " in lines[4]
    assert f"WorkerImageUri={uri}:{tag}" in lines[4] and f"WorkerImageUri={uri}:{tag}" in lines[5]
    assert " deploy --config-env default " in lines[5] and "--resolve-s3 --no-confirm-changeset" in lines[5]
    assert repository not in [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]

    # 2. The deploy: repository created, image commands printed (no registry here),
    #    sam deploy to the local CloudFormation.
    s3.create_bucket(Bucket=f"{name}-artifacts")
    deployed = run("deploy", *common, "--image-dry-run", "--container-tool", "sh", "--template", str(built),
                   "--s3-bucket", f"{name}-artifacts", env=aws)
    assert f"ECR repository {repository}: created ({uri})" in deployed.stderr
    found = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    assert found["imageTagMutability"] == "IMMUTABLE" and found["imageScanningConfiguration"]["scanOnPush"]
    assert (f"would run: sh build --platform linux/amd64 --target image --build-arg TARGETARCH=amd64 "
            f"--build-arg BUILDPLATFORM={HOST_PLATFORM} -f worker-image/Dockerfile -t {uri}:{tag} .") \
        in deployed.stdout
    described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
    assert parameters["WorkerImageUri"] == f"{uri}:{tag}" and parameters["Architecture"] == "x86_64"
    resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    assert {r["ResourceStatus"] for r in resources} == {"CREATE_COMPLETE"}
    # (moto lists some resources of a change set without their logical id)
    assert {"DataBucket", "Cluster", "Task1Definition", "TaskStateMachine", "PipelineStateMachine",
            "TaskWatchdogFunction"} <= {r.get("LogicalResourceId") for r in resources}
    bucket = next(r["PhysicalResourceId"] for r in resources if r.get("LogicalResourceId") == "DataBucket")
    task2 = next(r["PhysicalResourceId"] for r in resources if r.get("LogicalResourceId") == "Task2Definition")
    container = client(aws, "ecs").describe_task_definition(taskDefinition=task2)["taskDefinition"]["containerDefinitions"][0]
    assert container["command"] == ["exec", "--", "sh", "-c", "sort | uniq -c"], "a value with spaces arrives whole"
    prefix = f"com.amazonaws.{aws['AWS_REGION']}."
    endpoints = {e["ServiceName"].removeprefix(prefix): e for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]}
    assert {"s3", "ecr.api", "ecr.dkr", "logs", "states"} <= set(endpoints)
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway" and endpoints["s3"]["RouteTableIds"] == [table]
    for service in ("ecr.api", "ecr.dkr", "logs", "states"):
        endpoint = endpoints[service]
        assert endpoint["VpcEndpointType"] == "Interface" and endpoint["PrivateDnsEnabled"]
        assert endpoint["SubnetIds"] == [subnet["SubnetId"]]
    endpoint_group = ec2.describe_security_groups(GroupIds=[endpoints["logs"]["Groups"][0]["GroupId"]])["SecurityGroups"][0]
    assert [(p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]])
            for p in endpoint_group["IpPermissions"]] == [(443, 443, [group])]
    # moto's CloudFormation ignores a bucket's VersioningConfiguration; the template
    # enables it, as here.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert f"stack {name} in us-east-1: CREATE_COMPLETE" in deployed.stdout
    # The outputs the script prints (a stack sam deploy creates through a change set has
    # them: compat.fix_cloudformation_change_sets_leave_no_outputs).
    keys = {o["OutputKey"] for o in described["Outputs"]}
    assert {"BucketName", "PipelineStateMachineArn", "TaskStateMachineArn"} <= keys, keys
    for output in described["Outputs"]:
        assert f"  {output['OutputKey']:28} {output['OutputValue']}" in deployed.stdout
    assert f"baton run ./file.txt --stack {name}" in deployed.stdout

    # 3. Again, the image in ECR under its tag (as a push leaves it): the repository is
    #    reused and nothing is built or pushed.
    ecr.put_image(repositoryName=repository, imageTag=tag, imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                    "digest": "sha256:" + "0" * 64}, "layers": []}))
    again = run("deploy", *common, "--dry-run", "--container-tool", "sh", env=aws)
    assert f"ECR repository {repository}: reused ({uri})" in again.stderr
    assert f"image {uri}:{tag} is already in ECR (same sources): not built again" in again.stderr
    assert " build --platform" not in again.stdout and " push " not in again.stdout
    assert len(ecr.describe_repositories()["repositories"]) == len(
        {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]})

    # 4. Destroy: the stack is deleted, the bucket (versioned, with data) kept and named.
    s3.put_object(Bucket=bucket, Key="inbox/a.txt", Body=b"one")
    s3.put_object(Bucket=bucket, Key="inbox/a.txt", Body=b"two")
    s3.delete_object(Bucket=bucket, Key="inbox/a.txt")  # a delete marker
    s3.put_object(Bucket=bucket, Key="executions/x/task1/output", Body=b"out")
    destroyed = run("destroy", "--stack", name, env=aws)
    assert f"stack {name}: deleted" in destroyed.stdout
    assert name not in [s["StackName"] for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]]
    with pytest.raises(cfn.exceptions.ClientError):
        cfn.describe_stacks(StackName=name)
    assert f"bucket {bucket}: kept, with its data" in destroyed.stdout
    assert f"make destroy STACK={name} BUCKET={bucket} EMPTY_BUCKET=yes" in destroyed.stdout
    versions = s3.list_object_versions(Bucket=bucket)
    assert len(versions["Versions"]) == 3 and len(versions["DeleteMarkers"]) == 1

    # 5. EMPTY_BUCKET=yes: every version and delete marker removed, then the bucket.
    env = dict(aws, EMPTY_BUCKET="yes", BUCKET=bucket, STACK=name)
    emptied = run("destroy", env=env)
    assert f"no stack {name}" in emptied.stderr
    assert f"bucket {bucket}: emptied (4 object versions and delete markers) and deleted" in emptied.stdout
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
