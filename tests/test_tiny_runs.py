"""Runs with nothing, or one pair, left after the download: every stage completes with the
accounting identity holding, the shards folder is empty with `sizes.json` `{}` (or holds the one
sample), the report says so, and `curate train` on no samples exits 2 saying there is nothing to
train on (an empty stage used to break the next one: dedup's "Must pass schema, or at least one
RecordBatch")."""

from __future__ import annotations

import json
from urllib.parse import quote

import pyarrow.compute as pc
import pytest

from pipeline.cli import main
from pipeline.demo.synthetic_web import load_ground_truth
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.stages import STAGE_NAMES
from tests.conftest import LOCAL_DOWNLOAD, NO_CLIP, write_parquet

FAILING = 3  # rows whose URL answers 404: they pass ingest and fail at the download

SETTINGS = [s for pair in (("--set", x) for x in [*LOCAL_DOWNLOAD, *NO_CLIP]) for s in pair]


def _input(web, base_url: str, path, good: int):
    gt = load_ground_truth(web)
    clean = gt.filter(pc.equal(gt.column("noise"), "clean")).slice(0, good)
    urls = [f"{base_url}/{quote(p)}" for p in clean.column("path").to_pylist()]
    captions = clean.column("caption").to_pylist()
    for i in range(FAILING):
        urls.append(f"{base_url}/no/such/image-{i}.jpg")
        captions.append(f"a small wooden boat on a calm lake number {i}")
    return write_parquet(path, {"url": urls, "caption": captions})


@pytest.fixture(scope="module", params=[0, 1], ids=["zero_rows", "one_row"])
def tiny_run(request, spark, web_and_server, tmp_path_factory):
    """(number of good pairs, run directory, `curate run`'s exit code) for 0 and 1 good pairs."""
    web, server = web_and_server
    base = tmp_path_factory.mktemp(f"tiny{request.param}")
    src = _input(web, server.base_url, base / "input.parquet", request.param)
    run = RunDir(base / "run")
    code = main(["run", "--input", str(src), "--run-dir", str(run.root), *SETTINGS])
    return request.param, run, code


def test_every_stage_completes(tiny_run):
    good, run, code = tiny_run
    assert code == 0
    stats = run.stats()["stages"]
    assert [name for name in STAGE_NAMES if name in stats] == list(STAGE_NAMES)
    assert stats["download"]["rows_in"] == good + FAILING
    for name in STAGE_NAMES[STAGE_NAMES.index("annotate") :]:
        assert stats[name]["rows_kept"] == good, name


def test_the_accounting_identity_holds(tiny_run):
    """Each stage: rows in = rows kept + its ledger rows; and the input = kept + every drop."""
    good, run, _ = tiny_run
    stats = run.stats()["stages"]
    dropped = 0
    for before, name in zip(("",) + STAGE_NAMES, STAGE_NAMES, strict=False):
        entry = stats[name]
        ledger = read_ledger(run.ledger_for(name)).num_rows
        assert entry["rows_in"] == entry["rows_kept"] + ledger, name
        if before:
            assert entry["rows_in"] == stats[before]["rows_kept"], name
        dropped += ledger
    assert stats["ingest"]["rows_in"] == good + FAILING == stats["shard"]["rows_kept"] + dropped


def test_the_shards_hold_what_is_left(tiny_run):
    good, run, _ = tiny_run
    sizes = json.loads((run.shards / "sizes.json").read_text())
    if good == 0:
        assert sizes == {}
        assert not list(run.shards.glob("*.tar"))
    else:
        assert list(sizes.values()) == [1]


def test_the_report_says_how_many_pairs_are_left(tiny_run):
    good, run, _ = tiny_run
    page = (run.root / "report" / "index.html").read_text()
    if good == 0:
        assert "No pair is left after the pipeline" in page
    else:
        assert "No pair is left" not in page


def test_train_on_no_samples_says_there_is_nothing_to_train_on(tiny_run, tmp_path, capsys):
    """No sample: exit 2, one line, nothing written. One sample: training runs (resampled)."""
    good, run, _ = tiny_run
    out = tmp_path / "out"
    args = ["train", "--shards", str(run.shards), "--output", str(out)]
    short = [
        "--set",
        "train.steps=2",
        "--set",
        "train.warmup_steps=1",
        "--set",
        "train.batch_size=4",
    ]
    code = main([*args, *short])
    if good:
        assert code == 0
        assert (out / "checkpoints" / "step_000002.pt").is_file()
        return
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"curate train: error: shards {run.shards}: nothing to train on (the shard stage kept"
        " no sample: sizes.json is {})"
    ]
    assert not out.exists()
