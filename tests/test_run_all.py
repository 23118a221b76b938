"""`curate run`: every stage in order on a run whose ingest and download are done, each complete
stage skipped, the report written, and every input row accounted for."""

from __future__ import annotations

import json

from pipeline.cli import main
from pipeline.ledger import read_ledger
from pipeline.stages import STAGE_NAMES as STAGES
from tests.conftest import LOCAL_DOWNLOAD, NO_CLIP, copy_run


def _sets(values: list[str]) -> list[str]:
    return [arg for v in values for arg in ("--set", v)]


def test_run_does_the_remaining_stages_and_the_report(downloaded, tmp_path, capsys):
    source, _, _ = downloaded
    run = copy_run(source.root, tmp_path / "run")
    input_path = run.stats()["stages"]["ingest"]["input"]
    before = {s: run.completed_entry(s) for s in ("ingest", "download")}
    args = [
        "run",
        "--input",
        input_path,
        "--run-dir",
        str(run.root),
        *_sets(NO_CLIP + LOCAL_DOWNLOAD),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "shard" in out and f"report: {run.report / 'index.html'}" in out
    stats = run.stats()
    assert list(stats["stages"]) == list(STAGES)
    assert {s: run.completed_entry(s) for s in before} == before  # complete stages were skipped
    kept = sum(json.loads((run.shards / "sizes.json").read_text()).values())
    assert stats["stages"]["ingest"]["rows_in"] == kept + read_ledger(run.ledger).num_rows
    assert (run.report / "index.html").stat().st_size > 10_000
    # Again: nothing left to do, nothing changes.
    assert main(args) == 0
    assert run.stats() == stats


def test_report_needs_an_ingested_run(tmp_path, capsys):
    assert main(["report", "--run-dir", str(tmp_path / "empty")]) == 2
    assert "no complete ingest stage (run `curate ingest` first)" in capsys.readouterr().err
