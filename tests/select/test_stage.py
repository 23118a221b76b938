"""The select stage: the CLIP rule as an absolute threshold or a top fraction, measured against
the planted mismatched captions; thresholds change without recomputing any model; no CLIP."""

from __future__ import annotations

import re

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.demo.synthetic_web import generate_eval_set, load_ground_truth
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage
from tests.conftest import NO_CLIP, clip_overrides, copy_run


def _noise_by_uid(run, web) -> dict[str, str]:
    gt = {r["gt_id"]: r["noise"] for r in load_ground_truth(web).to_pylist()}
    out = {}
    for shard in run.downloads.glob("*.parquet"):
        for r in pq.read_table(shard, columns=["uid", "gt_id"]).to_pylist():
            out[r["uid"]] = gt[r["gt_id"]]
    return out


@pytest.fixture
def scored_copy(scored, tmp_path):
    run, config = scored
    return copy_run(run.root, tmp_path / "run"), config


def test_top_fraction_drops_mostly_the_mismatched_captions(
    scored_copy, web_and_server, tiny_checkpoint
):
    run, _ = scored_copy
    web, _ = web_and_server
    noise = _noise_by_uid(run, web)
    pooled = {r["uid"] for r in pq.read_table(run.dedup).to_pylist()}
    planted = {u for u in pooled if noise[u] == "mismatched_caption"}
    # Keep the top fraction that would leave out exactly as many pairs as were planted.
    fraction = round(1 - len(planted) / len(pooled), 3)
    config = load_config(None, [*clip_overrides(tiny_checkpoint), f"clip.top_fraction={fraction}"])
    entry = run_stage("select", run.root, config)
    rule = entry["clip_rule"]
    assert rule["applied"] is True and rule["top_fraction"] == fraction
    assert entry["rows_in"] == len(pooled)
    assert entry["rows_kept"] == len(pq.read_table(run.selection))
    assert (
        abs(entry["rows_kept"] - fraction * len(pooled)) <= 2
    )  # a fraction of the pool, ties aside
    dropped = {r["uid"] for r in read_ledger(run.ledger_for("select")).to_pylist()}
    precision = len(dropped & planted) / len(dropped)
    recall = len(dropped & planted) / len(planted)
    print(
        f"select top {fraction:.0%}: dropped {len(dropped)}, precision {precision:.2f}, recall {recall:.2f}"
    )
    assert precision >= 0.6 and recall >= 0.6
    ledger = read_ledger(run.ledger_for("select")).to_pylist()
    assert {r["reason"] for r in ledger} == {"select.clip_score"}
    assert all(r["detail"].endswith(f"< {rule['threshold']:.4f}") for r in ledger)


def test_changing_the_threshold_reselects_without_any_model(
    scored_copy, tiny_checkpoint, monkeypatch
):
    run, _ = scored_copy
    annotations_before = {p.name: p.stat().st_mtime_ns for p in run.annotations.iterdir()}
    # Any model load during select would fail loudly.
    monkeypatch.setattr(
        "pipeline.clip.models.load_clip", lambda *a, **k: pytest.fail("select loaded a model")
    )
    strict = run_stage(
        "select",
        run.root,
        load_config(None, [*clip_overrides(tiny_checkpoint), "clip.threshold=0.3"]),
    )
    loose = run_stage(
        "select",
        run.root,
        load_config(None, [*clip_overrides(tiny_checkpoint), "clip.threshold=-1"]),
    )
    assert loose["rows_kept"] == loose["rows_in"] > strict["rows_kept"]
    assert loose["clip_rule"] == {"applied": True, "threshold": -1.0}
    assert {p.name: p.stat().st_mtime_ns for p in run.annotations.iterdir()} == annotations_before
    assert read_ledger(run.ledger_for("select")).num_rows == 0
    # Same settings again: nothing to do.
    assert (
        run_stage(
            "select",
            run.root,
            load_config(None, [*clip_overrides(tiny_checkpoint), "clip.threshold=-1"]),
        )
        == loose
    )


def test_without_clip_select_says_no_rule_ran(annotated, tmp_path):
    from pipeline.runner import run_stage

    run = copy_run(annotated[0].root, tmp_path / "run")
    run_stage("dedup", run.root, load_config(None, NO_CLIP))
    entry = run_stage("select", run.root, load_config(None, NO_CLIP))
    assert entry["clip_rule"] == {
        "applied": False,
        "why": "clip.enabled is false: no CLIP rule ran",
    }
    assert entry["rows_kept"] == entry["rows_in"] == run.stats()["stages"]["dedup"]["rows_kept"]
    # CLIP on, but the annotations were made without it: also no rule, and it says why.
    run.forget(("select",))
    entry = run_stage("select", run.root, load_config())
    assert entry["clip_rule"]["applied"] is False and "no clip_score" in entry["clip_rule"]["why"]


def test_text_based_rule_keeps_exactly_the_captions_naming_a_term(scored_copy, tiny_checkpoint):
    run, _ = scored_copy
    terms = run.root.parent / "terms.txt"
    terms.write_text("red circle\nBlue Square\ngreen star\n")
    config = load_config(
        None,
        [
            *clip_overrides(tiny_checkpoint),
            "select.rules=[text_based]",
            f"select.text_based.terms={terms}",
        ],
    )
    entry = run_stage("select", run.root, config)
    captions = {
        r["uid"]: r["caption"]
        for r in pq.read_table(run.candidates, columns=["uid", "caption"]).to_pylist()
    }
    pooled = {r["uid"] for r in pq.read_table(run.dedup, columns=["uid"]).to_pylist()}
    # An oracle independent of the automaton: a word-bounded regular expression.
    pattern = re.compile(r"(?<!\w)(red\W+circle|blue\W+square|green\W+star)(?!\w)", re.IGNORECASE)
    expected = {u for u in pooled if pattern.search(captions[u])}
    assert 0 < len(expected) < len(pooled)
    assert {r["uid"] for r in pq.read_table(run.selection).to_pylist()} == expected
    assert entry["dropped_by_reason"] == {"select.no_concept_match": len(pooled) - len(expected)}
    assert entry["rules"]["text_based"]["term_count"] == 3


def test_image_based_rule_with_clip_is_datacomps_intersection(scored_copy, tiny_checkpoint):
    run, _ = scored_copy
    reference = run.root.parent / "reference"
    generate_eval_set(reference, n_per_class=1, seed=11)
    overrides = [
        *clip_overrides(tiny_checkpoint),
        "clip.top_fraction=0.7",
        f"select.image_based.reference={reference / 'images'}",
        "select.image_based.clusters=12",
    ]
    clip_only = run_stage("select", run.root, load_config(None, overrides))
    both = run_stage(
        "select", run.root, load_config(None, [*overrides, "select.rules=[clip_score,image_based]"])
    )
    rule = both["rules"]["image_based"]
    assert rule["applied"] is True
    assert (rule["reference_images"], rule["clusters"]) == (36, 12)
    assert 1 <= rule["target_clusters"] <= 12
    # The intersection keeps a subset of the CLIP rule's keep-list, with the same threshold.
    assert both["clip_rule"]["threshold"] == clip_only["clip_rule"]["threshold"]
    assert both["rows_kept"] <= clip_only["rows_kept"]
    assert set(both["dropped_by_reason"]) <= {"select.clip_score", "select.off_target_cluster"}
    assert (
        both["dropped_by_reason"]["select.clip_score"]
        == clip_only["dropped_by_reason"]["select.clip_score"]
    )
    assert both["rows_in"] == both["rows_kept"] + sum(both["dropped_by_reason"].values())
    ledger = read_ledger(run.ledger_for("select")).to_pylist()
    off = [r for r in ledger if r["reason"] == "select.off_target_cluster"]
    assert len(off) == both["dropped_by_reason"].get("select.off_target_cluster", 0)
    assert all(r["detail"].startswith("cluster ") for r in off)


def test_select_refuses_a_rule_without_its_file(scored_copy, tiny_checkpoint):
    from pipeline.errors import ConfigError

    run, _ = scored_copy
    config = load_config(None, [*clip_overrides(tiny_checkpoint), "select.rules=[text_based]"])
    with pytest.raises(ConfigError, match=r"select\.text_based\.terms is empty"):
        run_stage("select", run.root, config)
