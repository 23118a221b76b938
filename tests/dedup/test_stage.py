"""Dedup on the synthetic web: every planted duplicate found, no two pictures merged, clusters
independent of order and partitioning, decontamination, giant buckets, accounting."""

from __future__ import annotations

import collections
import io
import random

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.annotate.phash import to_signed
from pipeline.config import load_config
from pipeline.dedup.plan import dedup_decisions
from pipeline.demo.synthetic_web import load_ground_truth
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage
from tests.conftest import NO_CLIP, copy_run


def _picture_of(run, web):
    """uid -> the ground-truth picture id (a duplicate maps to its original)."""
    gt = {r["gt_id"]: r for r in load_ground_truth(web).to_pylist()}
    files = sorted(run.downloads.glob("*.parquet"))
    uid_gt = {}
    for f in files:
        for r in pq.read_table(f, columns=["uid", "gt_id"]).to_pylist():
            uid_gt[r["uid"]] = r["gt_id"]
    return {
        u: gt[g]["duplicate_of"] if gt[g]["duplicate_of"] is not None else g
        for u, g in uid_gt.items()
    }, {u: gt[g]["noise"] for u, g in uid_gt.items()}


@pytest.fixture(scope="module")
def deduped(annotated, tmp_path_factory):
    run = copy_run(annotated[0].root, tmp_path_factory.mktemp("dedup") / "run")
    return run, run_stage("dedup", run.root, load_config(None, NO_CLIP))


def _clusters(run) -> dict[str, str]:
    """uid -> uid of its cluster's kept sample."""
    kept = {r["uid"] for r in pq.read_table(run.dedup).to_pylist()}
    out = {u: u for u in kept}
    for r in read_ledger(run.ledger_for("dedup")).to_pylist():
        out[r["uid"]] = r["detail"]
    return out


def test_every_planted_duplicate_is_found_and_no_pictures_merge(deduped, web_and_server):
    run, _ = deduped
    web, _ = web_and_server
    picture, noise = _picture_of(run, web)
    clusters = _clusters(run)
    members_by_picture = collections.defaultdict(set)
    pictures_by_cluster = collections.defaultdict(set)
    for uid, rep in clusters.items():
        members_by_picture[picture[uid]].add(rep)
        pictures_by_cluster[rep].add(picture[uid])
    assert all(len(reps) == 1 for reps in members_by_picture.values()), "a picture split"
    assert all(len(p) == 1 for p in pictures_by_cluster.values()), "two pictures merged"
    planted = [u for u in clusters if noise[u].startswith(("exact_", "near_"))]
    assert len(planted) >= 10
    # Every planted duplicate shares its cluster with its original (downloaded in this web).
    assert sum(
        len(reps) for p, reps in members_by_picture.items() if p in set(picture.values())
    ) == len(members_by_picture)
    assert (
        len([p for p in pictures_by_cluster if len([u for u in clusters if clusters[u] == p]) > 1])
        >= 10
    )


def test_reasons_representatives_and_accounting(deduped, annotated):
    run, entry = deduped
    ledger = read_ledger(run.ledger_for("dedup")).to_pylist()
    kept = pq.read_table(run.dedup).to_pylist()
    assert entry["rows_in"] == annotated[1]["rows_kept"] == len(kept) + len(ledger)
    assert {r["reason"] for r in ledger} <= {"dedup.exact_duplicate", "dedup.near_duplicate"}
    assert entry["dropped_by_reason"]["dedup.near_duplicate"] > 0
    assert entry["dropped_by_reason"]["dedup.exact_duplicate"] > 0
    ann = {r["uid"]: r for r in pq.read_table(run.annotations).to_pylist()}
    kept_uids = {r["uid"] for r in kept}
    for r in ledger:
        rep, me = ann[r["detail"]], ann[r["uid"]]
        assert r["detail"] in kept_uids
        rep_area = rep["original_width"] * rep["original_height"]
        my_area = me["original_width"] * me["original_height"]
        assert rep_area > my_area or (rep_area == my_area and r["detail"] < r["uid"])
        exact = rep["phash"] == me["phash"] or rep["sha256"] == me["sha256"]
        assert r["reason"] == ("dedup.exact_duplicate" if exact else "dedup.near_duplicate")


def test_clusters_do_not_depend_on_order_or_partitioning(spark, deduped):
    run, _ = deduped
    cfg = load_config().dedup
    ann = spark.read.parquet(str(run.annotations))
    rows = ann.collect()
    random.Random(1).shuffle(rows)
    shuffled = spark.createDataFrame(rows, ann.schema).repartition(7)
    results = []
    for frame in (ann.coalesce(1), shuffled):
        decided, _ = dedup_decisions(spark, frame, [], cfg)
        results.append(
            {r["uid"]: (r["cluster"], r["reason"], r["detail"]) for r in decided.collect()}
        )
    assert results[0] == results[1]


def test_eval_overlap_is_dropped(spark, annotated, tmp_path):
    run = copy_run(annotated[0].root, tmp_path / "run")
    ann = pq.read_table(run.annotations).to_pylist()[:3]
    # The "evaluation set": three downloaded pictures, re-encoded at another quality.
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    for i, row in enumerate(ann):
        with open(run.downloads / f"{row['shard']}.tar", "rb") as tar:
            tar.seek(row["offset"])
            image = Image.open(io.BytesIO(tar.read(row["image_bytes"]))).convert("RGB")
        image.save(eval_dir / f"eval{i}.jpg", quality=60)
    entry = run_stage("dedup", run.root, load_config(None, [f"dedup.exclude={eval_dir}"]))
    ledger = read_ledger(run.ledger_for("dedup")).to_pylist()
    overlap = {r["uid"] for r in ledger if r["reason"] == "dedup.eval_overlap"}
    assert {r["uid"] for r in ann} <= overlap
    assert entry["eval_hashes"] == 3
    assert entry["rows_in"] == entry["rows_kept"] + len(ledger)


def test_giant_buckets_and_repeated_hashes(spark):
    """A blank image a thousand times is one node; a band bucket over the cap is skipped."""
    from pyspark.sql import Row

    blank = to_signed(0x8000_0000_0000_0000)
    rows = [
        Row(uid=f"b{i:04d}", phash=blank, sha256="same", original_width=300, original_height=300)
        for i in range(1000)
    ]
    # 30 distinct hashes sharing their lowest band with each other (a degenerate family).
    rows += [
        Row(
            uid=f"f{i:02d}",
            phash=to_signed((i + 1) << 40),
            sha256=f"s{i}",
            original_width=300,
            original_height=300,
        )
        for i in range(30)
    ]
    df = spark.createDataFrame(rows)
    cfg = load_config(None, ["dedup.max_bucket_size=10"]).dedup
    decided, figures = dedup_decisions(spark, df, [], cfg)
    result = {r["uid"]: r for r in decided.collect()}
    assert figures["oversized_buckets"] >= 1
    assert result["b0000"]["reason"] is None
    assert {result[f"b{i:04d}"]["reason"] for i in range(1, 1000)} == {"dedup.exact_duplicate"}
    assert {result[f"b{i:04d}"]["detail"] for i in range(1, 1000)} == {"b0000"}
