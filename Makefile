# Baton: build, lint and test. `make test` is the one command CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# One target directory for cargo, cargo lambda and tests; override to share a warm one.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TERM_COLOR ?= never

PYTHON ?= python3
VENV := $(CURDIR)/.venv
VENV_STAMP := $(VENV)/.installed
VENV_BENCH := $(CURDIR)/.venv-bench
VENV_BENCH_STAMP := $(VENV_BENCH)/.installed
VENV_CHECKOV := $(CURDIR)/.venv-checkov
VENV_CHECKOV_STAMP := $(VENV_CHECKOV)/.installed
# cargo lambda (from the virtualenv) must be on PATH as a cargo subcommand.
export PATH := $(VENV)/bin:$(PATH)
# No telemetry from SAM CLI; a region for its offline validation.
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The pinned tools, then the local stack's own package (local/baton_local, by
# local/pyproject.toml), editable: `python -m baton_local.stack` and
# `from baton_local import …` work from any folder, with no sys.path edits.
$(VENV_STAMP): local/requirements.txt local/pyproject.toml
	@echo "==> Python tools (moto, cargo-lambda, pytest, hadolint) into .venv, pinned by local/requirements.txt"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-virtualenv -r local/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-virtualenv --no-deps -e local
	touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## Install the pinned Python tools and the local stack's package (editable) into .venv

# The AWS CLI (make deploy drives AWS through it) in its own virtualenv, for the tests
# that run make deploy and make destroy against the local stack.
VENV_AWSCLI := $(CURDIR)/.venv-awscli
VENV_AWSCLI_STAMP := $(VENV_AWSCLI)/.installed
$(VENV_AWSCLI_STAMP): local/requirements-awscli.txt
	@echo "==> the AWS CLI into .venv-awscli, pinned by local/requirements-awscli.txt"
	$(PYTHON) -m venv $(VENV_AWSCLI)
	$(VENV_AWSCLI)/bin/pip install --quiet --disable-pip-version-check --require-virtualenv -r local/requirements-awscli.txt
	touch $@

# The benchmarks' Python peers (awslambdaric) in their own virtualenv.
$(VENV_BENCH_STAMP): local/requirements-bench.txt
	@echo "==> benchmark peers into .venv-bench, pinned by local/requirements-bench.txt"
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/pip install --quiet --disable-pip-version-check --require-virtualenv -r local/requirements-bench.txt
	touch $@

# s3s-fs: a second local S3 server for the worker benchmark (is moto the bottleneck?).
S3S_FS := $(CURDIR)/.tools/bin/s3s-fs
$(S3S_FS):
	@echo "==> s3s-fs 0.12.0 into .tools/ (benchmarks only)"
	cargo install --quiet --locked s3s-fs --version 0.12.0 --features binary --root $(CURDIR)/.tools

# checkov pins an older boto3 than SAM CLI and moto need: its own virtualenv.
$(VENV_CHECKOV_STAMP): local/requirements-checkov.txt
	@echo "==> checkov into .venv-checkov, pinned by local/requirements-checkov.txt"
	$(PYTHON) -m venv $(VENV_CHECKOV)
	$(VENV_CHECKOV)/bin/pip install --quiet --disable-pip-version-check --require-virtualenv -r local/requirements-checkov.txt
	touch $@

.PHONY: fmt-check
fmt-check: ## rustfmt, check only (the workspace and fuzz/)
	cargo fmt --all -- --check
	cd fuzz && cargo fmt -- --check

.PHONY: clippy
clippy: ## clippy on everything, warnings are errors
	cargo clippy --workspace --all-targets --locked -- -D warnings

.PHONY: lint-docker
lint-docker: venv ## hadolint on the worker's Dockerfile and the example's
	hadolint worker-image/Dockerfile examples/python-program/Dockerfile

# AWS's ASL language service and asl-validator (npm, pinned by tests/asl/package-lock.json).
ASL_STAMP := $(CURDIR)/tests/asl/node_modules/.installed
$(ASL_STAMP): tests/asl/package.json tests/asl/package-lock.json
	@echo "==> ASL validators into tests/asl/node_modules, pinned by tests/asl/package-lock.json"
	npm ci --prefix tests/asl --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: lint-asl
lint-asl: venv $(ASL_STAMP) ## AWS's ASL language service and asl-validator on both state machines, after substitution
	$(VENV)/bin/python -m pytest -q tests/test_asl_validators.py

.PHONY: lint-template
lint-template: venv $(VENV_CHECKOV_STAMP) lint-asl ## cfn-lint, sam validate --lint, checkov (offline), AWS's ASL validators, the project's own ASL/IAM checks
	cfn-lint template.yaml
	AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline sam validate --lint
	$(VENV_CHECKOV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	$(VENV)/bin/python -m pytest -q tests/test_template.py

.PHONY: sam-build
sam-build: venv ## sam build with samconfig.toml's ci settings (x86_64, release), then check the binaries' architecture
	sam build --config-env ci
	$(VENV)/bin/python tests/check_built_architecture.py ci

# What make test runs: the same sam build in SAM's debug mode (SAM_BUILD_MODE=debug:
# cargo lambda build without --release). The template's build settings and the
# binaries' architecture are checked the same way; the release build (thin LTO, one
# codegen unit, three binaries) was the slowest step of a cold `make test`: 700 s of
# 55 minutes, measured from a fresh clone on a machine shared with other work.
.PHONY: sam-build-check
sam-build-check: venv
	SAM_BUILD_MODE=debug sam build --config-env ci
	$(VENV)/bin/python tests/check_built_architecture.py ci

.PHONY: lint
lint: fmt-check clippy lint-docker lint-template ## All static checks

.PHONY: test-rust
test-rust: venv ## Rust unit, replay and moto integration tests
	cargo test --workspace --locked

.PHONY: test-invoke
test-invoke: venv ## Every events/ file through cargo lambda invoke against cargo lambda watch
	$(VENV)/bin/python -m pytest tests/test_lambda_invoke.py

.PHONY: test-docs
test-docs: venv ## The docs against the code: every Baton.* error, moto fix and AWS call has its row, links land, the README stays short
	$(VENV)/bin/python -m pytest tests/test_docs.py tests/test_inventory.py

.PHONY: test-iam
test-iam: venv ## The local stack's IAM evaluator: AWS's evaluation logic, the action table against the SAR, the moto hook, the mutation check
	$(VENV)/bin/python -m pytest tests/iam

.PHONY: test-compat
test-compat: venv ## The local stack's moto fixes: each gap still there, each fix working
	$(VENV)/bin/python -m pytest tests/compat

# The suite runs on the stack with IAM enforced by role and records every decision;
# then every Allow statement of the deployed policies must be needed by a recorded
# request (the template's IAM, mutation-tested: baton_local.iam.mutation).
IAM_RECORD := $(CURDIR)/.local/iam-e2e.jsonl
.PHONY: test-e2e
test-e2e: venv $(VENV_AWSCLI_STAMP) ## End to end on the local stack (IAM enforced by role), tasks in real containers, the CLI, make deploy/destroy, then the IAM mutation check over what it recorded
	@mkdir -p $(dir $(IAM_RECORD)) && rm -f $(IAM_RECORD) $(IAM_RECORD).policies.json
	PATH=$(VENV_AWSCLI)/bin:$(PATH) BATON_LOCAL_IAM_RECORD=$(IAM_RECORD) $(VENV)/bin/python -m pytest tests/test_containers.py tests/test_local_e2e.py tests/test_pipelines_e2e.py tests/test_state_sizes.py tests/test_worker_runtime.py tests/test_cli.py tests/test_observability.py tests/test_deploy.py tests/test_distributed_e2e.py
	$(VENV)/bin/python -m baton_local.iam.mutation --record $(IAM_RECORD) --policies $(IAM_RECORD).policies.json --role-prefix baton-local

# The Distributed Map at the scale issue 28 names: a stop of the parent with 1,000
# items' tasks in flight leaves none running (make test runs it with 100).
.PHONY: test-scale
test-scale: venv ## A Distributed Map's parent stopped with 1,000 items' tasks in flight: none is left running (its own stack)
	BATON_DMAP_IN_FLIGHT=1000 $(VENV)/bin/python -m pytest -s tests/test_distributed_e2e.py -k stopping

.PHONY: image
image: venv ## The worker image, from worker-image/Dockerfile, with no registry (podman from Debian's packages, installed if needed)
	$(VENV)/bin/python -m baton_local.image build

.PHONY: local-up
local-up: venv ## Start the local stack in the background; writes .local/stack.env
	$(VENV)/bin/python -m baton_local.stack up

# Without the virtualenv too (stopping needs no more than the standard library), so
# the package comes from its folder.
.PHONY: local-down
local-down: ## Stop exactly what local-up started
	PYTHONPATH=$(CURDIR)/local $(PYTHON) -m baton_local.stack down

.PHONY: demo
demo: venv ## The pipeline on this machine with live progress, then a crash the watchdog catches
	$(VENV)/bin/python -m baton_local.demo

# Your AWS account (docs/deploy.md): deploy/baton_deploy.py, Python's standard library
# over the AWS CLI, SAM CLI (.venv) and docker, podman or finch. Settings from make's
# command line or the environment: STACK, REGION, PARAMS='Key=Value …' (over
# samconfig.toml's), CONFIG_ENV, REPOSITORY, CONTAINER_TOOL, IMAGE_DRY_RUN=yes,
# DRY_RUN=yes, CONFIRM=yes; destroy: EMPTY_BUCKET=yes, BUCKET. The region this Makefile
# sets for SAM's offline validation is not passed on: yours applies (REGION, AWS_REGION,
# or your profile's).
DEPLOY_ENV := $(if $(filter file,$(origin AWS_DEFAULT_REGION)),env -u AWS_DEFAULT_REGION)

.PHONY: deploy
deploy: venv ## Worker image to ECR (content tag), sam build, sam deploy; STACK, REGION, PARAMS='K=V …'
	$(DEPLOY_ENV) $(VENV)/bin/python deploy/baton_deploy.py deploy

.PHONY: destroy
destroy: ## Delete the stack; the data bucket is kept unless EMPTY_BUCKET=yes
	$(DEPLOY_ENV) $(PYTHON) deploy/baton_deploy.py destroy

# cargo-fuzz (libFuzzer) for the fuzz targets in fuzz/ (their own workspace and lock
# file). It builds on stable Rust with `-s none` (no sanitizer): the targets assert
# properties, and Rust code needs no AddressSanitizer to catch a panic.
CARGO_FUZZ := $(CURDIR)/.tools/bin/cargo-fuzz
FUZZ_TARGETS := ecs_verdict ecs_event_json payload override_budget truncate worker_env lambda_input follow_history
FUZZ_SECONDS ?= 600
FUZZ_TARGET_DIR := $(CARGO_TARGET_DIR)/fuzz
$(CARGO_FUZZ):
	@echo "==> cargo-fuzz 0.13.2 into .tools/"
	CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/tools cargo install --quiet --locked cargo-fuzz --version 0.13.2 --root $(CURDIR)/.tools

.PHONY: fuzz
fuzz: $(CARGO_FUZZ) ## Every fuzz target for FUZZ_SECONDS (default 600) each, optimised; new inputs go to fuzz/corpus/
	cd fuzz && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) $(CARGO_FUZZ) build -s none --release
	@for t in $(FUZZ_TARGETS); do \
	  echo "==> fuzz $$t for $(FUZZ_SECONDS) s"; \
	  (cd fuzz && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) $(CARGO_FUZZ) run -s none --release $$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1) | grep -E "^stat::number_of_executed_units|^Done|panicked|ERROR|SUMMARY" || exit 1; \
	done

# In make test: each target over its committed corpus, then 5 s of fuzzing from it
# (a debug build: it compiles in a third of the time). New inputs go to a scratch folder.
.PHONY: test-fuzz
test-fuzz: $(CARGO_FUZZ) ## Each fuzz target briefly on its committed corpus (in make test)
	cd fuzz && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) $(CARGO_FUZZ) build -s none --dev
	@for t in $(FUZZ_TARGETS); do \
	  scratch=$$(mktemp -d); \
	  (cd fuzz && CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) $(CARGO_FUZZ) run -s none --dev $$t $$scratch corpus/$$t -- \
	    -max_total_time=5 -print_final_stats=1 2>&1) > $$scratch.log || { cat $$scratch.log; exit 1; }; \
	  echo "    $$t: $$(grep -m1 '^stat::number_of_executed_units' $$scratch.log | awk '{print $$2}') runs, corpus $$(ls fuzz/corpus/$$t | wc -l) inputs, no failure"; \
	  rm -rf $$scratch $$scratch.log; \
	done

.PHONY: soak
soak: venv ## The fault soak: 200 executions with faults, checked by an oracle (starts and stops its own stack)
	$(VENV)/bin/python soak/soak.py --executions $(or $(SOAK_EXECUTIONS),200) $(if $(SOAK_SEED),--seed $(SOAK_SEED))

.PHONY: test-soak
test-soak: venv ## The fault soak's short version (30 executions; in make test)
	$(VENV)/bin/python soak/soak.py --executions 30 --concurrency 10

# The end-to-end suite and the soak spend most of their time waiting (heartbeats,
# stop timeouts, Step Functions' waits), so the checks that need CPU and no stack
# (the compat and invoke tests, the fuzzers, the portable worker, sam build) run beside them at
# the lowest priority: `make test` takes the time of the longer of the two, not their
# sum. Both sides are bound by the two cores: on 2026-12-07 the stack side ended at
# 33 min and this one at 43 (the fuzzers' instrumented build of the whole dependency
# graph took 10 minutes of it); moving the compat tests to the stack side did not
# shorten it (43 min 11 s), so they stay here. -O keeps each side's output together. The workspace's
# binaries are built first, so the two sides only read them; the cross builds
# (glibc 2.17 worker, sam build) use a target directory of their own, so cargo's
# lock on this one never makes the stack wait for them.
.PHONY: test
test: venv lint test-docs test-iam test-rust build-bins ## Everything CI runs
	@$(MAKE) --no-print-directory -j2 -O test-on-the-stack test-beside-the-stack
	@echo "==> make test: all checks passed"

.PHONY: build-bins
build-bins:
	cargo build --locked --workspace --bins

.PHONY: test-on-the-stack
test-on-the-stack:
	@$(MAKE) --no-print-directory test-e2e
	@$(MAKE) --no-print-directory test-soak
	@$(MAKE) --no-print-directory test-demo-fallback

.PHONY: test-demo-fallback
test-demo-fallback: venv ## make demo where containers cannot run: the process backend, said in one line (its own stack)
	$(VENV)/bin/python -m pytest tests/test_demo_fallback.py

.PHONY: test-beside-the-stack
test-beside-the-stack:
	@nice -n 19 $(MAKE) --no-print-directory test-invoke test-compat test-fuzz
	@CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/cross nice -n 19 $(MAKE) --no-print-directory check-portable-worker sam-build-check

.PHONY: build-lambdas
build-lambdas: venv ## Release builds of the three Lambdas (x86_64) with cargo lambda
	cargo lambda build --release --locked --lambda-dir $(CARGO_TARGET_DIR)/lambda-x86_64

.PHONY: build-worker
build-worker: ## Release build of the worker binary (target/release/baton-worker)
	cargo build --release --locked -p baton-worker

# baton-worker for any glibc image from 2.17 on (Amazon Linux 2, Debian, python:*-slim):
# cargo lambda's zig links against an old glibc; the host's toolchain would need 2.34.
PORTABLE_TARGET ?= x86_64-unknown-linux-gnu.2.17
PORTABLE_GLIBC ?= 2.17

.PHONY: check-portable-worker
check-portable-worker: venv ## baton-worker linked for glibc 2.17 with zig, and the glibc versions it imports checked
	cargo lambda build --locked -p baton-worker --bin baton-worker --target $(PORTABLE_TARGET) --lambda-dir $(CARGO_TARGET_DIR)/portable-debug
	$(VENV)/bin/python tests/check_glibc.py $(CARGO_TARGET_DIR)/portable-debug/baton-worker/bootstrap $(PORTABLE_GLIBC)

.PHONY: build-worker-portable
build-worker-portable: venv ## Release baton-worker for glibc 2.17 images (target/portable/baton-worker/bootstrap)
	cargo lambda build --release --locked -p baton-worker --bin baton-worker --target $(PORTABLE_TARGET) --lambda-dir $(CARGO_TARGET_DIR)/portable
	$(VENV)/bin/python tests/check_glibc.py $(CARGO_TARGET_DIR)/portable/baton-worker/bootstrap $(PORTABLE_GLIBC)

.PHONY: build-lambdas-native
build-lambdas-native: ## Release builds of the three Lambdas for this machine (the benchmarks run them)
	cargo build --release --locked -p prepare-input -p offload-output -p task-watchdog

.PHONY: bench
bench: venv $(VENV_BENCH_STAMP) $(S3S_FS) build-worker build-lambdas-native tm-eval bench-tools ## Every benchmark, one table of ratios (the S3 model needs root)
	$(VENV)/bin/python bench/run.py

# aws-sdk-s3-transfer-manager, measured as a peer: its own package and lock file, not a
# dependency of Baton.
.PHONY: tm-eval
tm-eval:
	CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/tm-eval cargo build --release --locked --quiet --manifest-path bench/tm-eval/Cargo.toml

# rclone (a peer of the S3 model benchmark) and GNU time (its peak RSS), from Debian's packages.
.PHONY: bench-tools
bench-tools:
	@{ command -v rclone >/dev/null && [ -x /usr/bin/time ]; } || { [ "$$(id -u)" = 0 ] && apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends rclone time >/dev/null; } || echo "rclone or GNU time missing (not root): the S3 model benchmark needs root anyway"

.PHONY: bench-model
bench-model: venv $(VENV_BENCH_STAMP) $(S3S_FS) build-worker tm-eval bench-tools ## Throughput on a model of S3 (per-connection caps in network namespaces; root) vs transfer-manager, aws s3 cp, rclone, boto3+CRT
	$(VENV)/bin/python bench/transfer_model.py

.PHONY: bench-worker
bench-worker: venv $(VENV_BENCH_STAMP) $(S3S_FS) build-worker ## Worker copy at 64 MiB, 256 MiB, 1 GiB vs the seed Python worker and aws s3 cp, on moto and s3s-fs
	$(VENV)/bin/python bench/worker_copy.py

.PHONY: bench-exec
bench-exec: venv build-worker ## The exec wrapper (stdin/stdout and file mode) against the copy job at 1 GiB
	$(VENV)/bin/python bench/exec_vs_copy.py 1024

.PHONY: clean
clean: ## Remove build output and the virtualenv
	cargo clean
	rm -rf $(VENV) $(VENV_CHECKOV) $(VENV_BENCH) $(VENV_AWSCLI) .tools .aws-sam .local .local-soak tests/asl/node_modules local/*.egg-info
