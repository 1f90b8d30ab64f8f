# The project's entry points. `make demo` and `make test` are all a newcomer needs.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
# Tests and the demo find moto_server, cargo-lambda and friends on PATH, never a global install.
export PATH := $(VENV)/bin:$(PATH)

.PHONY: help venv venv-demo test test-rust test-static test-demo lint package demo demo-up demo-down bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

venv: ## Create or refresh the pinned Python tool environments (.venv, .venv-checkov); apt-get the missing jq, curl, unzip, file
	@tools/system-deps.sh
	@tools/venv.sh

venv-demo: ## Only what make demo and demo-up run (moto) into .venv
	@tools/venv.sh --demo

test: ## Run every test (what CI runs)
	@tools/system-deps.sh
	@# The Python tools install while cargo compiles the tests: neither needs the other until
	@# the tests run, and on a fresh clone each takes minutes (pip waits on the network).
	@tools/venv.sh & venv=$$!; \
	  cargo test --workspace --locked --no-run || { wait $$venv; exit 1; }; \
	  wait $$venv
	@# Two lanes side by side, each printed whole when it ends: the integration tests, which
	@# mostly wait on moto, the gateway and their bakes, beside the unit tests, the demo and the
	@# static checks. One after the other they took 8 of 14 minutes on 2 cores. A third lane
	@# (the demo on its own) slowed every request enough on 2 cores that the demo's alarms fired.
	@$(MAKE) --no-print-directory -j2 -k --output-sync=target test-integration test-others

.PHONY: test-integration test-units test-others
test-rust: test-units test-integration ## Unit, snapshot and integration tests of every crate (integration ones start moto_server)

# The same --workspace selection as the build above, so features resolve alike and nothing
# is compiled again; `it` is every crate's one integration-test binary.
test-integration: venv
	cargo test --workspace --locked --no-fail-fast --test it

test-units: venv
	cargo test --workspace --locked --no-fail-fast --lib --bins
	cargo test --workspace --locked --no-fail-fast --doc

test-others: test-units test-demo test-static

# promote as the test build made it: `cargo build --workspace --all-targets` resolves features
# as `cargo test --workspace` does, so after the tests it compiles nothing, where
# `cargo run -p promote` would build promote and its AWS SDK again (two minutes on 2 cores).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
TEST_PROMOTE := $(TARGET_DIR)/debug/promote

test-static: venv lint-workflows ## Terraform, environments and workflow checks
	cargo build --quiet --locked --workspace --all-targets
	$(TEST_PROMOTE) check
	PROMOTE_BIN=$(TEST_PROMOTE) $(VENV)/bin/pytest -p no:cacheprovider -q tests/static
	$(CURDIR)/.venv-checkov/bin/checkov -d terraform --quiet --compact --skip-download

.PHONY: lint-workflows
lint-workflows: venv ## actionlint (with shellcheck when installed) and zizmor, offline, on .github/
	actionlint
	zizmor --offline --no-progress .github

lint: ## rustfmt, clippy as CI runs them, and no import cycle among any crate's modules
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	python3 tools/modcycles.py promote/src crates/rollout/src crates/probe/src gateway/src app/src crates/lambda-kit/src functions/birthday/src guardian/src crates/aliases/src crates/aws-https/src functions/notes/src functions/images/src functions/file-metadata/src crates/objects/src

package: venv ## Build the deployable zips: target/lambda/<app|birthday|guardian>/bootstrap.zip (ARCH=arm64 where that target is installed)
	cargo lambda build --release -p app --output-format zip $(if $(filter arm64,$(ARCH)),--arm64,)
	cargo lambda build --release -p birthday --output-format zip $(if $(filter arm64,$(ARCH)),--arm64,)
	cargo lambda build --release -p guardian --output-format zip $(if $(filter arm64,$(ARCH)),--arm64,)
	@# The guardian reads the environments beside its bootstrap (docs/guardian.md).
	python3 -c 'import sys, zipfile, pathlib; z = zipfile.ZipFile(sys.argv[1], "a"); [z.write(p, str(p)) for p in sorted(pathlib.Path("environments").rglob("*.json"))]' target/lambda/guardian/bootstrap.zip

bench: venv ## Benchmark figures, printed and written to bench/RESULTS.md: the function's size, startup, RSS and latency; promote's alarm reaction time and status wall time vs the aws CLI
	bench/app.sh
	bench/promote.sh

# The demo's Python tools install while cargo builds promote, the gateway, the guardian and the
# functions in one invocation (minutes on a fresh clone, pip mostly waiting on the network).
# DEMO_PROFILE=release builds the zips with cargo lambda, which the full .venv holds.
DEMO_VENV = $(if $(filter release,$(DEMO_PROFILE)),--no-checkov,--demo)
DEMO_PREPARE = tools/venv.sh $(DEMO_VENV) & venv=$$!; \
	tools/demo.sh build-tools || { wait $$venv; exit 1; }; \
	wait $$venv

demo: ## The whole path to live against a local AWS emulator (moto), then stops it
	@$(DEMO_PREPARE)
	tools/demo.sh run

demo-up: ## Leave the emulator and the local gateway running, live one release behind test; print the exports and the commands to try
	@$(DEMO_PREPARE)
	tools/demo.sh up

demo-down: ## Stop the emulator and gateway started by demo-up
	tools/demo.sh down

test-demo: venv ## Run the demo non-interactively and check the states it passes through
	@# Run beside the integration lane, the demo's cargo must not look for make's jobserver.
	env -u MAKEFLAGS -u MFLAGS $(VENV)/bin/pytest -p no:cacheprovider -q tests/demo
