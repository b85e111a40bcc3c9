# HoSo developer commands. `make run` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VERIFIER := web/verifier
VERIFIER_MODULES := $(VERIFIER)/node_modules/.installed-stamp
ORACLE := tests/oracles/dcc-utils
ORACLE_MODULES := $(ORACLE)/node_modules/.installed-stamp
VERIFIER_INPUTS := $(shell find $(VERIFIER)/src $(VERIFIER)/scripts -type f) \
	$(wildcard passport/schemas/*.json app/data/dcc-valuesets/*.json)

.PHONY: all install run test lint openapi bench clean verifier browser oracles

# Plain `make`: install the Python packages and build the verifier page (what `run` and `test` need).
.DEFAULT_GOAL := all
all: install verifier

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The verifier web page: npm packages pinned by package-lock.json, bundled by esbuild into dist/.
$(VERIFIER_MODULES): $(VERIFIER)/package.json $(VERIFIER)/package-lock.json
	cd $(VERIFIER) && npm ci
	touch $@

$(VERIFIER)/dist/app.js: $(VERIFIER_MODULES) $(VERIFIER_INPUTS)
	cd $(VERIFIER) && npm run build

verifier: $(VERIFIER)/dist/app.js

# Test oracles: dcc-utils (npm), an EU DCC verifier HoSo did not write, pinned by its package-lock.json.
$(ORACLE_MODULES): $(ORACLE)/package.json $(ORACLE)/package-lock.json
	cd $(ORACLE) && npm ci
	touch $@

oracles: $(ORACLE_MODULES)

# Browser tests drive Debian's Chromium (Playwright's own browser download needs the internet).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

run: install verifier
	$(BIN)/python -m app.dev.devserver

test: install verifier browser oracles
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

openapi: install
	$(BIN)/python -m app.dev.openapi_spec openapi/openapi.json

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache $(VERIFIER)/node_modules $(VERIFIER)/dist $(ORACLE)/node_modules
