# The documented entry points. `make dev` and `make test` set up everything they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: dev test lint typecheck bench load soak setup vendor proto clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(NODE_STAMP)
	tools/install-system-deps.sh $(VENV) $(SYSTEM_DEPS_FLAGS)

## Start the whole embedded stack on loopback (Ctrl-C stops it); WORKERS=N runs N workers.
WORKERS ?= 1
dev: setup
	TRITONTUBE_KAFKA__EMBEDDED_BROKER_COMPAT=true $(VENV)/bin/tritontube dev --workers $(WORKERS)

## Run the whole test suite (starts and stops the real local services itself), after the
## linters and the type checker.
test: SYSTEM_DEPS_FLAGS = --browser
test: setup
	$(VENV)/bin/ruff check src tests benchmarks loadtest examples
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

## Quix Streams, a reference of the stream benchmark, in a venv of its own (its pins clash
## with ours; see benchmarks/quix-requirements.txt).
QUIX_VENV := .venv-quix
QUIX_STAMP := $(QUIX_VENV)/.installed-stamp
$(QUIX_STAMP): benchmarks/quix-requirements.txt
	test -x $(QUIX_VENV)/bin/python || $(SYSTEM_PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/pip install -q -r benchmarks/quix-requirements.txt
	touch $@

## Run every benchmark and print one table of figures (TRITONTUBE_BENCH_FULL=1: issue sizes).
bench: setup $(QUIX_STAMP)
	$(PY) -m benchmarks

## k6 and Locust against a running stack (`make dev` in another terminal), loopback only.
## Reports under benchmarks/results/load-*/. Override e.g. LOAD_ARGS="--uploads 200".
API_URL ?= http://127.0.0.1:8080
WORKER_URL ?= http://127.0.0.1:6066
LOAD_ARGS ?=
load: $(STAMP)
	$(PY) -m loadtest --api $(API_URL) --worker $(WORKER_URL) $(LOAD_ARGS)

## The soak: mixed load on a `tritontube dev` of its own for 30 minutes, the worker and the
## broker killed in turn every 3 minutes; memory, lag and errors sampled and plotted, events
## in = effects out checked. Report under benchmarks/results/soak-*/.
## Override e.g. SOAK_ARGS="--minutes 3 --kill-every 60".
SOAK_ARGS ?=
soak: setup
	$(PY) -m loadtest.soak $(SOAK_ARGS)

## Generate the Python code of proto/web.proto (grpcio-tools) into src/tritontube/v1/; commit
## it. `make test` fails while it is stale (tests/contract/test_proto_generated.py).
proto: $(STAMP)
	$(PY) tools/gen_proto.py

## Copy the pinned dash.js from node_modules into the package (the copy is committed).
DASHJS := node_modules/dashjs/dist/modern/umd/dash.all.min.js
vendor: $(NODE_STAMP)
	cp $(DASHJS) $(DASHJS).LICENSE.txt src/tritontube/http/static/vendor/
	cp node_modules/dashjs/LICENSE.md src/tritontube/http/static/vendor/dashjs-LICENSE.md

clean:
	rm -rf .tritontube .pytest_cache test-artifacts
