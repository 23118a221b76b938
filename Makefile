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

# Spark cluster (README, "Running on a Spark cluster"): make package, make submit, make cluster-up.
CLUSTER_DIR ?= .cluster
CLUSTER_CORES ?= 2
CLUSTER_MEMORY ?= 2g
# Default master: the cluster `make cluster-up` started, if any.
SPARK_MASTER ?= $(shell cat $(CLUSTER_DIR)/master_url 2>/dev/null)
SPARK_CONF ?=
STAGE ?=
PYFILES := dist/curate.zip
# A venv to pack into dist/env.tar.gz for --archives (needs venv-pack installed in it).
PACK_ENV ?=
# Python of the driver and of the executors (with a packed env: PYSPARK_PYTHON=./env/bin/python).
PYSPARK_PYTHON ?= $(abspath $(PY))
PYSPARK_DRIVER_PYTHON ?= $(abspath $(PY))
# The pip package's launch scripts look for pyspark with `python3` unless SPARK_HOME is set.
SPARK_HOME ?= $(shell $(PY) -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null)
# The stages, read from the registry (pipeline/stages.py imports nothing outside the stdlib).
STAGES := $(shell PYTHONPATH=. $(PYTHON) -c 'from pipeline.stages import STAGE_NAMES; print(*STAGE_NAMES)')
FORCE ?=
BENCH_ARGS ?=

.PHONY: install test test-fast lint format $(STAGES) run status report train compare demo \
	bench-ingest bench-download bench-download-driver bench-phash bench-dedup bench-crop-hash bench-semdedup bench-balance bench-conformance bench-blocklists bench-robots bench-dedup-radius bench-select-rules bench-clip bench-shard bench-train bench-compare-parallel bench-pipeline clean \
	package submit cluster-up cluster-down wordnet-table

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# pytest exits 5 when it collects no test: that is not a failure of the suite.
test: install
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# The edit-test loop: no standalone cluster, no demo, no training fixtures (tests marked slow).
test-fast: install
	$(PY) -m pytest -q -m "not slow and not cluster"; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# One target per stage: make ingest INPUT=... RUN_DIR=..., make dedup RUN_DIR=... FORCE=1.
$(STAGES): install
	@test "$@" != ingest || test -n "$(INPUT)" || { echo "usage: make ingest INPUT=path/to/parquet [RUN_DIR=...]"; exit 2; }
	$(CURATE) $@ $(if $(filter ingest,$@),--input $(INPUT)) --run-dir $(RUN_DIR) $(if $(FORCE),--force) $(ARGS)

status: install
	$(CURATE) status --run-dir $(RUN_DIR) $(ARGS)

run: install
	@test -n "$(INPUT)" || { echo "usage: make run INPUT=path/to/parquet [RUN_DIR=...]"; exit 2; }
	$(CURATE) run --input $(INPUT) --run-dir $(RUN_DIR) $(ARGS)

report: install
	$(CURATE) report --run-dir $(RUN_DIR) $(ARGS)

SHARDS ?= $(RUN_DIR)/shards
TRAIN_OUT ?= $(RUN_DIR)/train
train: install
	$(CURATE) train --shards $(SHARDS) --output $(TRAIN_OUT) $(ARGS)

# make compare RUN_DIR=runs/demo SELECTIONS="raw=raw clip=clip_score clip_img=clip_score+image_based"
SELECTIONS ?=
compare: install
	@test -n "$(SELECTIONS)" || { echo 'usage: make compare RUN_DIR=... SELECTIONS="NAME=SPEC ..."'; exit 2; }
	$(CURATE) compare --run-dir $(RUN_DIR) --selections $(SELECTIONS) $(ARGS)

demo: install
	$(CURATE) demo --run-dir $(RUN_DIR) $(ARGS)

bench-ingest: install
	$(PY) -m benchmarks.bench_ingest

bench-download: install
	$(PY) -m benchmarks.bench_download $(BENCH_ARGS)

bench-download-driver: install
	$(PY) -m benchmarks.bench_download_driver $(BENCH_ARGS)

bench-phash: install
	$(PY) -m benchmarks.bench_phash

bench-dedup: install
	$(PY) -m benchmarks.bench_dedup $(BENCH_ARGS)

bench-crop-hash: install
	$(PY) -m benchmarks.bench_crop_hash $(BENCH_ARGS)

bench-semdedup: install
	$(PY) -m benchmarks.bench_semdedup $(BENCH_ARGS)

# DataComp's text-based table (pipeline/select/data/wordnet_in21k.tsv.gz) from WordNet 3.0
# (Debian's wordnet-base puts it in /usr/share/wordnet) and the ImageNet-21k synset ids.
WORDNET_DIR ?= /usr/share/wordnet
IN21K_SYNSETS ?= $(shell $(PY) -c 'import os, timm; print(os.path.join(os.path.dirname(timm.__file__), "data/_info/imagenet21k_goog_synsets.txt"))' 2>/dev/null)

wordnet-table: install
	$(PY) -m pipeline.select.build_wordnet_table --wordnet $(WORDNET_DIR) --synsets $(IN21K_SYNSETS) --out pipeline/select/data/wordnet_in21k.tsv.gz

bench-balance: install
	$(PY) -m benchmarks.bench_balance $(BENCH_ARGS)

bench-blocklists: install
	$(PY) -m benchmarks.bench_blocklists $(BENCH_ARGS)

bench-robots: install
	$(PY) -m benchmarks.bench_robots $(BENCH_ARGS)

bench-dedup-radius: install
	$(PY) -m benchmarks.bench_dedup_radius $(BENCH_ARGS)

bench-conformance: install
	$(PY) -m benchmarks.bench_conformance $(BENCH_ARGS)

bench-select-rules: install
	$(PY) -m benchmarks.bench_select_rules $(BENCH_ARGS)

bench-shard: install
	$(PY) -m benchmarks.bench_shard

bench-clip: install
	$(PY) -m benchmarks.bench_clip

bench-train: install
	$(PY) -m benchmarks.bench_train

bench-compare-parallel: install
	$(PY) -m benchmarks.bench_compare_parallel $(BENCH_ARGS)

bench-pipeline: install
	$(PY) -m benchmarks.bench_pipeline $(BENCH_ARGS)

package: install
	$(PY) -m pipeline.spark.cluster package --out $(PYFILES)
ifneq ($(PACK_ENV),)
	@test -x $(PACK_ENV)/bin/venv-pack || { echo "make package: no venv-pack in $(PACK_ENV) (pip install venv-pack there)"; exit 2; }
	$(PACK_ENV)/bin/venv-pack -p $(PACK_ENV) -o dist/env.tar.gz --force
endif

submit: package
	@test -n "$(STAGE)" && test -n "$(filter $(STAGE),$(STAGES) run)" || { echo "usage: make submit STAGE=<$(subst $() ,|,$(STAGES) run)> RUN_DIR=... SPARK_MASTER=spark://host:port [INPUT=...] [SPARK_CONF=\"--conf a=b ...\"] [SET=\"section.key=value ...\"]"; exit 2; }
	@test -n "$(SPARK_MASTER)" || { echo "make submit: set SPARK_MASTER (spark://host:port, yarn, k8s://...) or run make cluster-up"; exit 2; }
	@test -z "$(filter ingest run,$(STAGE))" || test -n "$(INPUT)" || { echo "make submit STAGE=$(STAGE): set INPUT=path/to/parquet"; exit 2; }
	SPARK_HOME=$(SPARK_HOME) $(if $(findstring spark://127.0.0.1:,$(SPARK_MASTER)),SPARK_LOCAL_IP=127.0.0.1) \
	$(VENV)/bin/spark-submit --master $(SPARK_MASTER) --py-files $(PYFILES) \
		--conf spark.pyspark.python=$(PYSPARK_PYTHON) --conf spark.pyspark.driver.python=$(PYSPARK_DRIVER_PYTHON) \
		$(SPARK_CONF) jobs/stage_job.py $(STAGE) $(if $(filter ingest run,$(STAGE)),--input $(INPUT)) --run-dir $(RUN_DIR) $(if $(FORCE),--force) $(ARGS)

cluster-up: install
	$(PY) -m pipeline.spark.cluster up --dir $(CLUSTER_DIR) --cores $(CLUSTER_CORES) --memory $(CLUSTER_MEMORY)

cluster-down:
	$(PY) -m pipeline.spark.cluster down --dir $(CLUSTER_DIR)

clean:
	rm -rf runs spark-warehouse .pytest_cache
