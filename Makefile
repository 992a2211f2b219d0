# One entry point for developers and CI (.ci/run calls `make setup` and `make test`).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup envtest chart-tools test lint typecheck unit integration chaos crds demo bench clean

## setup: create .venv, install the project with every extra and the test kit, build/fetch
## the envtest binaries and the chart's checkers (promtool, checkov)
setup: $(VENV)/.installed envtest chart-tools

$(VENV)/.installed: pyproject.toml testkit/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./testkit
	touch $@

envtest:
	@bash hack/envtest.sh >/dev/null

chart-tools:
	@bash hack/promtool.sh >/dev/null
	@bash hack/checkov.sh >/dev/null

## test: everything CI checks — lint, types, import contract, all test tiers
test: lint typecheck
	$(PY) -m pytest

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports

typecheck:
	$(PY) -m mypy

unit:
	$(PY) -m pytest tests/unit

integration:
	$(PY) -m pytest tests/integration

chaos:
	$(PY) -m pytest tests/chaos

## crds: regenerate crds/ (and the chart's copy) from hack/gen_crd.py
crds:
	$(PY) hack/gen_crd.py
	bash hack/sync_chart_crds.sh

## demo: a real operator on a real API server, end to end, then torn down
demo: setup
	$(PY) hack/demo.py

## bench: benchmarks/ tables (also written as JSON under benchmarks/results/)
bench: setup
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
