"""Input pairs from what ingest wrote: candidates/ for kept rows, dropped_inputs/ for dropped
ones; every input row once, with the ledger's uid and reason, and no need for the input."""

from __future__ import annotations

import shutil
from collections import Counter

import pyarrow.parquet as pq

from pipeline.ledger import read_ledger
from pipeline.report.input_pairs import input_pairs
from pipeline.run_dir import RunDir
from tests.conftest import copy_run


def test_every_input_row_once_with_the_ingest_uid_and_reason(ingested, tmp_path):
    run = copy_run(ingested, tmp_path / "run")
    entry = run.stats()["stages"]["ingest"]
    # The input is not read: it may be gone.
    moved = tmp_path / "input-moved.parquet"
    shutil.move(entry["input"], moved)
    try:
        pairs = input_pairs(run)
    finally:
        shutil.move(moved, entry["input"])
    assert pairs is not None and pairs.num_rows == entry["rows_in"]
    assert pairs.schema.names == ["uid", "url", "caption", "reason", "gt_id"]
    assert pairs.column("gt_id").null_count == 0
    assert len(set(pairs.column("gt_id").to_pylist())) == entry["rows_in"]
    rows = pairs.to_pylist()
    candidates = pq.read_table(run.candidates, columns=["uid", "url", "caption"]).to_pylist()
    kept = [(r["uid"], r["url"], r["caption"]) for r in rows if r["reason"] is None]
    assert sorted(kept) == sorted((c["uid"], c["url"], c["caption"]) for c in candidates)
    ledger = read_ledger(run.ledger_for("ingest")).to_pylist()
    dropped = Counter((r["uid"], r["reason"]) for r in rows if r["reason"] is not None)
    assert dropped == Counter((r["uid"], r["reason"]) for r in ledger)
    assert sum(dropped.values()) == entry["rows_dropped"] > 0


def test_a_run_directory_without_dropped_inputs_gives_none(ingested, tmp_path):
    run = copy_run(ingested, tmp_path / "run")
    shutil.rmtree(run.dropped_inputs)
    assert input_pairs(RunDir(run.root)) is None
