# Weld-inspection loop for RDK boards. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AGENT_PORT ?= 8080
AGENT_DATA ?= var/agent
RDK_PORT ?= 22
RDK_DIR ?= /opt/rdk_agent
DATA ?= ../shared/datasets/magnetic_tile
PYTEST_ARGS ?=

.PHONY: help setup test lint format agent train bench bench-accuracy deploy-rdk deploy-model clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): requirements/agent.txt requirements/trainer.txt requirements/dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

setup: $(STAMP) ## Create .venv with the agent, trainer and test dependencies

test: $(STAMP) ## Run the default test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff: lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## ruff: apply fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

agent: $(STAMP) ## Run the agent locally on the synthetic camera (page + API on AGENT_PORT)
	$(PY) -m rdk_agent --data-dir $(AGENT_DATA)/data --models-dir $(AGENT_DATA)/models --camera synthetic --host 127.0.0.1 --port $(AGENT_PORT)

train: $(STAMP) ## Train the baseline on DATA (agent URL, archive or class folders)
	$(PY) -m desktop_trainer +experiment=baseline data.source=$(DATA)

clean: ## Remove run outputs (keeps .venv)
	rm -rf outputs multirun var demo bench/out .pytest_cache
