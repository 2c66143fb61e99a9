# okta-bridge: `make demo` runs the bridge on the local stack, `make test` runs every check.
# Only Python 3.11+ and make are needed; everything else goes into .venv from the lock file.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Lambda's python3.13: $PY313, else pyenv's (found without pyenv on PATH too), else python3.13.
PY313 ?= $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.13*/bin/python $(HOME)/.pyenv/versions/3.13*/bin/python) $(shell command -v python3.13))
STAMP := $(VENV)/.installed
# python3.13's own venv (make test-313, make bench): named here, never through $(VENV), which a
# recipe has already expanded to .venv by the time it passes VENV= to a sub-make.
VENV313 := .venv-313
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# The benchmark runs the packaged zip on this machine's architecture.
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
SRC := src/okta_bridge src/okta_bridge_dev

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint typecheck security audit validate unit commands test-313 py313 package layer bench deploy whoami secret okta-jwk rotate-now destroy lock clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "okta-bridge needs Python 3.11+: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP) ## Create .venv from the lock file (the guide's snippets run .venv/bin/python)

$(TOOLS_STAMP): requirements-tools.lock
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes -r requirements-tools.lock
	@touch $@

demo: $(STAMP) ## Run the real handler on the local stack: one cold call, then warm ones
	$(BIN)/okta-bridge demo

test: lint typecheck security validate unit commands ## Every check: ruff, mypy, bandit, cfn-lint, checkov, pytest, the documented commands on a fresh clone

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP) ## mypy --strict on src/ and on each example's handler (both modules are named handler)
	$(BIN)/mypy $(SRC)
	$(BIN)/mypy --strict examples/scheduled-export/src/handler.py
	$(BIN)/mypy --strict examples/enrich-api/src/handler.py

security: $(STAMP) ## bandit: no finding of medium or higher severity (each exception justified inline)
	$(BIN)/bandit --quiet --recursive src --severity-level medium

audit: $(TOOLS_STAMP) ## pip-audit of the locked runtime and dev dependencies (needs PyPI's JSON API or OSV)
	$(TOOLS)/bin/pip-audit --strict --disable-pip --require-hashes -r requirements.lock
	$(TOOLS)/bin/pip-audit --strict --disable-pip --require-hashes -r requirements-dev.lock

# template.yaml again with the KMS signing key on (KmsSigningKeySpec's default set to each spec),
# so that the linters see the key, its policy, the custom resource and their grants too.
KMS_VARIANTS := build/validate/template-kms-RSA_2048.yaml build/validate/template-kms-ECC_NIST_P256.yaml

validate: $(STAMP) $(TOOLS_STAMP) ## cfn-lint and checkov on template.yaml (also with the KMS signing key on) and the examples' templates: no errors, no warnings
	@mkdir -p build/validate
	@for spec in RSA_2048 ECC_NIST_P256; do \
	  sed '/^  KmsSigningKeySpec:/,/Default:/ s/Default: none/Default: '"$$spec"'/' template.yaml > build/validate/template-kms-$$spec.yaml; \
	  grep -q "Default: $$spec" build/validate/template-kms-$$spec.yaml || { echo "KmsSigningKeySpec's default not found"; exit 1; }; \
	done
	$(BIN)/cfn-lint template.yaml $(KMS_VARIANTS) examples/*/template.yaml
	$(TOOLS)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml $(foreach f,$(KMS_VARIANTS),-f $(f)) -f examples/scheduled-export/template.yaml -f examples/enrich-api/template.yaml

unit: $(STAMP) ## pytest: unit and integration tests, with coverage of okta_bridge
	$(BIN)/pytest --cov=okta_bridge --cov-report=term-missing:skip-covered --cov-fail-under=90

commands: $(STAMP) ## The README's local commands (demo, package, rotate-now LOCAL=1, bench QUICK=1) on a fresh clone
	$(BIN)/pytest -m fresh_clone -p no:cacheprovider tests/commands

py313: # Stop with a clear message when Lambda's python3.13 is missing (a prerequisite, not a command)
	@if [ -z "$(PY313)" ] || ! "$(PY313)" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then \
	  echo "make: this target needs python3.13, Lambda's runtime, and found$(if $(PY313), '$(PY313)' (not a python3.13), none)." >&2; \
	  echo "      Install it (pyenv install 3.13, or your system's python3.13 package) or name it: make $(MAKECMDGOALS) PY313=/path/to/python3.13" >&2; \
	  exit 2; \
	fi

test-313: py313 ## The same pytest run on python3.13, Lambda's runtime (a separate .venv-313)
	$(MAKE) unit VENV=$(VENV313) PYTHON=$(PY313)

package: py313 $(STAMP) ## Build dist/okta-bridge.zip for Lambda (python3.13 .pyc, reproducible); CA_BUNDLE=corp.pem adds a CA
	$(BIN)/okta-bridge package --python "$(PY313)" $(if $(CA_BUNDLE),--ca-bundle "$(CA_BUNDLE)") $(if $(ARCH),--arch $(ARCH))

layer: py313 $(STAMP) ## Build dist/okta-bridge-layer.zip, the library as a Lambda layer (python/, same content and flags as package)
	$(BIN)/okta-bridge package --layer --python "$(PY313)" $(if $(CA_BUNDLE),--ca-bundle "$(CA_BUNDLE)") $(if $(ARCH),--arch $(ARCH))

$(BENCH_STAMP): $(STAMP) requirements-bench.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-bench.lock
	@touch $@

bench: py313 $(STAMP) $(BENCH_STAMP) ## Naive design vs the bridge vs the floor on the local stack: writes benchmarks/results.md and .png, and the scale model's table in docs/scale.md (QUICK=1: one cold run and a few warm calls each, all into build/bench/)
	$(MAKE) $(VENV313)/.installed VENV=$(VENV313) PYTHON=$(PY313)
	$(BIN)/okta-bridge package --python "$(PY313)" --arch $(HOST_ARCH) --output build/bench/okta-bridge.zip --build-dir build/bench-stage
	$(BIN)/python benchmarks/run.py --python $(VENV313)/bin/python --zip build/bench/okta-bridge.zip $(if $(QUICK),--quick --out build/bench)

deploy: package layer ## Package the function and the layer, upload, deploy the stack (samconfig.toml or environment), print outputs
	$(BIN)/okta-bridge deploy

whoami: $(STAMP) ## Print the IAM principal ARN you deploy as (with its path) and the AdminPrincipalArns line for samconfig.toml
	$(BIN)/okta-bridge whoami

secret: $(STAMP) ## Store the Okta credentials in the deployed secret (prompt, or FILE=creds.json; ADMIN=1: the admin app's)
	$(BIN)/okta-bridge secret put $(if $(ADMIN),--admin) $(if $(FILE),--file "$(FILE)")

okta-jwk: $(STAMP) ## Print the public JWK of a KMS signing key for the Okta app, and the secret's fields (KEY=<arn|alias>; LOCAL=1: the local stack's)
	$(BIN)/okta-bridge okta-jwk $(if $(LOCAL),--local) $(if $(KEY),--key-id "$(KEY)") $(if $(REGION),--region "$(REGION)")

rotate-now: $(STAMP) ## Rotate the Okta credentials at once and confirm the old one is refused (LOCAL=1: the local stack)
	$(BIN)/okta-bridge rotate --now $(if $(LOCAL),--local $(if $(KIND),--kind $(KIND)))

destroy: $(STAMP) ## Delete the stack (asks for its name; YES=1 skips the question)
	$(BIN)/okta-bridge destroy $(if $(YES),--yes)

lock: ## Re-resolve the lock files (needs the network to PyPI)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes -o requirements-dev.lock
	$(BIN)/uv pip compile pyproject.toml --extra release --universal --python-version 3.11 --generate-hashes -o requirements-release.lock
	$(BIN)/uv pip compile requirements-tools.in --universal --python-version 3.11 --generate-hashes -o requirements-tools.lock

clean: ## Remove the virtual environments and caches
	rm -rf .venv .venv-313 .venv-tools dist build .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
