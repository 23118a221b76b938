"""The stage runner: completeness that cannot lie (stats entry, output, marker, fingerprint),
changed settings rerun the stage and everything after it, --force, and `curate status`."""

from __future__ import annotations

import dataclasses
import logging
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.config import dump_yaml, load_config
from pipeline.errors import ConfigError
from pipeline.fingerprint import changed_settings, fingerprint, stage_settings
from pipeline.runner import COMPLETE_MARKER, run_stage, stage_state, status_lines
from pipeline.stages import STAGE_NAMES, get_stage
from tests.conftest import FINISHED, LOCAL_DOWNLOAD, LOCAL_NETWORK, clip_overrides, copy_run


def _sets(values: list[str]) -> list[str]:
    return [arg for v in values for arg in ("--set", v)]


def _entries(run) -> dict:
    return run.stats()["stages"]


@pytest.fixture
def run(finished, tmp_path):
    return copy_run(finished.root, tmp_path / "run")


# (stage, setting changed, changes the fingerprint)
SETTINGS = [
    ("download", "download.threads=3", False),  # how work is spread, not what arrives
    ("download", "download.processes=7", False),
    ("download", "download.min_image_size=100", True),
    ("download", "network.allowed_networks=[10.0.0.0/8]", True),
    ("annotate", "annotate.batch_rows=7", False),
    ("annotate", "clip.batch_size=3", False),
    ("annotate", "clip.model=RN50", True),
    ("annotate", "clip.threshold=0.5", False),  # a select setting
    ("dedup", "dedup.max_iterations=9", False),
    ("dedup", "dedup.max_distance=4", True),
    ("dedup", "spark.shuffle_partitions=64", False),
    ("dedup", "dedup.semantic.eps=0.02", True),
    ("dedup", "dedup.semantic.block_rows=64", False),
    ("dedup", "dedup.crop_windows=false", True),
    ("select", "clip.threshold=0.5", True),
    ("select", "clip.model=RN50", False),  # annotate's: select sees it through the upstream
    ("select", "select.rules=[]", True),
    ("balance", "balance.t=5", True),
    ("balance", "balance.keep_unmatched=true", True),
    ("balance", "clip.threshold=0.5", False),  # select's: balance sees it through the upstream
    ("shard", "shard.seed=3", True),
    ("shard", "train.steps=5", False),
]


@pytest.mark.parametrize(("stage", "override", "changes"), SETTINGS)
def test_only_output_relevant_settings_are_in_the_fingerprint(stage, override, changes):
    spec = get_stage(stage)
    before = stage_settings(spec, load_config())
    after = stage_settings(spec, load_config(None, [override]))
    assert (fingerprint(before, "u") != fingerprint(after, "u")) == changes
    assert bool(changed_settings(before, after)) == changes


def test_an_upstream_change_changes_the_fingerprint():
    settings = stage_settings(get_stage("shard"), load_config())
    assert fingerprint(settings, "a") != fingerprint(settings, "b")
    assert fingerprint(settings, "a") == fingerprint(dict(settings), "a")


def test_changed_dedup_setting_reruns_dedup_and_invalidates_the_later_stages(run, caplog):
    """Silent before: `curate dedup --set dedup.max_distance=12` on a complete dedup kept the
    old clusters and said 'already complete'."""
    before = _entries(run)
    caplog.set_level(logging.INFO, logger="pipeline")
    args = ["dedup", "--run-dir", str(run.root), *_sets([*FINISHED, "dedup.max_distance=12"])]
    assert main(args) == 0
    assert (
        "dedup: settings changed (dedup.max_distance 6 -> 12); rerunning dedup, select, balance, shard"
        in caplog.text
    )
    entries = _entries(run)
    assert entries["dedup"]["settings"]["dedup.max_distance"] == 12
    assert entries["dedup"]["max_distance"] == 12
    assert entries["dedup"]["fingerprint"] != before["dedup"]["fingerprint"]
    # select, balance, shard forgotten
    assert list(entries) == ["ingest", "preselect", "download", "annotate", "dedup"]
    for name in ("ingest", "preselect", "download", "annotate"):
        assert entries[name] == before[name]
    # The later stages now rerun on the new clusters, and the funnel adds up again.
    assert main(["shard", "--run-dir", str(run.root), *_sets(FINISHED)]) == 2
    assert main(["select", "--run-dir", str(run.root), *_sets(FINISHED)]) == 0
    assert main(["balance", "--run-dir", str(run.root), *_sets(FINISHED)]) == 0
    assert main(["shard", "--run-dir", str(run.root), *_sets(FINISHED)]) == 0
    assert _entries(run)["shard"]["rows_in"] == _entries(run)["dedup"]["rows_kept"]


def test_annotate_reruns_when_clip_is_turned_on(annotated, tiny_checkpoint, tmp_path):
    """Silent before: `curate annotate --set clip.enabled=true` after a pHash-only annotate gave
    no scores and no warning."""
    run = copy_run(annotated[0].root, tmp_path / "run")
    assert _entries(run)["annotate"]["settings"]["clip.enabled"] is False
    overrides = ["clip.enabled=true", *clip_overrides(tiny_checkpoint)]
    assert main(["annotate", "--run-dir", str(run.root), *_sets(overrides)]) == 0
    entry = _entries(run)["annotate"]
    assert entry["settings"]["clip.enabled"] is True
    assert entry["clip"]["model"] == "curate-micro-vit"
    scores = pq.read_table(run.annotations, columns=["clip_score"]).column("clip_score")
    assert scores.null_count == 0 and len(scores) == entry["rows_kept"]


@pytest.mark.parametrize("stage", ["shard", "select", "ingest"])
def test_a_deleted_output_folder_reruns_the_stage(run, stage):
    """Silent before: with `shards/` deleted, `curate shard` said 'already complete'."""
    before = _entries(run)
    output = run.root / get_stage(stage).output
    shutil.rmtree(output)
    config = load_config(None, [*FINISHED, *LOCAL_NETWORK])  # ingest's test server
    state = stage_state(run, get_stage(stage), config)
    assert state.status == "missing output"
    input_path = before["ingest"]["settings"]["input"] if stage == "ingest" else None
    entry = run_stage(stage, run.root, config, input_path=input_path)
    assert output.is_dir() and (output / COMPLETE_MARKER).is_file()
    assert (entry["rows_in"], entry["rows_kept"]) == (
        before[stage]["rows_in"],
        before[stage]["rows_kept"],
    )
    assert entry["fingerprint"] == before[stage]["fingerprint"]
    later = STAGE_NAMES[STAGE_NAMES.index(stage) + 1 :]
    assert not set(later) & set(_entries(run))  # invalidated: their input was rewritten


def test_force_redoes_a_complete_stage_and_invalidates_the_later_ones(run):
    before = _entries(run)
    assert main(["select", "--run-dir", str(run.root), "--force", *_sets(FINISHED)]) == 0
    entries = _entries(run)
    assert entries["select"]["completed_at"] >= before["select"]["completed_at"]
    assert entries["select"]["fingerprint"] == before["select"]["fingerprint"]
    assert "balance" not in entries and "shard" not in entries
    # Without --force, a complete stage is left alone.
    assert main(["select", "--run-dir", str(run.root), *_sets(FINISHED)]) == 0
    assert _entries(run)["select"] == entries["select"]


def test_status_shows_complete_stale_missing_and_not_run(run, tmp_path, capsys):
    shutil.rmtree(run.shards)
    # The settings the run was made with (the test server's network, small download shards).
    made_with = [*LOCAL_DOWNLOAD, *FINISHED]
    args = ["status", "--run-dir", str(run.root), *_sets([*made_with, "dedup.max_distance=4"])]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    status = {line.split()[0]: line for line in lines[1:]}
    entries = _entries(run)
    assert status["ingest"].split()[1] == "complete"
    assert status["download"].split()[1] == "complete"
    assert status["annotate"].split()[1] == "complete"
    assert status["dedup"].split()[1:4] == [
        "stale",
        str(entries["dedup"]["rows_in"]),
        str(entries["dedup"]["rows_kept"]),
    ]
    assert status["dedup"].endswith("dedup.max_distance 6 -> 4")
    assert status["select"].split()[1] == "stale" and status["select"].endswith("dedup would rerun")
    assert status["balance"].split()[1] == "stale"
    assert status["balance"].endswith("dedup would rerun")
    assert status["shard"].split()[1:3] == ["missing", "output"]
    # A fresh directory: nothing has run.
    empty = status_lines(tmp_path / "nothing", load_config())
    assert [line.split()[1:3] for line in empty[1:]] == [["not", "run"]] * len(STAGE_NAMES)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["clip.enabled=false", "select.rules=[clip_score, aesthetic]"],
            "config select.rules: unknown rule 'aesthetic'",
        ),
        (
            ["clip.enabled=false", "dedup.exclude=/nope/eval"],
            "dedup.exclude: /nope/eval does not exist",
        ),
        ([], "or set clip.enabled=false for pHash-only annotation"),  # openai weights, offline
        (["clip.pretrained=/nope/clip.pt", "clip.model=curate-micro-vit"], "/nope/clip.pt"),
    ],
)
def test_run_checks_every_stage_before_the_first(tmp_path, capsys, overrides, message):
    """Before: with default settings and no network, `curate run` ingested and downloaded, then
    spent a minute in hub retries and exited 2 at annotate."""
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"url": ["http://example.com/a.jpg"], "caption": ["a b c"]}), src)
    run_dir = tmp_path / "run"
    args = ["run", "--input", str(src), "--run-dir", str(run_dir), *_sets(overrides)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("curate run: error: ") and message in err[-1], err
    assert not run_dir.exists()


def test_a_stage_says_when_an_earlier_stage_is_stale(run, caplog):
    """`curate shard` after changing a select setting keeps the old keep-list (its input as it
    is), and says which stage to rerun instead of staying silent."""
    caplog.set_level(logging.INFO, logger="pipeline")
    made_with = [*LOCAL_DOWNLOAD, *FINISHED]
    args = ["shard", "--run-dir", str(run.root), *_sets([*made_with, "clip.threshold=0.5"])]
    assert main(args) == 0
    assert (
        "shard: select is stale under these settings (clip.threshold 0.28 -> 0.5); its output is"
        " used as it is: run `curate select` (or `curate run`) to apply them" in caplog.text
    )


def test_a_new_stage_is_one_registry_entry_and_its_own_package(run, monkeypatch):
    """The whole change that adds a stage: one Stage(...) in the registry (and the next stage
    naming it as what it needs), plus the stage's package (here tests/noop_stage), its config
    section included: `--set noop.label=...` reaches it, and a change makes it stale."""
    import dataclasses

    from pipeline import stages

    noop = stages.Stage(
        name="noop",
        needs="balance",
        output="noop",
        entry="tests.noop_stage.stage:run",
        help="keep every selected sample",
        settings=("noop",),
        section="tests.noop_stage.settings:NoopConfig",
    )
    shard = dataclasses.replace(get_stage("shard"), needs="noop")
    monkeypatch.setattr(stages, "STAGES", (*stages.STAGES[:-1], noop, shard))
    config = load_config(None, [*LOCAL_DOWNLOAD, *FINISHED, "noop.label=added"])
    before = _entries(run)
    run_stage("noop", run.root, config)
    entries = _entries(run)
    assert (
        entries["noop"]["rows_in"] == entries["noop"]["rows_kept"] == before["balance"]["rows_kept"]
    )
    assert entries["noop"]["noop"] == "added"
    assert entries["noop"]["settings"] == {"noop.label": "added"}
    assert "noop:\n  label: added\n" in dump_yaml(config)
    assert "shard" not in entries  # a new stage before it: shard reruns
    run_stage("shard", run.root, config)
    assert _entries(run)["shard"]["rows_kept"] == before["shard"]["rows_kept"]
    lines = status_lines(run.root, config)
    assert [line.split()[:2] for line in lines[1:]] == [
        [name, "complete"]
        for name in (
            "ingest",
            "preselect",
            "download",
            "annotate",
            "dedup",
            "select",
            "balance",
            "noop",
            "shard",
        )
    ]
    changed = load_config(None, [*LOCAL_DOWNLOAD, *FINISHED, "noop.label=changed"])
    assert stage_state(run, noop, changed).why == "noop.label added -> changed"
    with pytest.raises(ConfigError, match=r"noop\.label: must not be empty"):
        load_config(None, ["noop.label="])


def test_a_new_output_version_makes_older_outputs_stale():
    """Annotate's output gained columns (window hashes and image embeddings in version 1, the
    served bytes' SHA-256 in 2) with the same settings: an annotations folder written before is
    stale, not complete."""
    annotate = get_stage("annotate")
    before = stage_settings(dataclasses.replace(annotate, version=0), load_config())
    older = stage_settings(dataclasses.replace(annotate, version=1), load_config())
    after = stage_settings(annotate, load_config())
    assert changed_settings(before, after) == ["output_version (unset) -> 2"]
    assert changed_settings(older, after) == ["output_version 1 -> 2"]
