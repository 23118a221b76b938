# Make targets run the `curate` stages; see README.md for every setting.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CURATE := $(PY) -m pipeline
RUN_DIR ?= runs/demo
INPUT ?=
CONFIG ?=
SET ?=
ARGS := $(if $(CONFIG),--config $(CONFIG)) $(foreach s,$(SET),--set $(s))

.PHONY: install test lint format ingest download demo bench-ingest bench-download clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# pytest exits 5 when it collects no test: that is not a failure of the suite.
test: install
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

ingest: install
	@test -n "$(INPUT)" || { echo "usage: make ingest INPUT=path/to/parquet [RUN_DIR=...]"; exit 2; }
	$(CURATE) ingest --input $(INPUT) --run-dir $(RUN_DIR) $(ARGS)

download: install
	$(CURATE) download --run-dir $(RUN_DIR) $(ARGS)

demo: install
	$(CURATE) demo --run-dir $(RUN_DIR) $(ARGS)

bench-ingest: install
	$(PY) -m benchmarks.bench_ingest

bench-download: install
	$(PY) -m benchmarks.bench_download

clean:
	rm -rf runs spark-warehouse .pytest_cache
