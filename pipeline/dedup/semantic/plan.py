"""The Spark plan of semantic dedup (SemDeDup, Abbas et al. 2023): centroids trained on a seeded
sample on the driver, every embedding assigned to its nearest centroid(s) in `mapInArrow`, each
cluster's pairs compared in blocks inside one task, pairs at cosine >= 1 - eps joined into
groups by the same connected components as the pHash pass, one sample kept per group."""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipeline.dedup.semantic.kernels import (
    best_match,
    nearest_centroids,
    neighbour_fraction,
    normalise,
    similar_pairs,
    spherical_kmeans,
    to_matrix,
)
from pipeline.dedup.settings import DedupConfig, SemanticDedupConfig
from pipeline.spark.arrow import map_batches
from pipeline.spark.checkpoint import fresh_checkpoint
from pipeline.spark.components import connected_components
from schemas.reasons import check

log = logging.getLogger(__name__)
SEMANTIC = check("dedup.semantic_duplicate")
# The separation check judges a model on at least this many sample points (else it is skipped).
MIN_CHECKED = 20
EVAL = check("dedup.eval_overlap")

ASSIGNED = pa.schema(
    [
        pa.field("node", pa.int64()),
        pa.field("centroid", pa.int32()),
        pa.field("image_embedding", pa.binary()),
    ]
)
PAIRS = pa.schema(
    [pa.field("a", pa.int64()), pa.field("b", pa.int64()), pa.field("cosine", pa.float32())]
)
COSINES = pa.schema([pa.field("uid", pa.string()), pa.field("cosine", pa.float32())])
EVAL_MATCHES = pa.schema(
    [
        pa.field("uid", pa.string()),
        pa.field("eval_index", pa.int64()),
        pa.field("cosine", pa.float32()),
    ]
)


def cluster_count(n: int, cfg: SemanticDedupConfig) -> int:
    """k: dedup.semantic.n_clusters, or one cluster per cluster_size embeddings."""
    if cfg.n_clusters:
        return max(1, min(cfg.n_clusters, n))
    return max(1, math.ceil(n / cfg.cluster_size))


def seeded_sample(frame: DataFrame, n: int, wanted: int, seed: int) -> np.ndarray:
    """A seeded sample of about `wanted` embeddings, the same whatever the partitioning: rows
    whose hash of uid falls under a cut, ordered by that hash. Bounded by `wanted`, never n."""
    scored = frame.select("uid", "image_embedding", F.xxhash64("uid", F.lit(seed)).alias("h"))
    if wanted < n:
        # 1.2x the wanted share so the cut rarely falls short; the take() below trims it.
        cut = min(1.0, 1.2 * wanted / n)
        scored = scored.filter(F.pmod("h", F.lit(1 << 30)) < F.lit(int(cut * (1 << 30))))
    rows = scored.orderBy("h", "uid").limit(wanted).toArrow()
    if rows.num_rows == 0:  # the cut caught nothing (a tiny share): take the first by hash
        rows = (
            frame.select("uid", "image_embedding", F.xxhash64("uid", F.lit(seed)).alias("h"))
            .orderBy("h", "uid")
            .limit(wanted)
            .toArrow()
        )
    return normalise(to_matrix(rows.column("image_embedding")))


def sample_embeddings(frame: DataFrame, n: int, cfg: SemanticDedupConfig) -> np.ndarray:
    """The seeded k-means sample of `frame` (uid, image_embedding): at most sample_per_cluster
    a centroid and max_sample in all, normalised."""
    wanted = min(n, cfg.max_sample, cfg.sample_per_cluster * cluster_count(n, cfg))
    return seeded_sample(frame, n, wanted, cfg.seed)


@dataclass(frozen=True)
class Clustering:
    """Spherical k-means centroids over mean-centred embeddings. CLIP embeddings share one strong
    direction, and k-means on them as they are puts much of the pool in one central cluster
    whose pairs one task compares (make bench-semdedup, 300k: largest cluster 147k of a mean 10k,
    8x the pairwise work of equal clusters); centred first, 55k and 2.1x. Centring only places
    the cluster borders: the pairs are still judged by the cosine of the embeddings as stored.

    `splits`: clusters over dedup.semantic.max_cluster_size, each split by a k-means of its own;
    centroid index -> (its clustering, the id of its first sub-cluster)."""

    centre: np.ndarray  # d: the sample's mean embedding
    centroids: np.ndarray  # k x d, unit rows, in centred space
    splits: Mapping[int, tuple[Clustering, int]] = field(default_factory=dict)

    def assign(self, points: np.ndarray, top: int = 1) -> np.ndarray:
        """Cluster ids (n x top) of unit `points`, nearest first; a split cluster's points get
        the id of their sub-cluster."""
        nearest = nearest_centroids(normalise(points - self.centre), self.centroids, top)
        for index, (sub, first) in self.splits.items():
            for j in range(nearest.shape[1]):
                rows = nearest[:, j] == index
                if rows.any():
                    nearest[rows, j] = first + sub.assign(points[rows])[:, 0]
        return nearest

    @property
    def clusters(self) -> int:
        """Cluster ids in use: the centroids not split, plus every sub-cluster."""
        return (
            len(self.centroids)
            - len(self.splits)
            + sum(sub.clusters for sub, _ in self.splits.values())
        )


def fit_clustering(points: np.ndarray, k: int, cfg: SemanticDedupConfig) -> tuple[Clustering, int]:
    """(Clustering, iterations run): spherical k-means over `points` centred on their mean."""
    centre = points.mean(axis=0) if len(points) else np.zeros(points.shape[1:], np.float32)
    centroids, rounds = spherical_kmeans(normalise(points - centre), k, cfg.iterations, cfg.seed)
    return Clustering(centre.astype(np.float32), centroids), rounds


def train_centroids(
    frame: DataFrame, n: int, cfg: SemanticDedupConfig, sample: np.ndarray | None = None
) -> tuple[Clustering, dict]:
    """Spherical k-means (`Clustering`) on a sample of `frame` (uid, image_embedding)."""
    points = sample_embeddings(frame, n, cfg) if sample is None else sample
    clustering, rounds = fit_clustering(points, cluster_count(n, cfg), cfg)
    return clustering, {
        "clusters": len(clustering.centroids),
        "kmeans_sample": len(points),
        "kmeans_iterations": rounds,
    }


def split_oversized(
    assigned: DataFrame, clustering: Clustering, cfg: SemanticDedupConfig
) -> tuple[Clustering, dict]:
    """`clustering` with every cluster over max_cluster_size split by its own k-means into
    ceil(size / cluster_size) sub-clusters, trained on a seeded sample of that cluster (256 a
    sub-centroid, chosen by a hash of the embedding bytes: independent of partitioning). Only
    the k cluster sizes and the bounded samples reach the driver."""
    sizes = {
        int(r["centroid"]): int(r["count"]) for r in assigned.groupBy("centroid").count().collect()
    }
    figures = {"largest_cluster": max(sizes.values(), default=0)}
    limit = cfg.max_cluster_size
    big = {c: size for c, size in sizes.items() if limit and size > limit}
    if not big:
        return clustering, figures
    # Each big cluster's sample bounded like the first level's (max_sample in all of them).
    share = max(1, cfg.max_sample // len(big))
    wanted = {
        c: min(size, share, cfg.sample_per_cluster * math.ceil(size / cfg.cluster_size))
        for c, size in big.items()
    }
    # Per cluster, the rows whose hash falls under a cut of about 1.2x its wanted share (no
    # wide sort of a big cluster), trimmed on the driver to the wanted count by hash order.
    spark = assigned.sparkSession
    cuts = spark.createDataFrame(
        [(c, int(min(1.0, 1.2 * wanted[c] / big[c]) * (1 << 30))) for c in big],
        "centroid int, cut long",
    )
    rows = (
        assigned.join(F.broadcast(cuts), "centroid")
        .withColumn("h", F.xxhash64("image_embedding", F.lit(cfg.seed)))
        .filter(F.pmod("h", F.lit(1 << 30)) < F.col("cut"))
        .select("centroid", "h", "node", "image_embedding")
        .toArrow()
        .sort_by([("centroid", "ascending"), ("h", "ascending"), ("node", "ascending")])
    )
    centroid = rows.column("centroid").to_numpy()
    points = normalise(to_matrix(rows.column("image_embedding")))
    splits: dict[int, tuple[Clustering, int]] = {}
    first = len(clustering.centroids)
    for c in sorted(big):
        mine = points[centroid == c][: wanted[c]]
        if len(mine) < 2:
            # All its rows hash alike (one embedding repeated): nothing to split by.
            continue
        sub, _ = fit_clustering(mine, math.ceil(big[c] / cfg.cluster_size), cfg)
        splits[c] = (sub, first)
        first += len(sub.centroids)
    log.warning(
        "dedup: %d semantic clusters over %d embeddings (largest %d) split into %d by their "
        "own k-means",
        len(big),
        limit,
        max(big.values()),
        sum(len(sub.centroids) for sub, _ in splits.values()),
    )
    figures["split_clusters"] = len(splits)
    return dataclasses.replace(clustering, splits=splits), figures


def separation_check(
    sample: np.ndarray, n: int, cfg: SemanticDedupConfig
) -> tuple[dict, str | None]:
    """(figures, refusal): whether the embedding tells distinct images apart at 1 - eps.

    In a sparse random sample of the pool, real duplicates rarely meet, so a sample point's
    nearest other sample point is a distinct image. When more than
    dedup.semantic.max_sample_neighbour_fraction of them are within cosine 1 - eps, the model
    puts distinct images that close together (the demo's bootstrapped 36-class model: median
    nearest-neighbour cosine 0.997), and the pass would merge most of the pool: it is refused
    (a warning, and the figures in stats.json), not run."""
    threshold = 1.0 - cfg.eps
    # Sparse: at most a tenth of the pool, so that real duplicates rarely both land in it (a
    # small pool's sample is most of it); under MIN_CHECKED points there is nothing to judge.
    checked = sample[: max(0, n // 10)]
    if len(checked) < MIN_CHECKED:
        return {"sample_neighbour_fraction": None}, None
    fraction, median = neighbour_fraction(checked, threshold, block_rows=cfg.block_rows)
    figures = {
        "sample_neighbour_fraction": round(fraction, 4),
        "sample_median_neighbour_cosine": round(median, 4),
    }
    if fraction <= cfg.max_sample_neighbour_fraction:
        return figures, None
    return figures, (
        f"{fraction:.0%} of a {len(checked):,}-embedding sample have a neighbour at cosine >= "
        f"{threshold:.4f} (median nearest cosine {median:.4f}): this model does not tell "
        f"distinct images apart at dedup.semantic.eps={cfg.eps:g}; semantic pass not run "
        "(lower eps, use a stronger CLIP model, or raise "
        "dedup.semantic.max_sample_neighbour_fraction)"
    )


def _assign_batches(
    batches: Iterator[pa.RecordBatch], clustering: Clustering, top: int
) -> Iterator[pa.RecordBatch]:
    """(node, centroid, image_embedding) per row and each of its `top` nearest centroids."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        points = normalise(to_matrix(batch.column("image_embedding")))
        nearest = clustering.assign(points, top)
        nodes = batch.column("node")
        embeddings = batch.column("image_embedding")
        for j in range(nearest.shape[1]):
            yield pa.RecordBatch.from_arrays(
                [nodes, pa.array(nearest[:, j].astype(np.int32)), embeddings], schema=ASSIGNED
            )


def _pair_batches(
    batches: Iterator[pa.RecordBatch], threshold: float, block_rows: int
) -> Iterator[pa.RecordBatch]:
    """Pairs at cosine >= threshold within each cluster; rows arrive sorted by centroid, so a
    task holds one cluster at a time."""
    pending: list[pa.RecordBatch] = []
    current = None

    def flush() -> Iterator[pa.RecordBatch]:
        if not pending:
            return
        table = pa.Table.from_batches(pending)
        points = normalise(to_matrix(table.column("image_embedding")))
        nodes = table.column("node").to_numpy()
        a, b, cosine = similar_pairs(nodes, points, threshold, block_rows)
        if len(a):
            yield pa.RecordBatch.from_arrays(
                [pa.array(a), pa.array(b), pa.array(cosine)], schema=PAIRS
            )

    for batch in batches:
        centroid = batch.column("centroid").to_numpy()
        # Cut the batch where the centroid changes (it is sorted).
        edges = np.flatnonzero(np.diff(centroid)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, len(centroid)], strict=True):
            if hi <= lo:
                continue
            value = int(centroid[lo])
            if value != current:
                yield from flush()
                pending, current = [], value
            pending.append(batch.slice(lo, hi - lo))
    yield from flush()


def semantic_pairs(
    frame: DataFrame, cfg: SemanticDedupConfig, sample: np.ndarray | None = None
) -> tuple[DataFrame, dict]:
    """Pairs (a, b, cosine) of nodes with cosine >= 1 - eps, each once, a < b, and the figures.

    `frame` has columns node (long, unique), uid and image_embedding (float16 bytes). Pairs are
    searched within k-means clusters only (SemDeDup's approximation: a pair split by a cluster
    border is missed unless assignments >= 2; make bench-semdedup measures the recall).
    `sample`: the k-means sample when the caller has drawn it already."""
    frame = frame.select("node", "uid", "image_embedding").localCheckpoint()
    n = frame.count()
    if n < 2:
        spark = frame.sparkSession
        return spark.createDataFrame([], "a long, b long, cosine float"), {"embeddings": n}
    started = time.perf_counter()
    clustering, figures = train_centroids(frame, n, cfg, sample)
    # Logged, not in stats.json (whose entries are the same on every rerun but for "seconds").
    log.info(
        "dedup: k-means: %d centroids on %d sampled embeddings, %d iterations, %.1f s",
        figures["clusters"],
        figures["kmeans_sample"],
        figures["kmeans_iterations"],
        time.perf_counter() - started,
    )
    figures["embeddings"] = n
    top = min(cfg.assignments, len(clustering.centroids))
    assigned = map_batches(
        frame.select("node", "image_embedding"),
        functools.partial(_assign_batches, clustering=clustering, top=top),
        ASSIGNED,
    )
    clustering, split_figures = split_oversized(assigned, clustering, cfg)
    figures.update(split_figures)
    if clustering.splits:
        assigned = map_batches(
            frame.select("node", "image_embedding"),
            functools.partial(_assign_batches, clustering=clustering, top=top),
            ASSIGNED,
        )
        figures["largest_cluster"] = (
            assigned.groupBy("centroid").count().agg(F.max("count")).first()[0]
        )
    figures["clusters"] = clustering.clusters
    partitions = max(int(frame.sparkSession.conf.get("spark.sql.shuffle.partitions")), 1)
    grouped = assigned.repartition(partitions, "centroid").sortWithinPartitions("centroid")
    threshold = 1.0 - cfg.eps
    pairs = map_batches(
        grouped,
        functools.partial(_pair_batches, threshold=threshold, block_rows=cfg.block_rows),
        PAIRS,
    )
    if top > 1:
        # A pair in two shared clusters is found twice.
        pairs = pairs.groupBy("a", "b").agg(F.max("cosine").alias("cosine"))
    pairs = pairs.localCheckpoint()
    figures.update(assignments=top, threshold=threshold, semantic_pairs=pairs.count())
    log.info(
        "dedup: semantic search over %d embeddings in %d clusters (largest %d): %d pairs at "
        "cosine >= %.4f",
        n,
        figures["clusters"],
        figures["largest_cluster"],
        figures["semantic_pairs"],
        threshold,
    )
    return pairs, figures


def _cosine_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """(uid, cosine of image_embedding and kept_embedding) per row."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        a = normalise(to_matrix(batch.column("image_embedding")))
        b = normalise(to_matrix(batch.column("kept_embedding")))
        yield pa.RecordBatch.from_arrays(
            [batch.column("uid"), pa.array((a * b).sum(axis=1).astype(np.float32))],
            schema=COSINES,
        )


def _eval_batches(
    batches: Iterator[pa.RecordBatch], references: np.ndarray, threshold: float, block_rows: int
) -> Iterator[pa.RecordBatch]:
    """(uid, eval_index, cosine) of the rows whose nearest evaluation embedding reaches the
    threshold."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        points = normalise(to_matrix(batch.column("image_embedding")))
        index, cosine = best_match(points, references, block_rows)
        hit = cosine >= threshold
        if hit.any():
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("uid").filter(pa.array(hit)),
                    pa.array(index[hit]),
                    pa.array(cosine[hit].astype(np.float32)),
                ],
                schema=EVAL_MATCHES,
            )


def eval_overlap(
    samples: DataFrame, references: np.ndarray, names: list[str], cfg: SemanticDedupConfig
) -> DataFrame:
    """(uid, reason, detail) of the samples whose image embedding is within 1 - eps cosine of an
    evaluation image's (the decontamination of SemDeDup's embedding space)."""
    matches = map_batches(
        samples.select("uid", "image_embedding"),
        functools.partial(
            _eval_batches,
            references=normalise(references),
            threshold=1.0 - cfg.eps,
            block_rows=cfg.block_rows,
        ),
        EVAL_MATCHES,
    )
    spark = samples.sparkSession
    labels = spark.createDataFrame(
        pa.table({"eval_index": np.arange(len(names), dtype=np.int64), "eval_name": names})
    )
    return matches.join(F.broadcast(labels), "eval_index").select(
        "uid",
        F.lit(EVAL).alias("reason"),
        F.format_string("eval image %s cosine %.4f", "eval_name", "cosine").alias("detail"),
    )


def semantic_decisions(
    samples: DataFrame,
    cfg: DedupConfig,
    order: list[Column],
    references: np.ndarray | None = None,
    reference_names: list[str] | None = None,
) -> tuple[DataFrame, dict]:
    """(uid, reason, detail) for every row of `samples` (uid, image_embedding, area and maybe
    clip_score: the pHash pass's survivors), reason null if kept, and the figures.

    The separation check first (a refused pass keeps every row), then evaluation overlap (when
    `references` holds the dedup.exclude images' embeddings), then SemDeDup groups: the kept
    sample of a group is the first in `order` (dedup.keep, as in the pHash pass), every other
    member is `dedup.semantic_duplicate` with detail "<kept uid> cosine <c>" (c: its own cosine
    with the kept sample, which may be under 1 - eps when the group is a chain)."""
    sem = cfg.semantic
    figures: dict = {"eps": sem.eps}
    # A sample without an embedding (its CLIP scoring failed) has nothing to compare: kept.
    unembedded = samples.filter(F.col("image_embedding").isNull()).select(
        "uid",
        F.lit(None).cast("string").alias("reason"),
        F.lit(None).cast("string").alias("detail"),
    )
    samples = samples.filter(F.col("image_embedding").isNotNull()).localCheckpoint()
    n = samples.count()
    sample = sample_embeddings(samples, n, sem) if n else None
    if sample is not None:
        check, refusal = separation_check(sample, n, sem)
        figures.update(check)
        if refusal is not None:
            log.warning("dedup: %s", refusal)
            figures["skipped"] = refusal
            kept = samples.select(
                "uid",
                F.lit(None).cast("string").alias("reason"),
                F.lit(None).cast("string").alias("detail"),
            )
            return kept.unionByName(unembedded), figures
    dropped_eval = None
    if references is not None and len(references):
        dropped_eval = eval_overlap(
            samples, references, reference_names or [], sem
        ).localCheckpoint()
        figures["eval_embeddings"] = len(references)
        samples = samples.join(dropped_eval.select("uid"), "uid", "left_anti")
    numbered = samples.withColumn("node", F.monotonically_increasing_id()).localCheckpoint()
    pairs, search = semantic_pairs(numbered, sem, sample)
    figures.update(search)
    components, rounds = connected_components(pairs.select("a", "b"), cfg.max_iterations)
    figures["component_rounds"] = rounds
    grouped = numbered.join(components, "node", "left").withColumn(
        "group", F.coalesce("component", "node")
    )
    group = Window.partitionBy("group")
    ranked = fresh_checkpoint(
        grouped.withColumn("rank", F.row_number().over(group.orderBy(*order))).withColumn(
            "kept_uid", F.first("uid").over(group.orderBy(*order))
        )
    )
    kept_embedding = ranked.filter(F.col("rank") == 1).select(
        F.col("uid").alias("kept_uid"), F.col("image_embedding").alias("kept_embedding")
    )
    copies = ranked.filter(F.col("rank") > 1).select("uid", "kept_uid", "image_embedding")
    cosines = map_batches(
        copies.join(kept_embedding, "kept_uid").select("uid", "image_embedding", "kept_embedding"),
        _cosine_batches,
        COSINES,
    )
    decided = ranked.join(cosines, "uid", "left").select(
        "uid",
        F.when(F.col("rank") == 1, F.lit(None).cast("string"))
        .otherwise(F.lit(SEMANTIC))
        .alias("reason"),
        F.when(F.col("rank") == 1, F.lit(None).cast("string"))
        .otherwise(F.format_string("%s cosine %.4f", "kept_uid", "cosine"))
        .alias("detail"),
    )
    if dropped_eval is not None:
        decided = decided.unionByName(dropped_eval)
    return decided.unionByName(unembedded), figures
