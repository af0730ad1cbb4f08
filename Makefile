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
# extra trainer overrides for `make train`; the magnetic-tile folder keeps its masks as PNG beside the photos
TRAIN_ARGS ?= 'data.glob=*.jpg'
PYTEST_ARGS ?=

.PHONY: help setup wheels lock test test-reliability-full lint format agent train demo demo-stop bench bench-quick bench-accuracy bench-export bench-rules deploy-rdk deploy-model retrain clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# The dev venv: the pinned union of both distributions' dependencies and the test tools, then the
# checkout itself as one editable install (rdk_agent, shared_schema and desktop_trainer from the sources).
$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

setup: $(STAMP) ## Create .venv with the agent, trainer and test dependencies

wheels: $(STAMP) ## Build the two deployables into dist/: rdk_weld_agent (board) and rdk_weld_trainer (desktop)
	$(PY) -m pip wheel -q --no-deps --wheel-dir dist packaging/agent packaging/trainer
	@ls -l dist/rdk_weld_*.whl

# uv resolves for every platform and Python >= 3.10 at once (the board: aarch64, 3.10). LOCK_ARGS=--upgrade
# (or --upgrade-package NAME) moves pins; without it the pins already in the files are kept.
LOCK_ARGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile -q --universal --python-version 3.10 --custom-compile-command 'make lock' $(LOCK_ARGS)
lock: $(STAMP) ## Regenerate requirements/*.txt (pinned) from packaging/*/pyproject.toml and requirements/dev.in
	$(UV_COMPILE) packaging/agent/pyproject.toml packaging/trainer/pyproject.toml requirements/dev.in -o requirements/dev.txt
	$(UV_COMPILE) -c requirements/dev.txt packaging/agent/pyproject.toml -o requirements/agent.txt
	$(UV_COMPILE) -c requirements/dev.txt packaging/trainer/pyproject.toml -o requirements/trainer.txt

test: $(STAMP) ## Run the default test suite
	$(PY) -m pytest $(PYTEST_ARGS)

# The in-process layer: the agent's API through Flask's test client, the schema, cameras and inspection;
# no agent process, browser, sshd or torch (the markers are described in pyproject.toml).
FAST_TESTS ?= tests/schema tests/camera tests/inspection tests/agent tests/test_boundaries.py
FAST_MARKERS := not (server or page or deploy or e2e or reliability or trainer or slow)
.PHONY: test-fast
test-fast: $(STAMP) ## The in-process test layer (under a minute on 2 cores)
	$(PY) -m pytest -m "$(FAST_MARKERS)" $(PYTEST_ARGS) $(FAST_TESTS)

test-reliability-full: $(STAMP) ## Fault-injection and load tests at full length (10 kills, 60 s load)
	RDK_RELIABILITY_FULL=1 $(PY) -m pytest -m reliability $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint, complexity cap, format check), then mypy on shared_schema and rdk_agent
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP) ## ruff: apply fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

agent: $(STAMP) ## Run the agent locally on the synthetic camera (page + API on AGENT_PORT)
	$(PY) -m rdk_agent --data-dir $(AGENT_DATA)/data --models-dir $(AGENT_DATA)/models --camera synthetic --host 127.0.0.1 --port $(AGENT_PORT)

train: $(STAMP) ## Train the baseline on DATA (agent URL, archive or class folders) with TRAIN_ARGS
	$(PY) -m desktop_trainer +experiment=baseline data.source=$(DATA) $(TRAIN_ARGS)

clean: ## Remove run outputs (keeps .venv)
	rm -rf outputs multirun var demo bench/out .pytest_cache dist

deploy-rdk: $(STAMP) ## Build the agent wheel and install or update it on a board: RDK_HOST=user@host [RDK_PORT=22] [RDK_DIR=/opt/rdk_agent]
	RDK_HOST="$(RDK_HOST)" RDK_PORT="$(RDK_PORT)" RDK_DIR="$(RDK_DIR)" PYTHON="$(PY)" deploy/deploy_rdk.sh

deploy-model: $(STAMP) ## Send MODEL=path/to/model.onnx to the board and wait until the agent serves it
	RDK_HOST="$(RDK_HOST)" RDK_PORT="$(RDK_PORT)" RDK_DIR="$(RDK_DIR)" MODEL="$(MODEL)" PYTHON="$(PY)" deploy/deploy_model.sh

# make retrain: the board's agent at RETRAIN_AGENT (default http://<RDK_HOST's host>:AGENT_PORT, token from
# RDK_AGENT_TOKEN); trains RETRAIN_EXPERIMENT only when MIN_NEW_LABELS labelled samples were added since the
# board's newest model of this dataset, then deploys it as the challenger (deploy-model) and prints the verdict.
RETRAIN_AGENT ?= http://$(lastword $(subst @, ,$(RDK_HOST))):$(AGENT_PORT)
RETRAIN_EXPERIMENT ?= baseline
MIN_NEW_LABELS ?= 50
RETRAIN_ARGS ?=
retrain: $(STAMP) ## Retrain if the board's dataset grew, deploy as challenger: RDK_HOST=user@host [MIN_NEW_LABELS=50] [RETRAIN_ARGS=--force]
	@test -n "$(RDK_HOST)" || { echo "retrain: RDK_HOST is not set: make retrain RDK_HOST=user@board [RETRAIN_AGENT=http://board:8080]" >&2; exit 1; }
	RDK_HOST="$(RDK_HOST)" RDK_PORT="$(RDK_PORT)" RDK_DIR="$(RDK_DIR)" $(PY) -m desktop_trainer.retrain \
		--agent "$(RETRAIN_AGENT)" --experiment "$(RETRAIN_EXPERIMENT)" --min-new-labels "$(MIN_NEW_LABELS)" $(RETRAIN_ARGS)

demo: $(STAMP) ## The whole loop on this machine: collect, train, deploy, inspect (leaves the agent up)
	$(PY) scripts/demo.py $(DEMO_ARGS)

demo-stop: ## Stop the agent that make demo left running
	@if [ -f var/demo/board/agent.pid ]; then kill -- -$$(cat var/demo/board/agent.pid) 2>/dev/null && echo "demo agent stopped" || echo "demo agent was not running"; rm -f var/demo/board/agent.pid; else echo "no demo agent"; fi

bench: $(STAMP) ## The benchmark suite P1-P7 + accuracy (4-12 min on 2 cores): table, bench/out/results.json
	$(PY) bench/run_all.py --data $(DATA) $(BENCH_ARGS)

bench-quick: $(STAMP) ## The benchmark suite in smoke form (about 2 min)
	$(PY) bench/run_all.py --quick --data $(DATA) $(BENCH_ARGS)

bench-accuracy: $(STAMP) ## Train the baseline on the magnetic-tile set (DATA=path) and print accuracy, F1, time
	$(PY) bench/bench_accuracy.py $(DATA)

bench-export: $(STAMP) ## Export throughput and the agent's peak RSS on 2,000 captures
	$(PY) bench/export_bench.py --captures 2000 --out bench/out/export.json

bench-rules: $(STAMP) ## Rule-evaluator agreement with the synthetic generator's labels
	$(PY) bench/rules_agreement.py
