#!/usr/bin/env python3
"""Deploy Baton to your AWS account in one command, and remove it in one.

    make deploy  [STACK=baton] [REGION=…] [PARAMS='Key=Value …'] [CONFIG_ENV=default]
    make destroy [STACK=baton] [REGION=…] [EMPTY_BUCKET=yes]

`deploy`: builds the worker image (worker-image/Dockerfile) for the stack's
Architecture only, with whichever of docker, podman or finch is installed
(CONTAINER_TOOL to choose); creates or reuses the ECR repository (REPOSITORY,
default baton-worker); tags the image with a hash of what goes into it (the
Dockerfile, the worker's and the baton crate's sources, the workspace's manifest and
lock file, the architecture), so an unchanged worker is neither rebuilt nor pushed
again; pushes it; runs `sam build` and `sam deploy` with samconfig.toml's parameters,
PARAMS over them and WorkerImageUri set; prints the stack's outputs and the next
command to run.

`destroy`: deletes the stack. The data bucket has DeletionPolicy Retain, so the delete
succeeds and the bucket, with everything in it, is kept and named; with EMPTY_BUCKET=yes
every object version and delete marker is removed, then the bucket.

Python's standard library, the AWS CLI, SAM CLI and a container tool: nothing else.
Every AWS call goes through the AWS CLI (`aws`), so its credentials, profile
(AWS_PROFILE) and endpoint (AWS_ENDPOINT_URL) settings apply.

    --image-dry-run   print the login, build and push commands instead of running them
    --dry-run         print every command that would change something (ECR, image, SAM)
    --template FILE   deploy an already built template (skips `sam build`)
"""

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # deploy/<this file>
# What goes into the worker image, for its content tag (relative to the root). Tests,
# docs and target directories do not change the image.
IMAGE_SOURCES = ["worker-image/Dockerfile", "worker-image/Cargo.toml", "worker-image/src",
                 "crates/baton/Cargo.toml", "crates/baton/src", "Cargo.toml", "Cargo.lock"]
TOOLS = ["docker", "podman", "finch"]
PLATFORMS = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}
HOST_ARCH = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def quoted(argv) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


class AwsError(Exception):
    def __init__(self, argv, stderr):
        super().__init__(f"{quoted(argv)}: {stderr.strip()}")
        self.stderr = stderr


class Aws:
    """The AWS CLI, with JSON output."""

    def __init__(self, region: str):
        self.region = region

    def __call__(self, service: str, operation: str, *args, parse=True):
        argv = ["aws", service, operation, "--region", self.region, "--output", "json", *map(str, args)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise AwsError(argv, done.stderr)
        if not parse:
            return done.stdout
        return json.loads(done.stdout) if done.stdout.strip() else {}


def content_tag(root: Path, architecture: str) -> str:
    """`<architecture>-<12 hex>`: sha256 over the architecture and, file by file in
    path order, each path and its contents."""
    digest = hashlib.sha256(f"baton-worker image\0{architecture}\0".encode())
    files = []
    for source in IMAGE_SOURCES:
        path = root / source
        if path.is_dir():
            files += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        elif path.is_file():
            files.append(path)
        else:
            sys.exit(f"{path} is missing: run make deploy from a clone of the repository")
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"{architecture}-{digest.hexdigest()[:12]}"


def samconfig(config_env: str) -> dict:
    """stack_name, region and parameter_overrides of samconfig.toml's `global` and
    `deploy` sections for config_env (deploy over global, as SAM CLI reads them)."""
    path = ROOT / "samconfig.toml"
    if not path.exists():
        return {}
    try:
        import tomllib
    except ImportError:  # Python before 3.11: no samconfig defaults, say so
        say("Python 3.11 or later reads samconfig.toml; without it give STACK, REGION and PARAMS")
        return {}
    config = tomllib.loads(path.read_text()).get(config_env, {})
    merged = {}
    for section in ("global", "deploy"):
        for key, value in config.get(section, {}).get("parameters", {}).items():
            if key == "parameter_overrides":
                merged.setdefault("parameter_overrides", {}).update(parse_overrides(value))
            else:
                merged[key] = value
    return merged


def parse_overrides(text) -> dict:
    """`Key=Value Key2="a b"` (SAM's parameter_overrides, a string or a list) → dict."""
    items = text if isinstance(text, list) else shlex.split(text or "")
    result = {}
    for item in items:
        if "=" not in item:
            sys.exit(f"parameter {item!r} is not Key=Value")
        key, value = item.split("=", 1)
        result[key] = value
    return result


def sam_override(key: str, value: str) -> str:
    """One of SAM CLI's --parameter-overrides: Key=Value, the value in double quotes
    when it holds white space or quotes (SAM splits unquoted values at spaces)."""
    if any(c.isspace() or c in "\"'\\" for c in value):
        value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{key}={value}"


def container_tool(explicit: str) -> str:
    if explicit:
        if not shutil.which(explicit):
            sys.exit(f"CONTAINER_TOOL={explicit} is not installed")
        return explicit
    for tool in TOOLS:
        if shutil.which(tool):
            return tool
    sys.exit("no container tool: install docker, podman or finch (or set CONTAINER_TOOL)")


def run(argv, *, dry_run: bool, stdin_from=None) -> None:
    """Run a command (or, dry, print it). stdin_from: a command whose output is piped in."""
    shown = (quoted(stdin_from) + " | " if stdin_from else "") + quoted(argv)
    print(("would run: " if dry_run else "+ ") + shown, flush=True)
    if dry_run:
        return
    if stdin_from:
        source = subprocess.Popen(stdin_from, stdout=subprocess.PIPE)
        done = subprocess.run(argv, stdin=source.stdout)
        source.stdout.close()
        if source.wait() != 0:
            sys.exit(f"failed: {quoted(stdin_from)}")
    else:
        done = subprocess.run(argv, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {quoted(argv)}")


def repository(aws: Aws, name: str, dry_run: bool) -> str:
    """The repository's URI, created (scan on push, immutable tags) when missing."""
    try:
        found = aws("ecr", "describe-repositories", "--repository-names", name)["repositories"][0]
        say(f"ECR repository {name}: reused ({found['repositoryUri']})")
        return found["repositoryUri"]
    except AwsError as error:
        if "RepositoryNotFoundException" not in error.stderr:
            raise
    # Content tags never move: immutable tags; every pushed image scanned.
    create = ["--repository-name", name, "--image-tag-mutability", "IMMUTABLE",
              "--image-scanning-configuration", "scanOnPush=true"]
    if dry_run:
        print("would run: " + quoted(["aws", "ecr", "create-repository", "--region", aws.region, *create]), flush=True)
        account = aws("sts", "get-caller-identity")["Account"]
        return f"{account}.dkr.ecr.{aws.region}.amazonaws.com/{name}"
    created = aws("ecr", "create-repository", *create)["repository"]
    say(f"ECR repository {name}: created ({created['repositoryUri']})")
    return created["repositoryUri"]


def image_exists(aws: Aws, name: str, tag: str) -> bool:
    try:
        aws("ecr", "describe-images", "--repository-name", name, "--image-ids", f"imageTag={tag}")
        return True
    except AwsError as error:
        if "ImageNotFoundException" in error.stderr or "RepositoryNotFoundException" in error.stderr:
            return False
        raise


def image_commands(tool: str, uri: str, tag: str, architecture: str, region: str) -> list:
    """(argv, stdin_from) for the login, the build for one platform and the push."""
    registry = uri.split("/", 1)[0]
    return [
        ([tool, "login", "--username", "AWS", "--password-stdin", registry],
         ["aws", "ecr", "get-login-password", "--region", region]),
        # The platform arguments given explicitly: BuildKit (docker buildx, finch) sets
        # them itself, podman and buildah do not always (containers/podman#27158), and
        # an empty TARGETARCH must never build the wrong architecture.
        ([tool, "build", "--platform", PLATFORMS[architecture], "--target", "image",
          "--build-arg", f"TARGETARCH={PLATFORMS[architecture].split('/')[1]}",
          "--build-arg", f"BUILDPLATFORM={PLATFORMS[host_architecture()]}",
          "-f", "worker-image/Dockerfile", "-t", f"{uri}:{tag}", "."], None),
        ([tool, "push", f"{uri}:{tag}"], None),
    ]


def host_architecture() -> str:
    """This machine's architecture, as the template names them (arm64, x86_64)."""
    return HOST_ARCH.get(platform.machine().lower(), "x86_64")


def cross_build_check(architecture: str) -> None:
    """The builder stage must run on the build machine's platform and cross-compile
    (zig), or another architecture's build needs QEMU."""
    host = HOST_ARCH.get(platform.machine().lower(), platform.machine())
    dockerfile = (ROOT / "worker-image" / "Dockerfile").read_text()
    if host != architecture and "--platform=$BUILDPLATFORM" not in dockerfile:
        sys.exit(f"this machine is {host} and the stack {architecture}, and worker-image/Dockerfile's builder "
                 f"stage runs on the target platform (QEMU): build on a {architecture} machine, or deploy "
                 f"with PARAMS=Architecture={host}")


def rust_target_check(architecture: str) -> None:
    """sam build cross-compiles the Lambdas with cargo-lambda (zig), which needs the
    target's standard library: say which rustup command adds it, before a long build."""
    target = {"arm64": "aarch64-unknown-linux-gnu", "x86_64": "x86_64-unknown-linux-gnu"}[architecture]
    if not shutil.which("rustup"):
        return
    installed = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True).stdout
    if target not in installed.split():
        sys.exit(f"sam build needs Rust's {target} target for Architecture={architecture}: "
                 f"rustup target add {target}")


def stack_outputs(aws: Aws, stack: str):
    try:
        described = aws("cloudformation", "describe-stacks", "--stack-name", stack)["Stacks"][0]
    except AwsError as error:
        if "does not exist" in error.stderr:
            return None
        raise
    return described, {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def sam() -> str:
    """SAM CLI: on PATH, or the one `make venv` installs (.venv/bin, beside cargo-lambda)."""
    found = shutil.which("sam") or (str(ROOT / ".venv" / "bin" / "sam") if (ROOT / ".venv" / "bin" / "sam").exists() else "")
    if not found:
        sys.exit("SAM CLI (sam) is not installed: make venv puts it in .venv/bin, or install it yourself")
    return found


def resolve_region(args, config: dict) -> str:
    """REGION, samconfig's region, AWS_REGION, AWS_DEFAULT_REGION, then the profile's."""
    region = (args.region or config.get("region") or os.environ.get("AWS_REGION")
              or os.environ.get("AWS_DEFAULT_REGION"))
    if not region and shutil.which("aws"):
        region = subprocess.run(["aws", "configure", "get", "region"], capture_output=True, text=True).stdout.strip()
    if not region:
        sys.exit("no region: give REGION=…, set AWS_REGION, or configure one (aws configure)")
    return region


def deploy(args) -> None:
    config = samconfig(args.config_env)
    stack = args.stack or config.get("stack_name") or "baton"
    region = resolve_region(args, config)
    aws = Aws(region)
    parameters = dict(config.get("parameter_overrides", {}))
    parameters.update(parse_overrides(args.params))
    architecture = parameters.setdefault("Architecture", "arm64")
    if architecture not in PLATFORMS:
        sys.exit(f"Architecture must be arm64 or x86_64, not {architecture!r}")
    say(f"stack {stack} in {region}, {architecture}")

    if parameters.get("WorkerImageUri"):
        say(f"WorkerImageUri given ({parameters['WorkerImageUri']}): no image build")
    else:
        tag = content_tag(ROOT, architecture)
        uri = repository(aws, args.repository, args.dry_run)
        parameters["WorkerImageUri"] = f"{uri}:{tag}"
        if image_exists(aws, args.repository, tag):
            say(f"image {uri}:{tag} is already in ECR (same sources): not built again")
        else:
            tool = container_tool(args.container_tool)
            dry = args.dry_run or args.image_dry_run
            if not dry:
                cross_build_check(architecture)
            say(f"worker image {uri}:{tag} for {PLATFORMS[architecture]} only, with {tool}")
            for argv, stdin_from in image_commands(tool, uri, tag, architecture, region):
                run(argv, dry_run=dry, stdin_from=stdin_from)

    overrides = [sam_override(k, v) for k, v in parameters.items()]
    if not args.template and not args.dry_run:
        rust_target_check(architecture)
    if args.template:
        template = Path(args.template).resolve()
    else:
        # The same parameters for the build: it builds the Lambdas for the Architecture.
        run([sam(), "build", "--config-env", args.config_env, "--beta-features", "--parameter-overrides", *overrides],
            dry_run=args.dry_run)
        template = ROOT / ".aws-sam" / "build" / "template.yaml"
    sam_deploy = [sam(), "deploy", "--config-env", args.config_env, "--template-file", str(template),
                  "--stack-name", stack, "--region", region, "--capabilities", "CAPABILITY_IAM",
                  "--no-fail-on-empty-changeset", "--parameter-overrides", *overrides]
    sam_deploy += ["--no-resolve-s3", "--s3-bucket", args.s3_bucket] if args.s3_bucket else ["--resolve-s3"]
    sam_deploy += [] if args.confirm else ["--no-confirm-changeset"]
    run(sam_deploy, dry_run=args.dry_run)
    if args.dry_run:
        return

    described, outputs = stack_outputs(aws, stack)
    print(f"\nstack {stack} in {region}: {described['StackStatus']}")
    for key, value in outputs.items():
        print(f"  {key:28} {value}")
    region_flag = f" --region {region}" if args.region else ""
    print("\nnext:")
    print("  cargo build --release -p baton-cli       # the baton command: target/release/baton")
    print(f"  baton run ./file.txt --stack {stack}{region_flag}")
    print(f"  baton logs <execution> --stack {stack}{region_flag}")
    print(f"  make destroy STACK={stack}" + (f" REGION={region}" if args.region else "") + "   # keeps the data bucket")


def empty_and_delete_bucket(aws: Aws, bucket: str) -> int:
    """Every object version and delete marker, 1,000 at a time, then the bucket."""
    removed = 0
    while True:
        listed = aws("s3api", "list-object-versions", "--bucket", bucket, "--max-items", "1000")
        entries = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in listed.get("Versions", []) + listed.get("DeleteMarkers", [])]
        if not entries:
            break
        with tempfile.NamedTemporaryFile("w", suffix=".json") as request:
            json.dump({"Objects": entries, "Quiet": True}, request)
            request.flush()
            answer = aws("s3api", "delete-objects", "--bucket", bucket, "--delete", f"file://{request.name}")
        if answer.get("Errors"):
            sys.exit(f"could not delete from {bucket}: {json.dumps(answer['Errors'][:5])}")
        removed += len(entries)
        say(f"{bucket}: {removed} object versions and delete markers removed")
    aws("s3api", "delete-bucket", "--bucket", bucket, parse=False)
    return removed


def data_bucket(aws: Aws, stack: str) -> str:
    """The stack's DataBucket, from its resources (when its outputs do not say)."""
    resources = aws("cloudformation", "list-stack-resources", "--stack-name", stack).get("StackResourceSummaries", [])
    return next((r["PhysicalResourceId"] for r in resources if r.get("LogicalResourceId") == "DataBucket"), "")


def destroy(args) -> None:
    config = samconfig(args.config_env)
    stack = args.stack or config.get("stack_name") or "baton"
    region = resolve_region(args, config)
    aws = Aws(region)
    found = stack_outputs(aws, stack)
    bucket = args.bucket
    if found is None:
        say(f"no stack {stack} in {region}")
    else:
        bucket = bucket or found[1].get("BucketName") or data_bucket(aws, stack)
        say(f"deleting stack {stack} in {region}")
        aws("cloudformation", "delete-stack", "--stack-name", stack, parse=False)
        delay = 1.0
        while True:
            current = stack_outputs(aws, stack)
            status = current[0]["StackStatus"] if current else "DELETE_COMPLETE"
            if status == "DELETE_COMPLETE":
                break
            if status == "DELETE_FAILED":
                events = aws("cloudformation", "describe-stack-events", "--stack-name", stack)["StackEvents"]
                reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
                           if e["ResourceStatus"] == "DELETE_FAILED"]
                sys.exit(f"stack {stack}: DELETE_FAILED\n  " + "\n  ".join(reasons[:10]))
            time.sleep(delay)
            delay = min(delay * 2, 15)
        print(f"stack {stack}: deleted")
    if not bucket:
        return
    try:
        aws("s3api", "head-bucket", "--bucket", bucket, parse=False)
    except AwsError:
        print(f"bucket {bucket}: already gone")
        return
    if args.empty_bucket:
        removed = empty_and_delete_bucket(aws, bucket)
        print(f"bucket {bucket}: emptied ({removed} object versions and delete markers) and deleted")
    else:
        print(f"bucket {bucket}: kept, with its data (the stack retains it). To delete it and everything in it:\n"
              f"  make destroy STACK={stack} BUCKET={bucket} EMPTY_BUCKET=yes")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("command", choices=["deploy", "destroy", "tag"])
    env = os.environ.get
    parser.add_argument("--stack", default=env("STACK", ""))
    parser.add_argument("--region", default=env("REGION", ""))
    parser.add_argument("--config-env", default=env("CONFIG_ENV", "") or "default")
    parser.add_argument("--params", default=env("PARAMS", ""), help="Key=Value … over samconfig's")
    parser.add_argument("--repository", default=env("REPOSITORY", "") or "baton-worker")
    parser.add_argument("--container-tool", default=env("CONTAINER_TOOL", ""))
    parser.add_argument("--architecture", default="", help="tag: the architecture (default samconfig's)")
    parser.add_argument("--root", default=str(ROOT), help="tag: the sources' root (default this clone)")
    parser.add_argument("--template", default=env("SAM_TEMPLATE", ""))
    parser.add_argument("--s3-bucket", default=env("SAM_S3_BUCKET", ""))
    yes = lambda name: env(name, "").lower() in ("1", "yes", "true")  # noqa: E731
    parser.add_argument("--dry-run", action="store_true", default=yes("DRY_RUN"))
    parser.add_argument("--image-dry-run", action="store_true", default=yes("IMAGE_DRY_RUN"))
    parser.add_argument("--confirm", action="store_true", default=yes("CONFIRM"), help="review the change set")
    parser.add_argument("--empty-bucket", action="store_true", default=yes("EMPTY_BUCKET"))
    parser.add_argument("--bucket", default=env("BUCKET", ""), help="destroy: the bucket, when the stack is gone")
    args = parser.parse_args(argv)
    if args.command != "tag" and not shutil.which("aws"):
        sys.exit("the AWS CLI (aws) is not installed: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html")
    try:
        if args.command == "tag":
            architecture = args.architecture or samconfig(args.config_env).get(
                "parameter_overrides", {}).get("Architecture", "arm64")
            print(content_tag(Path(args.root), architecture))
        elif args.command == "deploy":
            deploy(args)
        else:
            destroy(args)
    except AwsError as error:
        sys.exit(f"AWS CLI: {error}")


if __name__ == "__main__":
    main()
