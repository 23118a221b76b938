"""The dedup stage with the semantic pass on CLIP-annotated downloads: the new reason in the
ledger with its detail, the accounting identity, the separation check's figures in stats.json, a
rerun that changes nothing and a changed eps that reruns dedup and the later stages."""

from __future__ import annotations

import logging

import pyarrow.parquet as pq

from pipeline.config import load_config
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage, stage_state
from pipeline.stages import get_stage
from tests.conftest import clip_overrides, copy_run

# The tiny test model is no better at telling pictures apart than the demo's: with the check
# on, the pass is refused; off, a loose eps makes semantic drops to account for.
LOOSE = ["dedup.semantic.max_sample_neighbour_fraction=1", "dedup.semantic.eps=0.05"]


def test_semantic_pass_on_clip_annotations(scored, tiny_checkpoint, tmp_path, caplog):
    source, _ = scored
    run = copy_run(source.root, tmp_path / "run")
    # The shared fixture ran dedup with the defaults: the check's figures are recorded.
    semantic = run.stats()["stages"]["dedup"]["semantic"]
    fraction = semantic["sample_neighbour_fraction"]  # None: a pool too small to judge
    assert ("skipped" in semantic) == (fraction is not None and fraction > 0.5)

    config = load_config(None, [*clip_overrides(tiny_checkpoint), *LOOSE])
    caplog.set_level(logging.INFO, logger="pipeline")
    run_stage("dedup", run.root, config)
    assert "dedup: settings changed (dedup.semantic.eps 0.01 -> 0.05" in caplog.text
    entry = run.stats()["stages"]["dedup"]
    ledger = read_ledger(run.ledger_for("dedup")).to_pylist()
    semantic_rows = [r for r in ledger if r["reason"] == "dedup.semantic_duplicate"]
    assert semantic_rows and entry["dropped_by_reason"]["dedup.semantic_duplicate"] == len(
        semantic_rows
    )
    kept = set(pq.read_table(run.dedup, columns=["uid"]).column("uid").to_pylist())
    for row in semantic_rows:
        uid, word, cosine = row["detail"].split()
        assert uid in kept and word == "cosine" and 0.9 <= float(cosine) <= 1.0
    assert entry["rows_in"] == entry["rows_kept"] + entry["rows_dropped"]
    assert entry["rows_dropped"] == sum(entry["dropped_by_reason"].values())
    assert len({r["uid"] for r in ledger}) == len(ledger)

    # Same settings: complete, nothing rerun.
    before = run.stats()["stages"]["dedup"]
    assert stage_state(run, get_stage("dedup"), config).status == "complete"
    run_stage("dedup", run.root, config)
    assert run.stats()["stages"]["dedup"] == before
