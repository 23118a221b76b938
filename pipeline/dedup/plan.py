"""The Spark plan of the dedup stage: a planned block index over distinct pHashes (bands.py),
verified pairs (verify.py), connected components by hooking and pointer jumping, one
representative per cluster."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from pipeline.config import Config
from pipeline.dedup.bands import FULL, IndexPlan, Layout, group_cost, plan_index
from pipeline.dedup.blocklists import ImageBlocklist
from pipeline.dedup.exclude import load_exclusion_hashes
from pipeline.dedup.semantic.kernels import to_matrix
from pipeline.dedup.semantic.plan import semantic_decisions
from pipeline.dedup.settings import DedupConfig
from pipeline.dedup.verify import MAX_STATS, PAIRS, SPLIT, STAT_NAMES, search_batches
from pipeline.errors import InputError
from pipeline.spark.arrow import map_batches
from pipeline.spark.components import connected_components
from pipeline.spark.decisions import Decisions
from schemas.reasons import check

log = logging.getLogger(__name__)
EXACT = check("dedup.exact_duplicate")
NEAR = check("dedup.near_duplicate")
EVAL = check("dedup.eval_overlap")
BLOCKED = check("dedup.blocked_image")


def _signed(mask: int) -> int:
    """A 64-bit mask as the signed long Spark holds it."""
    return mask - (1 << 64) if mask >> 63 else mask


def band_keys(nodes: DataFrame, masks: tuple[int, ...]) -> DataFrame:
    """(table, key, node, side) for every table of the shuffle layout and every (node, side) row
    (node = signed 64-bit pHash): key = the node's bits under the table's mask."""
    keys = [
        F.struct(
            F.lit(i * SPLIT).alias("table"),
            F.col("node").bitwiseAND(F.lit(_signed(mask))).alias("key"),
        )
        for i, mask in enumerate(masks)
    ]
    return nodes.select("node", "side", F.explode(F.array(*keys)).alias("k")).select(
        F.col("k.table").cast("int").alias("table"),
        F.col("k.key").alias("key"),
        "node",
        F.col("side").cast("int").alias("side"),
    )


def _split_heavy(
    keys: DataFrame, plan: IndexPlan, max_bucket_size: int
) -> tuple[DataFrame, dict[int, tuple[int, ...]], dict]:
    """Buckets over max_bucket_size split in the shuffle: each of their rows is copied once a
    table of a further layout over the bucket's free bits (nested pigeonhole, Manku et al.
    2007), keyed on the bucket's bits plus that table's, so one bucket becomes many that spread
    over tasks. Only the heavy buckets' keys (at most rows / max_bucket_size) reach the driver."""
    heavy = (
        keys.groupBy("table", "key")
        .agg(F.count(F.lit(1)).alias("rows"))
        .filter(F.col("rows") > max_bucket_size)
        .collect()
    )
    figures = {"oversized_buckets": len(heavy)}
    if not heavy:
        return keys, {}, figures
    figures["largest_oversized_bucket"] = max(r["rows"] for r in heavy)
    layouts: dict[int, tuple[int, ...]] = {}
    for table in sorted({r["table"] for r in heavy}):
        i = table // SPLIT
        free = FULL & ~plan.shuffle.masks[i]
        largest = max(r["rows"] for r in heavy if r["table"] == table)
        # The layout the in-memory search would pick for the largest such bucket, at least
        # k + 1 tables so that the bucket does split.
        _, blocks = group_cost(largest, free.bit_count(), plan.k)
        blocks = blocks or min(plan.k + 1, free.bit_count())
        layouts[i] = Layout(free, blocks, plan.k).masks if free else ()
    layouts = {i: m for i, m in layouts.items() if m}
    if not layouts:
        return keys, {}, figures
    log.warning(
        "dedup: %d shuffle buckets over %d hashes (largest %d) split in the shuffle by %s "
        "further tables",
        len(heavy),
        max_bucket_size,
        figures["largest_oversized_bucket"],
        {i: len(m) for i, m in layouts.items()},
    )
    spark = keys.sparkSession
    marks = spark.createDataFrame(
        [(r["table"], r["key"], True) for r in heavy if r["table"] // SPLIT in layouts],
        "table int, key long, heavy boolean",
    )
    tagged = keys.join(F.broadcast(marks), ["table", "key"], "left")
    light = tagged.filter(F.col("heavy").isNull()).select("table", "key", "node", "side")
    parts = [light]
    for i, masks in layouts.items():
        subs = [
            F.struct(
                F.lit(i * SPLIT + j + 1).alias("table"),
                F.col("node").bitwiseAND(F.lit(_signed(plan.shuffle.masks[i] | mask))).alias("key"),
            )
            for j, mask in enumerate(masks)
        ]
        parts.append(
            tagged.filter(F.col("heavy").isNotNull() & (F.col("table") == i * SPLIT))
            .select("node", "side", F.explode(F.array(*subs)).alias("k"))
            .select(
                F.col("k.table").cast("int").alias("table"),
                F.col("k.key").alias("key"),
                "node",
                "side",
            )
        )
    figures["split_tables"] = sum(len(m) for m in layouts.values())
    figures["split_rows"] = sum(r["rows"] for r in heavy if r["table"] // SPLIT in layouts) * max(
        len(m) for m in layouts.values()
    )
    return functools.reduce(DataFrame.unionByName, parts), layouts, figures


def near_pairs(
    left: DataFrame, right: DataFrame | None, cfg: DedupConfig
) -> tuple[DataFrame, dict]:
    """Pairs (a, b) of distinct nodes within cfg.max_distance bits, each once, and the figures of
    the search (for stats.json).

    With `right` None, pairs within `left` (a < b); else pairs across (a from left, b from right).
    `plan_index` sizes the shuffle layout from the number of nodes (bands.py); Spark shuffles
    one row per node and table so that each bucket lands whole in one task, buckets over
    cfg.max_bucket_size are split further in the shuffle, and the task searches its buckets in
    memory (verify.py), emitting verified pairs only. Nothing is skipped: every figure of what
    was split or compared in blocks is returned.
    """
    k = cfg.max_distance
    nodes = left.select(F.col("node").cast("long").alias("node"), F.lit(0).alias("side"))
    if right is not None:
        nodes = nodes.unionByName(
            right.select(F.col("node").cast("long").alias("node"), F.lit(1).alias("side"))
        )
    nodes = nodes.localCheckpoint()
    n = nodes.count()
    spark = left.sparkSession
    partitions = max(int(spark.conf.get("spark.sql.shuffle.partitions")), 1)
    plan = plan_index(n, k, cfg.max_bucket_size, min_partitions=partitions)
    log.info("dedup: index plan: %s", plan.describe())
    keys = band_keys(nodes, plan.shuffle.masks)
    keys, layouts, figures = _split_heavy(keys, plan, cfg.max_bucket_size)
    bucketed = keys.repartition(plan.partitions, "table", "key")
    fn = functools.partial(
        search_batches,
        max_distance=k,
        cross=right is not None,
        max_bucket_size=cfg.max_bucket_size,
        shuffle_masks=plan.shuffle.masks,
        split_masks=layouts,
    )
    found = map_batches(bucketed, fn, PAIRS).localCheckpoint()
    for row in (
        found.filter(F.col("kind") > 0)
        .groupBy("kind")
        .agg(F.sum("a").alias("total"), F.max("a").alias("largest"))
        .collect()
    ):
        code = row["kind"]
        figures[STAT_NAMES[code]] = int(row["largest"] if code in MAX_STATS else row["total"])
    figures.update(
        hashes=n,
        index_tables=plan.shuffle.tables,
        index_key_bits=min(plan.shuffle.key_bits),
        planned_shuffle_rows=plan.shuffle_rows,
        expected_candidate_pairs=int(plan.expected_candidates),
    )
    if figures.get("giant_groups_blocked"):
        log.warning(
            "dedup: %d groups over %d hashes could not be split (largest %d): compared all-pairs "
            "in blocks",
            figures["giant_groups_blocked"],
            cfg.max_bucket_size,
            figures.get("largest_giant_group", 0),
        )
    pairs = found.filter(F.col("kind") == 0).select("a", "b")
    return pairs, figures


def exclusion_hashes(spark: SparkSession, path: str, draft_size: int = 64) -> DataFrame:
    """The `dedup.exclude` hashes as a one-column DataFrame `node` of distinct signed longs.

    A parquet of hashes (file or folder, `phash` as long or 16-digit hex) is read by Spark,
    never through the driver; a folder of images is hashed on the driver as before (eval sets
    of images are small) and handed to Spark through Arrow.
    """
    root = Path(path)
    is_parquet = (root.is_file() and root.suffix == ".parquet") or (
        root.is_dir() and any(root.glob("*.parquet"))
    )
    if not is_parquet:
        return _hash_frame(spark, load_exclusion_hashes(path, draft_size))
    frame = spark.read.parquet(str(root))
    if "phash" not in frame.columns:
        raise InputError(
            f"dedup.exclude: {path} has no phash column (columns: {', '.join(frame.columns)})"
        )
    column = F.col("phash")
    if isinstance(frame.schema["phash"].dataType, StringType):
        # conv to a negative base reads the 64 bits as a signed number (two's complement).
        column = F.conv(column, 16, -10).cast("long")
    return frame.select(column.alias("node")).filter(F.col("node").isNotNull()).distinct()


def _hash_frame(spark: SparkSession, hashes) -> DataFrame:
    """Distinct hashes from the driver to Spark as one Arrow table, not a list of Row tuples."""
    values = np.unique(np.asarray(list(hashes), dtype=np.int64))
    return spark.createDataFrame(pa.table({"node": values}))


def _with_window_links(edges: DataFrame, windows: DataFrame) -> tuple[DataFrame, int]:
    """`edges` plus an edge from each sample's pHash to each of its window hashes that matters:
    one in a near pair, or shared with another sample (identical hashes are one node, so they
    make no pair). The rest would link a sample only to itself. Returns the edges and the count
    of window links added."""
    linked = edges.select(F.col("a").alias("window")).union(
        edges.select(F.col("b").alias("window"))
    )
    shared = (
        windows.groupBy("window")
        .agg(F.countDistinct("phash").alias("owners"))
        .filter(F.col("owners") > 1)
        .select("window")
    )
    # A window equal to another sample's full-frame pHash links the two as well.
    frames = windows.select(F.col("phash").alias("window"))
    wanted = linked.union(shared).union(frames).distinct()
    links = (
        windows.join(wanted, "window", "left_semi")
        .select(F.col("phash").alias("a"), F.col("window").alias("b"))
        .distinct()
        .localCheckpoint()
    )
    return edges.union(links), links.count()


def keep_order(keep: str, has_clip_score: bool) -> list:
    """The order in which a duplicate group's members are preferred (first is kept):
    dedup.keep auto = highest clip_score when there is one, else the largest original image;
    ties go to the smallest uid, so the choice never depends on partitioning."""
    order = []
    if keep == "auto" and has_clip_score:
        order.append(F.col("clip_score").desc_nulls_last())
    return order + [F.col("area").desc_nulls_last(), F.col("uid").asc()]


def dedup_decisions(
    spark: SparkSession,
    annotations: DataFrame,
    eval_hashes: Sequence[int] | DataFrame,
    cfg: DedupConfig,
    blocked: DataFrame | None = None,
) -> tuple[DataFrame, dict]:
    """Every annotated sample once, with `reason` null if kept; plus figures for stats.json.

    `eval_hashes`: the decontamination set, a list of signed hashes or (at scale) a DataFrame
    with a `node` column, as `exclusion_hashes` reads it; `blocked`: the image blocklists'
    entries (`blocklist_frames`). The steps: blocklisted images out, then decontamination (a
    sample near an evaluation image goes, whatever its cluster), then the near-duplicate
    components of the rest, then one sample kept per cluster."""
    figures: dict = {"max_distance": cfg.max_distance}
    samples, listed = _drop_blocked(_hashed_samples(annotations, cfg), blocked, cfg, figures)
    marked = _mark_eval_overlap(spark, samples, eval_hashes, cfg, figures)
    clean = marked.filter(F.col("eval_phash").isNull())
    components = _near_duplicate_components(clean, cfg, figures)
    decided = _keep_one_per_cluster(clean, components, cfg).unionByName(_eval_drops(marked))
    return (decided if listed is None else decided.unionByName(listed)), figures


def blocklist_frames(spark: SparkSession, lists: Sequence[ImageBlocklist]) -> DataFrame | None:
    """The entries of `dedup.blocklists` as one small DataFrame (kind, sha256, node, list);
    None when there are none."""
    rows = [
        (kind, sha, node, blocklist.name)
        for blocklist in lists
        for kind, sha, node in (
            *(("sha256", sha, None) for sha in sorted(blocklist.sha256)),
            *(("phash", None, node) for node in sorted(blocklist.phash)),
        )
    ]
    if not rows:
        return None
    kinds, shas, nodes, names = (list(c) for c in zip(*rows, strict=True))
    table = pa.table(
        {
            "kind": pa.array(kinds, pa.string()),
            "sha256": pa.array(shas, pa.string()),
            "node": pa.array(nodes, pa.int64()),
            "list": pa.array(names, pa.string()),
        }
    )
    return spark.createDataFrame(table)


def _drop_blocked(
    samples: DataFrame, blocked: DataFrame | None, cfg: DedupConfig, figures: dict
) -> tuple[DataFrame, DataFrame | None]:
    """(the samples no blocklist names, the decisions of those it does: dedup.blocked_image
    with the list's name and the kind of match as the detail, each sample its own cluster).
    A SHA-256 entry matches the served bytes exactly, a pHash entry every image within
    dedup.blocklist_distance bits (the index of near_pairs, at that radius)."""
    if blocked is None:
        return samples, None
    blocked = blocked.localCheckpoint()
    # Published lists hash the picture as served; img2dataset's resize and re-encode change
    # the stored bytes, so the entries are matched against served_sha256, not sha256.
    listed_sha = blocked.filter(F.col("kind") == "sha256").withColumnRenamed(
        "sha256", "served_sha256"
    )
    by_sha = (
        samples.join(F.broadcast(listed_sha), "served_sha256")
        .groupBy("uid")
        .agg(F.min("list").alias("list"))
        .withColumn("how", F.lit("sha256"))
    )
    hits = by_sha
    listed_nodes = blocked.filter(F.col("kind") == "phash").select("node", "list")
    if listed_nodes.limit(1).count():  # no index over the pool for a SHA-256-only list
        nodes = samples.select(F.col("phash").alias("node")).distinct()
        radius = dataclasses.replace(cfg, max_distance=cfg.blocklist_distance)
        near, figures["blocklist_index"] = near_pairs(nodes, listed_nodes, radius)
        exact = nodes.join(listed_nodes, "node").select(
            F.col("node").alias("a"), F.col("node").alias("b")
        )
        matched = (
            near.select("a", "b")
            .union(exact)
            .join(listed_nodes.withColumnRenamed("node", "b"), "b")
            .groupBy(F.col("a").alias("phash"))
            .agg(F.min("list").alias("list"))
        )
        by_phash = (
            samples.join(matched, "phash")
            .groupBy("uid")
            .agg(F.min("list").alias("list"))
            .withColumn("how", F.lit("phash"))
        )
        # A sample listed both ways is named by its SHA-256 entry.
        hits = by_sha.unionByName(by_phash.join(by_sha.select("uid"), "uid", "left_anti"))
    hits = hits.localCheckpoint()
    figures["blocklisted"] = hits.count()
    listed = samples.join(hits, "uid").select(
        "uid",
        F.col("phash").alias("cluster"),
        F.lit(1).cast("long").alias("cluster_size"),
        F.lit(BLOCKED).alias("reason"),
        F.format_string("list %s (%s)", F.col("list"), F.col("how")).alias("detail"),
    )
    return samples.join(hits.select("uid"), "uid", "left_anti"), listed


def _hashed_samples(annotations: DataFrame, cfg: DedupConfig) -> DataFrame:
    """The columns dedup reads, for every sample with a pHash."""
    return annotations.select(
        "uid",
        "phash",
        "sha256",
        (
            F.col("served_sha256")
            if "served_sha256" in annotations.columns
            else F.lit(None).cast("string").alias("served_sha256")
        ),
        (F.col("original_width").cast("long") * F.col("original_height").cast("long")).alias(
            "area"
        ),
        *(["clip_score"] if "clip_score" in annotations.columns else []),
        *(
            ["window_phashes"]
            if cfg.crop_windows and "window_phashes" in annotations.columns
            else []
        ),
    ).filter(F.col("phash").isNotNull())


def _mark_eval_overlap(
    spark: SparkSession,
    samples: DataFrame,
    eval_hashes: Sequence[int] | DataFrame,
    cfg: DedupConfig,
    figures: dict,
) -> DataFrame:
    """`samples` with `eval_phash`: the smallest evaluation hash within the radius, else null."""
    overlap = None
    evals = (
        eval_hashes.select(F.col("node").cast("long").alias("node")).distinct()
        if isinstance(eval_hashes, DataFrame)
        else (_hash_frame(spark, eval_hashes) if len(eval_hashes) else None)
    )
    eval_count = 0
    if evals is not None:
        evals = evals.localCheckpoint()
        eval_count = evals.count()
    if eval_count:
        nodes = samples.select(F.col("phash").alias("node")).distinct()
        cross, cross_figures = near_pairs(nodes, evals, cfg)
        exact = nodes.join(evals, "node").select(F.col("node").alias("a"), F.col("node").alias("b"))
        overlap = (
            cross.union(exact)
            .groupBy(F.col("a").alias("phash"))
            .agg(F.min("b").alias("eval_phash"))
        )
        figures["eval_hashes"] = eval_count
        figures["eval_index"] = cross_figures
    if overlap is None:
        return samples.withColumn("eval_phash", F.lit(None).cast("long")).localCheckpoint()
    small = F.broadcast(overlap) if eval_count < 100_000 else overlap
    return samples.join(small, "phash", "left").localCheckpoint()


def _near_duplicate_components(clean: DataFrame, cfg: DedupConfig, figures: dict) -> DataFrame:
    """(node, component) of the near-duplicate graph over distinct hashes: identical hashes (and
    identical bytes, which hash identically) collapse into one node, so a picture repeated a
    million times is one node, not a million-squared join."""
    nodes = clean.select(F.col("phash").alias("node"))
    windows = None
    if "window_phashes" in clean.columns:
        # Crop windows and the mirror (dedup.crop_windows): their hashes are nodes of the same
        # index, so any hash of one sample within the radius of any hash of another links them.
        windows = clean.select("phash", F.explode("window_phashes").alias("window")).filter(
            F.col("window") != F.col("phash")
        )
        nodes = nodes.unionByName(windows.select(F.col("window").alias("node")))
    nodes = nodes.distinct()
    edges, search_figures = near_pairs(nodes, None, cfg)
    edges = edges.select("a", "b").localCheckpoint()
    figures.update(search_figures)
    figures["near_pairs"] = edges.count()
    if windows is not None:
        edges, figures["window_links"] = _with_window_links(edges, windows)
    components, figures["component_rounds"] = connected_components(edges, cfg.max_iterations)
    return components


def _keep_one_per_cluster(clean: DataFrame, components: DataFrame, cfg: DedupConfig) -> DataFrame:
    """(uid, cluster, cluster_size, reason, detail): the first of each cluster in keep_order
    kept, the others dropped as exact (same pHash or bytes as the kept one) or near duplicates
    of it."""
    # A cluster is named by the smallest full-frame pHash of its samples (a component may be
    # named by a window hash).
    clustered = (
        clean.join(components, clean.phash == components.node, "left")
        .withColumn("component", F.coalesce("component", "phash"))
        .select(
            *clean.columns,
            F.min("phash").over(Window.partitionBy("component")).alias("cluster"),
        )
    )
    order = keep_order(cfg.keep, "clip_score" in clean.columns)
    cluster = Window.partitionBy("cluster")
    ranked = (
        clustered.withColumn("rank", F.row_number().over(cluster.orderBy(*order)))
        .withColumn("cluster_size", F.count(F.lit(1)).over(cluster))
        .withColumn("rep_uid", F.first("uid").over(cluster.orderBy(*order)))
        .withColumn("rep_phash", F.first("phash").over(cluster.orderBy(*order)))
        .withColumn("rep_sha", F.first("sha256").over(cluster.orderBy(*order)))
    )
    same = (F.col("phash") == F.col("rep_phash")) | (F.col("sha256") == F.col("rep_sha"))
    return ranked.select(
        "uid",
        "cluster",
        "cluster_size",
        F.when(F.col("rank") == 1, F.lit(None))
        .when(same, F.lit(EXACT))
        .otherwise(F.lit(NEAR))
        .alias("reason"),
        F.when(F.col("rank") == 1, F.lit(None)).otherwise(F.col("rep_uid")).alias("detail"),
    )


def _eval_drops(marked: DataFrame) -> DataFrame:
    """The samples near an evaluation image, each its own cluster, dropped as eval overlap."""
    return marked.filter(F.col("eval_phash").isNotNull()).select(
        "uid",
        F.col("phash").alias("cluster"),
        F.lit(1).cast("long").alias("cluster_size"),
        F.lit(EVAL).alias("reason"),
        F.format_string("eval pHash %016x", F.col("eval_phash")).alias("detail"),
    )


def _with_semantic_pass(
    decided: DataFrame,
    annotations: DataFrame,
    cfg: DedupConfig,
    references: DataFrame | None,
) -> tuple[DataFrame, dict]:
    """The pHash pass's decisions with its survivors run through semantic dedup."""
    survivors = decided.filter(F.col("reason").isNull()).select("uid", "cluster", "cluster_size")
    samples = annotations.select(
        "uid",
        "image_embedding",
        (F.col("original_width").cast("long") * F.col("original_height").cast("long")).alias(
            "area"
        ),
        *(["clip_score"] if "clip_score" in annotations.columns else []),
    ).join(survivors.select("uid"), "uid")
    ref_matrix, ref_names = None, None
    if references is not None:
        # The evaluation set's embeddings: small (an eval set), so they travel to the tasks
        # with the function, as the centroids do.
        table = references.select("name", "image_embedding").orderBy("name").toArrow()
        ref_matrix = to_matrix(table.column("image_embedding"))
        ref_names = table.column("name").to_pylist()
    order = keep_order(cfg.keep, "clip_score" in annotations.columns)
    semantic, figures = semantic_decisions(samples, cfg, order, ref_matrix, ref_names)
    resolved = survivors.join(semantic, "uid", "left").select(
        "uid", "cluster", "cluster_size", "reason", "detail"
    )
    return decided.filter(F.col("reason").isNotNull()).unionByName(resolved), figures


def decide(inputs: Mapping[str, DataFrame], config: Config) -> Decisions:
    """The stage's plan: `inputs["annotations"]` (and `inputs["exclude"]`, the evaluation hashes
    as a `node` column, when dedup.exclude is set; `inputs["blocked"]`, the image blocklists'
    entries from `blocklist_frames`, when dedup.blocklists is set; `inputs["exclude_embeddings"]`, their CLIP
    image embeddings as (name, image_embedding), when CLIP runs) -> every sample once, `reason`
    null if kept.

    The pHash pass (exact, near and evaluation duplicates) runs first; with
    dedup.semantic.enabled and image embeddings in the annotations, its survivors then go
    through semantic dedup (pipeline/dedup/semantic/)."""
    annotations = inputs["annotations"]
    exclude = inputs.get("exclude")
    cfg = config.dedup
    frame, figures = dedup_decisions(
        annotations.sparkSession,
        annotations,
        exclude if exclude is not None else [],
        cfg,
        inputs.get("blocked"),
    )
    if cfg.semantic.enabled and "image_embedding" in annotations.columns:
        frame = frame.localCheckpoint()
        frame, semantic_figures = _with_semantic_pass(
            frame, annotations, cfg, inputs.get("exclude_embeddings")
        )
        figures["semantic"] = semantic_figures
    elif cfg.semantic.enabled:
        log.info(
            "dedup: no image embeddings in the annotations (annotate ran without CLIP): "
            "no semantic pass"
        )
    return Decisions(frame, figures)
