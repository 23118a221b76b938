"""`curate demo` end to end on a small synthetic web: every stage runs, every input row is
accounted for (input rows = samples in the shards + ledger rows), the CLIP scorer is bootstrapped
from the raw-data model, and both comparison models are trained and evaluated."""

from __future__ import annotations

import json
import logging
import socket

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.demo.compare import DEMO_TOP_FRACTION, demo_compare_config
from pipeline.demo.run_demo import eval_set_matches, serve_web
from pipeline.demo.synthetic_web import generate_eval_set
from pipeline.ledger import read_ledger
from pipeline.report.input_pairs import input_pairs
from pipeline.run_dir import RunDir
from tests.conftest import DEMO_ARGS, DEMO_PAIRS

# Alt-text rules that can drop any pair of a head class before its own filter sees it.
INGEST_TEXT_RULES = {"ingest.caption_repeated", "ingest.too_few_words", "ingest.too_many_words"}


def test_demo_accounts_for_every_pair(demo_run):
    run = demo_run
    stats = run.stats()
    assert [s["stage"] for s in stats["funnel"]] == [
        "ingest",
        "preselect",
        "download",
        "annotate",
        "dedup",
        "select",
        "balance",
        "shard",
    ]
    ledger = read_ledger(run.ledger)
    kept = sum(json.loads((run.shards / "sizes.json").read_text()).values())
    assert kept == pq.read_table(run.selection).num_rows
    assert stats["stages"]["ingest"]["rows_in"] == DEMO_PAIRS == kept + ledger.num_rows
    # Every ledger uid is a distinct input pair: nothing counted twice.
    assert len(set(ledger.column("uid").to_pylist())) == ledger.num_rows


def test_demo_bootstraps_the_scorer_from_the_raw_model(demo_run):
    stats = demo_run.stats()
    rule = stats["stages"]["select"]["clip_rule"]
    assert rule["applied"] is True
    assert rule["top_fraction"] == DEMO_TOP_FRACTION
    assert stats["stages"]["select"]["dropped_by_reason"].get("select.clip_score", 0) > 0
    assert stats["stages"]["annotate"]["clip"] == {
        "enabled": True,
        "model": "curate-micro-vit",
        "pretrained": str(demo_run.root / "train" / "raw" / "checkpoints" / "latest.pt"),
    }
    scores = pq.read_table(demo_run.annotations, columns=["clip_score"]).column("clip_score")
    assert scores.null_count == 0


def test_demo_compares_raw_and_curated_training(demo_run):
    comparison = json.loads((demo_run.root / "comparison.json").read_text())
    assert comparison["model"] == "curate-micro-vit"
    assert (comparison["steps"], comparison["batch_size"]) == (20, 32)
    assert comparison["eval_images"] == 72 and comparison["eval_classes"] == 36
    stats = demo_run.stats()["stages"]
    runs = comparison["runs"]
    assert runs["raw"]["training_samples"] == stats["download"]["rows_kept"]
    assert runs["curated"]["training_samples"] == stats["shard"]["rows_kept"]
    for r in runs.values():
        assert r["steps"] == 20
        assert 0.0 <= r["zeroshot_top1"] <= r["zeroshot_top5"] <= 1.0
    assert (
        comparison["top1_margin"] == runs["curated"]["zeroshot_top1"] - runs["raw"]["zeroshot_top1"]
    )
    assert (demo_run.report / "index.html").is_file()


def test_demo_measures_every_selection_against_the_clip_cut_over_its_seeds(demo_run):
    comparison = json.loads((demo_run.root / "comparison.json").read_text())
    assert (comparison["seeds"], comparison["baseline"]) == (2, "curated")
    assert all(r["seeds"] == [0, 1] for r in comparison["runs"].values())
    differences = comparison["differences"]
    assert sorted(differences) == ["clip_balance", "clip_image", "raw"]
    for entry in differences.values():
        assert sorted(entry) == ["i2t_r1", "t2i_r1", "top1", "top1_tail"]
        assert {d["seeds"] for d in entry.values()} == {2}
    assert len(comparison["conclusions"]) == 12
    assert all(" vs curated, " in line for line in comparison["conclusions"])


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ([], (3, "curated")),
        (["compare.seeds=5"], (5, "curated")),
        (["compare.baseline=raw"], (3, "raw")),
    ],
)
def test_a_compare_setting_the_user_set_wins_over_the_demo(user, expected):
    config = demo_compare_config(load_config(None, user))
    assert (config.compare.seeds, config.compare.baseline) == expected


def test_an_eval_set_of_another_size_or_without_captions_is_written_again(tmp_path):
    folder = tmp_path / "eval"
    assert not eval_set_matches(folder, 2)
    generate_eval_set(folder, n_per_class=2, seed=1, image_size=(32, 32))
    assert eval_set_matches(folder, 2) and not eval_set_matches(folder, 3)
    table = pq.read_table(folder / "eval.parquet").select(["path", "label"])
    pq.write_table(table, folder / "eval.parquet")  # as an earlier version wrote it
    assert not eval_set_matches(folder, 2)


def test_demo_compares_datacomp_and_metaclip_selections(demo_run):
    comparison = json.loads((demo_run.root / "comparison.json").read_text())
    runs = comparison["runs"]
    assert list(runs) == ["raw", "curated", "clip_image", "clip_balance"]
    assert [r["selection"] for r in runs.values()] == [
        "raw",
        "run",
        "clip_score+image_based",
        "clip_score+balance",
    ]
    # The tail: the rarer half of the 36 classes by the pool's captions.
    assert len(comparison["tail_classes"]) == 18
    counts = comparison["class_caption_counts"]
    assert max(counts[c] for c in comparison["tail_classes"]) <= min(
        counts[c] for c in counts if c not in comparison["tail_classes"]
    )
    for name in ("clip_image", "clip_balance"):
        child = RunDir(demo_run.root / "compare" / name)
        entries = child.stats()["stages"]
        # The shared stages are the parent's, linked; select, balance and shard are the child's.
        assert entries["dedup"] == demo_run.stats()["stages"]["dedup"]
        assert runs[name]["training_samples"] == entries["shard"]["rows_kept"]
        assert 0.0 <= runs[name]["zeroshot_top1_tail"] <= 1.0
    image = RunDir(demo_run.root / "compare" / "clip_image").stats()["stages"]
    assert image["select"]["rules"]["image_based"]["applied"] is True
    # The same CLIP cut as the run's own selection, then the image-based rule on top.
    assert image["select"]["clip_rule"] == demo_run.stats()["stages"]["select"]["clip_rule"]
    assert image["shard"]["rows_kept"] <= runs["curated"]["training_samples"]
    # What each selection dropped, by reason code, as its own stages recorded it.
    assert runs["raw"]["dropped"] == {}
    assert runs["curated"]["dropped"] == demo_run.stats()["stages"]["select"]["dropped_by_reason"]
    assert set(runs["clip_balance"]["dropped"]) <= {
        "select.clip_score",
        "balance.head_entry",
        "balance.no_entry_match",
    }
    balance = RunDir(demo_run.root / "compare" / "clip_balance").stats()["stages"]["balance"]
    assert balance["rows_in"] == runs["curated"]["training_samples"]
    assert balance["rows_kept"] == runs["clip_balance"]["training_samples"]


def test_demo_run_again_changes_nothing(demo_run, capsys):
    stats = demo_run.stats()
    before = (demo_run.root / "comparison.json").read_text()
    assert main(["demo", "--run-dir", str(demo_run.root), *DEMO_ARGS]) == 0
    out = capsys.readouterr().out
    assert "raw vs curated, top-1: " in out and "report: " in out
    assert "curated - raw top-1" not in out  # a point estimate is not printed as a conclusion
    assert demo_run.stats() == stats
    assert (demo_run.root / "comparison.json").read_text() == before


def test_demo_drops_its_blocklisted_and_robots_disallowed_pairs(demo_run):
    """The web plants pairs on the demo's URL and image lists and under the path its robots.txt
    disallows: each reaching its filter is dropped there, with that filter's reason code."""
    truth = pq.read_table(demo_run.root / "web" / "ground_truth.parquet").to_pylist()
    noise = {r["gt_id"]: r["noise"] for r in truth}
    pairs = input_pairs(demo_run).to_pylist()
    reason = {r["uid"]: r["reason"] for r in read_ledger(demo_run.ledger).to_pylist()}
    fates = {(noise[p["gt_id"]], reason.get(p["uid"])) for p in pairs}
    planted = {"blocklisted_url", "blocklisted_image", "robots_disallowed"}
    assert planted <= {kind for kind, _ in fates}
    # An image listed by hash can go earlier for another reason (a repeated caption), never later.
    allowed = {
        "blocklisted_url": {"ingest.blocked_url"},
        "blocklisted_image": {"dedup.blocked_image"} | INGEST_TEXT_RULES,
        "robots_disallowed": {"download.robots_disallowed"} | INGEST_TEXT_RULES,
    }
    for kind, why in fates:
        if kind in planted:
            assert why in allowed[kind], (kind, why)
    assert ("blocklisted_url", "ingest.blocked_url") in fates
    assert ("robots_disallowed", "download.robots_disallowed") in fates
    assert (
        (demo_run.root / "web" / "files" / "robots.txt")
        .read_text()
        .endswith("User-agent: *\nDisallow: /private/\n")
    )


def test_demo_trains_a_head_that_annotate_loads_and_the_report_scores(demo_run):
    from pipeline.clip.heads import load_head

    head_file = demo_run.root / "heads" / "off_target.pt"
    head = load_head("off_target", str(head_file))
    assert head.kind == "torchscript"
    record = json.loads((demo_run.root / "heads" / "off_target.json").read_text())
    assert (record["rows"], record["positives"]) == (720, 360)
    stats = demo_run.stats()["stages"]["annotate"]
    assert stats["settings"]["annotate.heads"] == {"off_target": str(head_file)}
    scores = pq.read_table(demo_run.annotations, columns=["score_off_target"]).column(0)
    assert scores.null_count == 0 and 0.0 <= pc.min(scores).as_py() <= pc.max(scores).as_py() <= 1
    html = (demo_run.report / "index.html").read_text()
    assert "Classifier heads against the planted truth" in html and "score_off_target" in html


def test_the_web_is_served_on_its_port_or_on_another_when_taken(tmp_path, caplog):
    # The demo's fixed port keeps its uids, and so its figures, the same from run to run.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with serve_web(tmp_path, free) as server:
        assert server.port == free
        with caplog.at_level(logging.WARNING), serve_web(tmp_path, free) as second:
            assert second.port not in (0, free)
        assert f"port {free} is taken" in caplog.text
