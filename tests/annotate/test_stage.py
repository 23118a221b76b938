"""The annotate stage on Spark over real downloaded shards: one row per downloaded sample,
offsets that seek to the image, hashes that match, and the accounting identity."""

from __future__ import annotations

import hashlib

import pyarrow.parquet as pq

from pipeline.annotate.phash import phash_bytes
from pipeline.config import load_config
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage
from tests.conftest import NO_CLIP


def test_every_downloaded_sample_is_annotated_once(annotated):
    run, entry = annotated
    table = pq.read_table(run.annotations)
    uids = table.column("uid").to_pylist()
    assert len(uids) == len(set(uids)) == entry["rows_kept"]
    assert entry["rows_in"] == run.stats()["stages"]["download"]["rows_kept"]
    assert entry["rows_in"] == entry["rows_kept"] + read_ledger(run.ledger_for("annotate")).num_rows
    assert entry["shards"] == len(list(run.downloads.glob("*.tar")))


def test_offsets_seek_to_the_image_and_hashes_match(annotated):
    run, _ = annotated
    for row in pq.read_table(run.annotations).to_pylist()[:40]:
        with open(run.downloads / f"{row['shard']}.tar", "rb") as tar:
            tar.seek(row["offset"])
            data = tar.read(row["image_bytes"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert phash_bytes(data) == (row["phash"], row["width"], row["height"])
        assert min(row["original_width"], row["original_height"]) >= 200


def test_complete_stage_is_not_redone(annotated):
    run, entry = annotated
    assert run_stage("annotate", run.root, load_config(None, NO_CLIP)) == entry
