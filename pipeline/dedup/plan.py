"""The Spark plan of the dedup stage: a band index over distinct pHashes, verified pairs,
connected components by distributed min-label propagation, one representative per cluster."""

from __future__ import annotations

import functools
import logging

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipeline.config import DedupConfig
from pipeline.dedup.bands import band_layout
from pipeline.dedup.verify import PAIRS, verify_batches
from pipeline.spark.arrow import map_batches
from schemas.reasons import check

log = logging.getLogger(__name__)
EXACT = check("dedup.exact_duplicate")
NEAR = check("dedup.near_duplicate")
EVAL = check("dedup.eval_overlap")


def band_keys(nodes: DataFrame, max_distance: int, side: int = 0) -> DataFrame:
    """(band, value, node, side) for every band of every node (node = signed 64-bit pHash)."""
    keys = [
        F.struct(
            F.lit(b.index).alias("band"),
            F.shiftrightunsigned(F.col("node"), b.shift).bitwiseAND(F.lit(b.mask)).alias("value"),
        )
        for b in band_layout(max_distance)
    ]
    return nodes.select("node", F.explode(F.array(*keys)).alias("k")).select(
        F.col("k.band").cast("int").alias("band"),
        F.col("k.value").alias("value"),
        "node",
        F.lit(side).cast("int").alias("side"),
    )


def near_pairs(left: DataFrame, right: DataFrame | None, cfg: DedupConfig) -> tuple[DataFrame, int]:
    """Pairs (a, b) of distinct nodes within cfg.max_distance bits, found through shared bands.

    With `right` None, pairs within `left` (a < b); else pairs across (a from left, b from right).
    Spark shuffles the band keys so each bucket (band, value) lands whole in one partition; the
    partition function compares only within buckets, vectorised, and emits verified pairs only.
    Buckets holding more than cfg.max_bucket_size nodes are skipped; their count is returned.
    """
    keys = band_keys(left, cfg.max_distance, 0)
    if right is not None:
        keys = keys.unionByName(band_keys(right, cfg.max_distance, 1))
    spark = left.sparkSession
    partitions = max(int(spark.conf.get("spark.sql.shuffle.partitions")), 1)
    bucketed = keys.repartition(partitions, "band", "value")
    fn = functools.partial(
        verify_batches,
        max_distance=cfg.max_distance,
        cross=right is not None,
        max_bucket_size=cfg.max_bucket_size,
    )
    found = map_batches(bucketed, fn, PAIRS).localCheckpoint()
    oversized = found.filter("oversized").count()
    if oversized:
        log.warning(
            "dedup: %d oversized band buckets skipped (> %d hashes)", oversized, cfg.max_bucket_size
        )
    pairs = found.filter(~F.col("oversized")).select("a", "b").distinct()
    return pairs, oversized


def connected_components(edges: DataFrame, max_iterations: int) -> tuple[DataFrame, int]:
    """(node, component) for every node of `edges`, component = the smallest node reachable.

    Min-label propagation: each round a node takes the smallest label among itself and its
    neighbours; rounds stop when no label changes. Everything stays distributed: each round
    is a join and an aggregation, and only the count of changed labels reaches the driver.
    """
    both = edges.select("a", "b").union(edges.select(F.col("b").alias("a"), F.col("a").alias("b")))
    both = both.localCheckpoint()
    labels = (
        both.groupBy("a")
        .agg(F.least(F.col("a"), F.min("b")).alias("label"))
        .withColumnRenamed("a", "node")
    )
    labels = labels.localCheckpoint()
    for iteration in range(1, max_iterations + 1):
        proposed = (
            both.join(labels.withColumnRenamed("node", "b"), "b")
            .groupBy("a")
            .agg(F.min("label").alias("proposed"))
            .withColumnRenamed("a", "node")
        )
        updated = (
            labels.withColumnRenamed("label", "old")
            .join(proposed, "node", "left")
            .select("node", "old", F.least("old", F.coalesce("proposed", "old")).alias("label"))
            .localCheckpoint()
        )
        changed = updated.filter(F.col("label") != F.col("old")).count()
        labels = updated.select("node", "label")
        log.info("dedup: components round %d, %d labels changed", iteration, changed)
        if changed == 0:
            return labels.withColumnRenamed("label", "component"), iteration
    raise RuntimeError(f"dedup: connected components did not converge in {max_iterations} rounds")


def dedup_decisions(
    spark: SparkSession, annotations: DataFrame, eval_hashes: list[int], cfg: DedupConfig
) -> tuple[DataFrame, dict]:
    """Every annotated sample once, with `reason` null if kept; plus figures for stats.json."""
    samples = annotations.select(
        "uid",
        "phash",
        "sha256",
        (F.col("original_width").cast("long") * F.col("original_height").cast("long")).alias(
            "area"
        ),
        *(["clip_score"] if "clip_score" in annotations.columns else []),
    ).filter(F.col("phash").isNotNull())
    figures: dict = {"max_distance": cfg.max_distance}

    # Decontamination first: a sample near an evaluation image goes, whatever its cluster.
    overlap = None
    if eval_hashes:
        evals = spark.createDataFrame([(h,) for h in sorted(set(eval_hashes))], "node long")
        nodes = samples.select(F.col("phash").alias("node")).distinct()
        cross, _ = near_pairs(nodes, evals, cfg)
        exact = nodes.join(evals, "node").select(F.col("node").alias("a"), F.col("node").alias("b"))
        overlap = (
            cross.union(exact)
            .groupBy(F.col("a").alias("phash"))
            .agg(F.min("b").alias("eval_phash"))
        )
        figures["eval_hashes"] = len(set(eval_hashes))
    marked = samples
    if overlap is not None:
        marked = samples.join(
            F.broadcast(overlap) if len(eval_hashes) < 100_000 else overlap, "phash", "left"
        )
    else:
        marked = samples.withColumn("eval_phash", F.lit(None).cast("long"))
    marked = marked.localCheckpoint()
    clean = marked.filter(F.col("eval_phash").isNull())

    # Near-duplicate graph over distinct hashes: identical hashes (and identical bytes, which
    # hash identically) collapse into one node, so a picture repeated a million times is one
    # node, not a million-squared join.
    nodes = clean.select(F.col("phash").alias("node")).distinct()
    edges, oversized = near_pairs(nodes, None, cfg)
    edges = edges.localCheckpoint()
    components, rounds = connected_components(edges, cfg.max_iterations)
    figures.update(near_pairs=edges.count(), oversized_buckets=oversized, component_rounds=rounds)

    clustered = clean.join(components, clean.phash == components.node, "left").select(
        *clean.columns, F.coalesce("component", "phash").alias("cluster")
    )
    order = []
    if cfg.keep == "auto" and "clip_score" in clean.columns:
        order.append(F.col("clip_score").desc_nulls_last())
    order += [F.col("area").desc_nulls_last(), F.col("uid").asc()]
    cluster = Window.partitionBy("cluster")
    ranked = (
        clustered.withColumn("rank", F.row_number().over(cluster.orderBy(*order)))
        .withColumn("cluster_size", F.count(F.lit(1)).over(cluster))
        .withColumn("rep_uid", F.first("uid").over(cluster.orderBy(*order)))
        .withColumn("rep_phash", F.first("phash").over(cluster.orderBy(*order)))
        .withColumn("rep_sha", F.first("sha256").over(cluster.orderBy(*order)))
    )
    same = (F.col("phash") == F.col("rep_phash")) | (F.col("sha256") == F.col("rep_sha"))
    decided = ranked.select(
        "uid",
        "cluster",
        "cluster_size",
        F.when(F.col("rank") == 1, F.lit(None))
        .when(same, F.lit(EXACT))
        .otherwise(F.lit(NEAR))
        .alias("reason"),
        F.when(F.col("rank") == 1, F.lit(None)).otherwise(F.col("rep_uid")).alias("detail"),
    )
    dropped_eval = marked.filter(F.col("eval_phash").isNotNull()).select(
        "uid",
        F.col("phash").alias("cluster"),
        F.lit(1).cast("long").alias("cluster_size"),
        F.lit(EVAL).alias("reason"),
        F.format_string("eval pHash %016x", F.col("eval_phash")).alias("detail"),
    )
    return decided.unionByName(dropped_eval), figures
