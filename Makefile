# safehome — `make demo` runs the system, `make test` runs the whole suite.
# Both set up what they need on a fresh Debian 12 machine (as root), idempotently.

SHELL      := /bin/bash
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
# Debian packages the tests and the demo need (checked one by one; only missing ones are installed).
APT_PKGS   := mosquitto mosquitto-clients nats-server mosquitto-dev libmosquitto-dev gcc libc6-dev postgresql victoria-metrics python3-venv openssl debootstrap nftables chromium fonts-wqy-microhei

.PHONY: help setup apt venv lint typecheck test demo bench faults schemas console-vendor screenshots clean

help:
	@echo "make demo   - set up and run broker + hub + simulated homes on loopback"
	@echo "make test   - set up and run ruff, mypy and the whole pytest suite"
	@echo "make bench  - run the benchmarks: figures appended to docs/benchmarks-history.md, summary in docs/benchmarks.md"
	@echo "make screenshots - refresh the console's pictures in docs/img (real hub + headless Chromium)"
	@echo "make faults - run the fault matrix (kills, cuts, outages) and write docs/reliability.md"

setup: apt venv

apt:
	@missing=""; for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	@$(BIN)/python -c "import protocols, paho.mqtt, aiomqtt, fastapi, sqlalchemy, gpiozero, pytest" 
	@touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check protocols

typecheck: venv
	$(BIN)/mypy

# 3 processes, each test file whole in one of them (module fixtures stay shared): 11 min here
# against 16-29 min serially; `pytest FILE` alone still runs serially
test: setup lint typecheck
	$(BIN)/pytest -q -n 3 --dist loadfile

schemas: venv
	$(BIN)/python -m protocols.export_schema

demo: setup
	$(BIN)/safehome demo

bench: setup
	$(BIN)/safehome bench all

faults: setup
	$(BIN)/python -m bench.faults

# The console's front-end libraries, rebuilt from the lockfile and committed (the hub serves
# them itself; no npm at run time). hooks.mjs imports "preact" by bare name: pointed at the
# file next to it, so the page needs no inline import map (its CSP allows no inline script).
CONSOLE_WEB := hub/console/web
CONSOLE_VENDOR := hub/console/static/vendor
console-vendor:
	cd $(CONSOLE_WEB) && npm ci --ignore-scripts --no-audit --no-fund
	mkdir -p $(CONSOLE_VENDOR)
	cp $(CONSOLE_WEB)/node_modules/preact/dist/preact.mjs $(CONSOLE_VENDOR)/preact.mjs
	sed 's/from"preact"/from".\/preact.mjs"/g' $(CONSOLE_WEB)/node_modules/preact/hooks/dist/hooks.mjs > $(CONSOLE_VENDOR)/hooks.mjs
	cp $(CONSOLE_WEB)/node_modules/htm/dist/htm.mjs $(CONSOLE_VENDOR)/htm.mjs
	cp $(CONSOLE_WEB)/node_modules/uplot/dist/uPlot.esm.js $(CONSOLE_VENDOR)/uPlot.esm.js
	cp $(CONSOLE_WEB)/node_modules/uplot/dist/uPlot.min.css $(CONSOLE_VENDOR)/uPlot.min.css

# The console's pictures in docs/ (zh-CN), taken by a test against a real hub and Chromium.
screenshots: setup
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs/img $(BIN)/pytest -q -p no:cacheprovider tests/console/test_screenshots.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
