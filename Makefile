# safehome — `make demo` runs the system, `make test` runs the whole suite.
# Both set up what they need on a fresh Debian 12 machine (as root), idempotently.

SHELL      := /bin/bash
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
# Debian packages the tests and the demo need (checked one by one; only missing ones are installed).
APT_PKGS   := mosquitto mosquitto-clients mosquitto-dev libmosquitto-dev gcc libc6-dev postgresql victoria-metrics python3-venv openssl debootstrap nftables

.PHONY: help setup apt venv lint typecheck test demo bench faults schemas clean

help:
	@echo "make demo   - set up and run broker + hub + simulated homes on loopback"
	@echo "make test   - set up and run ruff, mypy and the whole pytest suite"
	@echo "make bench  - run the benchmarks and append figures to docs/benchmarks.md"
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

test: setup lint typecheck
	$(BIN)/pytest -q

schemas: venv
	$(BIN)/python -m protocols.export_schema

demo: setup
	$(BIN)/safehome demo

bench: setup
	$(BIN)/safehome bench all

faults: setup
	$(BIN)/python -m bench.faults

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
