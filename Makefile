# Two commands set up a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt
DEMO_CONFIG ?= configs/cdnow.yaml
OUT ?= outputs
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.PHONY: help venv install install-dev browser demo test test-fast lint bench clean

help:
	@echo "make demo   - create .venv, install (pinned), train on CDNOW, batch-predict, explain the MLflow UI"
	@echo "make test   - create .venv, install with dev and spark extras (pinned), run the whole test suite (CI)"
	@echo "make test-fast - the pure layers only (pytest -m 'not slow'): no training end to end, no servers"
	@echo "make lint   - ruff"
	@echo "make bench  - speed/memory benchmarks against lifetimes and DuckDB (writes bench/RESULTS.md; bench/bench_spark.py separately)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), f"Python >= 3.11 needed, found {sys.version.split()[0]}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[dev,spark]"
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	@mkdir -p $(OUT)
	$(BIN)/clvkit data validate --config $(DEMO_CONFIG)
	$(BIN)/clvkit train --config $(DEMO_CONFIG)
	$(BIN)/clvkit predict --model models:/clvkit-cdnow@champion --config $(DEMO_CONFIG) --output $(OUT)/cdnow_scores.parquet
	@echo
	@echo "Done. Produced:"
	@echo "  $(OUT)/cdnow_scores.parquet   one row per customer: current value, CLV (p10-p90), P(alive), churn, churn-loss value, quadrant, tier, segment"
	@echo "  mlflow.db                     MLflow tracking + registry (model 'clvkit-cdnow', alias 'champion')"
	@echo "Look at the runs:  $(BIN)/mlflow server --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000"
	@echo "                   then open http://127.0.0.1:5000"
	@echo "Serve the model:   $(BIN)/clvkit serve --model models:/clvkit-cdnow@champion --port 5001"

# Headless Chromium (Debian package) for the MLflow UI browser test; does nothing when installed.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: install-dev browser
	$(BIN)/python -m pytest -q

test-fast: install-dev
	$(BIN)/python -m pytest -q -m "not slow"

lint: install-dev
	$(BIN)/ruff check src tests bench

bench: install-dev
	$(PIP_INSTALL) -e ".[dev,spark,bench]"
	$(BIN)/python bench/bench_features.py
	$(BIN)/python bench/bench_fit.py
	$(BIN)/python bench/bench_clv.py
	$(BIN)/python bench/bench_summary.py
	$(BIN)/python bench/bench_figures.py
	$(BIN)/python bench/bench_serving.py
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(OUT)
