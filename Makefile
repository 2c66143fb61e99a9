# okta-bridge: `make demo` runs the bridge on the local stack, `make test` runs every check.
# Only Python 3.11+ and make are needed; everything else goes into .venv from the lock file.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY313 ?= $(shell command -v pyenv >/dev/null 2>&1 && echo "$$(pyenv root)/versions/3.13.0/bin/python")
STAMP := $(VENV)/.installed
SRC := src/okta_bridge src/okta_bridge_dev

.DEFAULT_GOAL := help
.PHONY: help demo test lint typecheck unit test-313 lock clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "okta-bridge needs Python 3.11+: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP) ## Run the real handler on the local stack: one cold call, then warm ones
	$(BIN)/python -m okta_bridge_dev.demo

test: lint typecheck unit ## Every check: ruff, mypy --strict, pytest with coverage >= 90%

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP) ## mypy --strict on src/
	$(BIN)/mypy $(SRC)

unit: $(STAMP) ## pytest: unit and integration tests, with coverage of okta_bridge
	$(BIN)/pytest --cov=okta_bridge --cov-report=term-missing:skip-covered --cov-fail-under=90

test-313: ## The same pytest run on python3.13, Lambda's runtime (a separate .venv-313)
	$(MAKE) unit VENV=.venv-313 PYTHON=$(PY313)

lock: ## Re-resolve the lock files (needs the network to PyPI)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes -o requirements-dev.lock

clean: ## Remove the virtual environments and caches
	rm -rf .venv .venv-313 .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
