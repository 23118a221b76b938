"""Recovered input rows: ingest's own hygiene gives the same uid, url and caption as candidates/."""

from __future__ import annotations

import pyarrow.parquet as pq

from pipeline.config import load_config
from pipeline.ledger import read_ledger
from pipeline.report.input_pairs import recover_input_pairs
from pipeline.run_dir import RunDir


def test_recovers_every_input_row_with_the_ingest_uid(ingested):
    run = RunDir(ingested)
    config = load_config(run.config_file, [])
    stats = run.stats()["stages"]["ingest"]
    pairs = recover_input_pairs(stats["input"], config.ingest)
    assert pairs is not None and pairs.num_rows == stats["rows_in"]
    assert "gt_id" in pairs.schema.names and pairs.column("gt_id").null_count == 0
    recovered = {
        u: (url, cap)
        for u, url, cap in zip(
            *(pairs.column(c).to_pylist() for c in ("uid", "url", "caption")), strict=True
        )
    }
    candidates = pq.read_table(run.candidates, columns=["uid", "url", "caption"]).to_pylist()
    assert all(recovered[c["uid"]] == (c["url"], c["caption"]) for c in candidates)
    dropped = read_ledger(run.ledger_for("ingest")).column("uid").to_pylist()
    assert set(dropped) <= set(recovered)


def test_remote_or_missing_input_gives_none(tmp_path):
    config = load_config(None, [])
    assert recover_input_pairs("s3://bucket/part-*.parquet", config.ingest) is None
    assert recover_input_pairs(str(tmp_path / "gone.parquet"), config.ingest) is None
    assert recover_input_pairs("", config.ingest) is None
