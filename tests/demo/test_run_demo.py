"""`curate demo` end to end on a small synthetic web: every stage runs and every input row is
accounted for: input rows = samples in the shards + ledger rows."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from pipeline.cli import main
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir


def test_demo_accounts_for_every_pair(spark, tmp_path, capsys):
    run = RunDir(tmp_path / "demo")
    assert (
        main(
            ["demo", "--run-dir", str(run.root), "--pairs", "150", "--set", "download.processes=1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "stage" in out and "dedup" in out and str(run.root) in out
    stats = run.stats()
    assert [s["stage"] for s in stats["funnel"]] == [
        "ingest",
        "download",
        "annotate",
        "dedup",
        "select",
        "shard",
    ]
    assert stats["stages"]["select"]["clip_rule"]["applied"] is False
    ledger = read_ledger(run.ledger)
    kept = sum(json.loads((run.shards / "sizes.json").read_text()).values())
    assert kept == pq.read_table(run.selection).num_rows
    assert stats["stages"]["ingest"]["rows_in"] == 150 == kept + ledger.num_rows
    # Running it again finds it complete and changes nothing.
    assert main(["demo", "--run-dir", str(run.root), "--pairs", "150"]) == 0
    assert run.stats() == stats
