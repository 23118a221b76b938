"""Semantic dedup (SemDeDup) at scale: `semantic_pairs` (k-means centroids on a driver sample,
assignment in `mapInArrow`, a shuffle by centroid, blocked pairwise cosine inside each cluster)
on 100k and 1M 512-d CLIP-like embeddings of a realistic mix, and its recall against exact
all-pairs cosine.

The mix (`mix_chunks`), the same make-up at every size: TOPICS topic centres (popularity
log-normal) grouped under THEMES broad themes, every item pulled towards one direction all
share (CLIP's anisotropy), so that unrelated items have cosine 0.07-0.53 (median 0.26), items
of one theme 0.33-0.63 and of one topic 0.6-0.9; then COPY_SHARE of the rows are planted
near-duplicates, each at cosine 0.99-0.999 to its original (a family: one copy mostly, else
2 to FAMILY_MAX copies, whose siblings sit at about 0.98-0.998). Stored as annotate stores
them (512 float16 values, L2-normalised, as bytes), generated in seeded numpy chunks and
written as parquet that Spark reads; node ids are a random permutation, uids unique.

For every size the timed part is `semantic_pairs` with the default settings (dedup.semantic.*),
forced by counting its pairs; the k-means part (`train_centroids`: the driver's sample and
spherical k-means) is timed apart on the same frame. Reported: seconds, embeddings/s, cost in
microseconds per embedding (wall and core), peak RSS of the driver python, the JVM and the
python workers (/proc, as bench_dedup), shuffle bytes (Spark's REST API on 127.0.0.1), pairs,
clusters and their sizes (the same centroids, rows assigned here in numpy: largest ones, and
the pairwise work sum(size^2) over that of equal clusters), and the recall of the planted families (their pairs at
cosine >= 1 - eps, computed exactly per family; the topics keep unrelated rows far below). Then:

- `ratio semdedup_growth_10x`: cost at 10x the embeddings over cost at 1x (target <= 12);
- recall on a SAMPLE-row mix against exact all-pairs cosine (blocked numpy matmul, independent
  of the pipeline's kernels) at eps 0.01 (the default), 0.005, 0.02 and 0.05, with 1 and 2
  assignments: `ratio semdedup_recall` at the defaults (target >= 0.95); a sample of 50k has
  5 clusters, so the planted recall at 1M (100 clusters) is the harder test of cluster borders.

Run with `make bench-semdedup` (100k and 1M, 50k recall sample); quick:
`--sizes 2e4,1e5 --sample 2e4`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.bench_dedup import (
    MemoryPoller,
    mib,
    parse_count,
    shuffle_between,
    snapshot_or_none,
    stage_snapshot,
)
from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.dedup.semantic.plan import Clustering, semantic_pairs, train_centroids
from pipeline.dedup.settings import SemanticDedupConfig
from pipeline.logs import setup_logging
from pipeline.spark.session import get_spark

log = logging.getLogger("benchmarks.bench_semdedup")

DIM = 512
THEMES = 300  # broad themes, at every size ...
THEME_POPULARITY_SIGMA = 0.5  # (log-normal weights)
TOPICS = 3_000  # ... and topics, each under one theme
TOPIC_POPULARITY_SIGMA = 1.0  # log-normal topic weights: some topics far more popular
THEME_PULL = (0.5, 0.8)  # a topic's cosine to its theme
TOPIC_PULL = (0.72, 0.92)  # an item's cosine to its topic (before the common direction)
SHARED = (0.30, 0.75)  # an item's cosine to the direction all share (CLIP's anisotropy)
COPY_SHARE = 0.03  # rows that are planted near-duplicate copies
COPY_COSINE = (0.99, 0.999)  # a copy's cosine to its original
SINGLE_COPY = 0.6  # families of one copy; the rest have 2 to FAMILY_MAX (log-uniform)
FAMILY_MAX = 20
CHUNK = 100_000  # rows generated and written at a time
EPS_LIST = (0.005, 0.01, 0.02, 0.05)
TOLERANCE = 1e-5  # cosines this close to a threshold count neither as missed nor as extra


# --- the mix -------------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _topics(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the common direction, topic centres TOPICS x DIM, their popularity as probabilities):
    the same at every size. A topic is a blend of its theme (THEMES of them) and its own
    direction, so topics of one theme are nearer each other than to the rest."""
    rng = np.random.default_rng([seed, 0])
    common = _unit(rng.standard_normal(DIM, dtype=np.float32))
    themes = _unit(rng.standard_normal((THEMES, DIM), dtype=np.float32))
    theme_weights = rng.lognormal(0.0, THEME_POPULARITY_SIGMA, THEMES)
    theme = rng.choice(THEMES, TOPICS, p=theme_weights / theme_weights.sum())
    blend = rng.uniform(*THEME_PULL, TOPICS).astype(np.float32)[:, None]
    own = _unit(rng.standard_normal((TOPICS, DIM), dtype=np.float32))
    centres = _unit(blend * themes[theme] + np.sqrt(1 - blend**2) * own)
    weights = rng.lognormal(0.0, TOPIC_POPULARITY_SIGMA, TOPICS)
    return common, centres.astype(np.float32), weights / weights.sum()


def _family_sizes(rng: np.random.Generator, copies: int) -> np.ndarray:
    """Copies per family, summing to `copies`."""
    draw = max(16, copies)
    single = rng.random(draw) < SINGLE_COPY
    several = np.exp(rng.uniform(math.log(2), math.log(FAMILY_MAX + 1), draw)).astype(int)
    sizes = np.where(single, 1, several)
    cut = int(np.searchsorted(np.cumsum(sizes), copies))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] -= int(sizes.sum()) - copies
    return sizes[sizes > 0]


@dataclass
class Chunk:
    nodes: np.ndarray  # int64
    embeddings: np.ndarray  # float16, rows x DIM, unit rows (before float16 rounding)
    family: np.ndarray  # int64: the family's id for originals with copies and their copies, -1


def mix_chunks(n: int, seed: int) -> Iterator[Chunk]:
    """n rows of the mix in chunks of CHUNK rows; families never cross a chunk."""
    common, centres, popularity = _topics(seed)
    nodes = np.random.default_rng([seed, n, 1]).permutation(n).astype(np.int64)
    next_family = 0
    for index, start in enumerate(range(0, n, CHUNK)):
        rows = min(CHUNK, n - start)
        rng = np.random.default_rng([seed, n, 2, index])
        copies = round(rows * COPY_SHARE)
        sizes = _family_sizes(rng, copies) if copies else np.zeros(0, int)
        originals = rows - int(sizes.sum())
        topic = rng.choice(TOPICS, originals, p=popularity)
        pull = rng.uniform(*TOPIC_PULL, originals).astype(np.float32)[:, None]
        noise = _unit(rng.standard_normal((originals, DIM), dtype=np.float32))
        own = _unit(pull * centres[topic] + np.sqrt(1 - pull**2) * noise)
        shared = rng.uniform(*SHARED, originals).astype(np.float32)[:, None]
        base = _unit(shared * common + np.sqrt(1 - shared**2) * own)
        # Copies: cos c to their original exactly, in a random direction orthogonal to it.
        source = rng.choice(originals, len(sizes), replace=False)
        of = np.repeat(source, sizes)
        x = base[of]
        u = rng.standard_normal((len(of), DIM), dtype=np.float32)
        u = _unit(u - (u * x).sum(axis=1, keepdims=True) * x)
        c = rng.uniform(*COPY_COSINE, len(of)).astype(np.float32)[:, None]
        copy = c * x + np.sqrt(1 - c**2) * u
        family = np.full(rows, -1, np.int64)
        ids = next_family + np.arange(len(sizes))
        family[source] = ids
        family[originals:] = np.repeat(ids, sizes)
        next_family += len(sizes)
        embeddings = np.concatenate([base, copy]).astype(np.float16)
        order = rng.permutation(rows)
        yield Chunk(nodes[start : start + rows][order], embeddings[order], family[order])


def _binary(matrix: np.ndarray) -> pa.Array:
    """Rows of a float16 matrix as one Arrow binary array (no Python loop)."""
    width = matrix.shape[1] * matrix.itemsize
    offsets = np.arange(0, (len(matrix) + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(matrix).view(np.uint8).ravel()
    return pa.Array.from_buffers(
        pa.binary(), len(matrix), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


@dataclass
class Mix:
    path: Path
    n: int
    families: int = 0
    copies: int = 0
    family_rows: int = 0
    # The rows of the families (originals and copies): enough for exact planted truth.
    family_nodes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    family_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    family_embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, DIM), np.float16))
    # Every row, kept for the exact all-pairs comparison (the sample only).
    nodes: np.ndarray | None = None
    embeddings: np.ndarray | None = None


def write_mix(n: int, seed: int, folder: Path, keep_all: bool = False) -> Mix:
    """The mix of n rows as parquet files under folder (one a chunk), and its families."""
    folder.mkdir(parents=True)
    mix = Mix(path=folder, n=n)
    fam_nodes, fam_ids, fam_emb, all_nodes, all_emb = [], [], [], [], []
    for index, chunk in enumerate(mix_chunks(n, seed)):
        uids = pa.array([f"u{node:010d}" for node in chunk.nodes.tolist()], pa.string())
        table = pa.table(
            {"node": chunk.nodes, "uid": uids, "image_embedding": _binary(chunk.embeddings)}
        )
        pq.write_table(table, folder / f"part-{index:05d}.parquet", compression="none")
        member = chunk.family >= 0
        fam_nodes.append(chunk.nodes[member])
        fam_ids.append(chunk.family[member])
        fam_emb.append(chunk.embeddings[member])
        if keep_all:
            all_nodes.append(chunk.nodes)
            all_emb.append(chunk.embeddings)
    mix.family_nodes = np.concatenate(fam_nodes)
    mix.family_ids = np.concatenate(fam_ids)
    mix.family_embeddings = np.concatenate(fam_emb)
    mix.families = len(np.unique(mix.family_ids))
    mix.family_rows = len(mix.family_ids)
    mix.copies = mix.family_rows - mix.families
    if keep_all:
        mix.nodes = np.concatenate(all_nodes)
        mix.embeddings = np.concatenate(all_emb)
    return mix


def describe(mix: Mix) -> str:
    return (
        f"mix n={mix.n:,}: {TOPICS:,} topics, {mix.families:,} families of planted copies "
        f"({mix.copies:,} copies = {mix.copies / mix.n:.1%} of rows, {mix.family_rows:,} rows "
        f"with their originals, largest family {np.bincount(mix.family_ids).max() if mix.families else 0})"
    )


# --- exact truth (independent of the pipeline's kernels) -----------------------------------


def _float(embeddings: np.ndarray) -> np.ndarray:
    """float16 rows as unit float32 rows (the stored values, renormalised)."""
    x = embeddings.astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def exhaustive_pairs(nodes: np.ndarray, embeddings: np.ndarray, threshold: float, rows: int = 2048):
    """(a, b, cosine), a < b by node, of every pair with cosine >= threshold: blocked matmul of
    every row block against the rows after it (upper triangle only)."""
    x = _float(embeddings)
    n, out_a, out_b, out_c = len(x), [], [], []
    for r in range(0, n, rows):
        sims = x[r : r + rows] @ x[r:].T
        i, j = np.nonzero(sims >= threshold)
        keep = j > i
        i, j = i[keep], j[keep]
        a, b = nodes[r + i], nodes[r + j]
        out_a.append(np.minimum(a, b))
        out_b.append(np.maximum(a, b))
        out_c.append(sims[i, j])
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_c)


def family_pairs(mix: Mix, threshold: float):
    """(a, b, cosine) of the pairs within each planted family at cosine >= threshold."""
    order = np.argsort(mix.family_ids, kind="stable")
    ids, nodes = mix.family_ids[order], mix.family_nodes[order]
    x = _float(mix.family_embeddings[order])
    bounds = np.flatnonzero(np.diff(ids)) + 1
    out_a, out_b, out_c = [], [], []
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(ids)], strict=True):
        sims = x[lo:hi] @ x[lo:hi].T
        i, j = np.nonzero(np.triu(sims >= threshold, 1))
        a, b = nodes[lo + i], nodes[lo + j]
        out_a.append(np.minimum(a, b))
        out_b.append(np.maximum(a, b))
        out_c.append(sims[i, j])
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_c)


def _keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.stack([a, b], axis=1).astype(np.int64).view(np.dtype((np.void, 16))).ravel()


@dataclass
class Recall:
    truth: int  # pairs at cosine >= threshold + TOLERANCE
    found: int  # of those, found
    ours: int  # our pairs at cosine >= threshold
    extra: int  # ours not in the truth at cosine >= threshold - TOLERANCE
    duplicates: int

    @property
    def recall(self) -> float:
        return self.found / self.truth if self.truth else 1.0


def recall(ours: tuple, truth: tuple, threshold: float) -> Recall:
    """Our pairs at this threshold against the true ones (boundary pairs, within TOLERANCE,
    count neither way)."""
    oa, ob, oc = ours
    ta, tb, tc = truth
    keep = oc >= threshold
    mine = _keys(oa[keep], ob[keep])
    unique = np.unique(mine)
    sure = tc >= threshold + TOLERANCE
    must = np.unique(_keys(ta[sure], tb[sure]))
    may = np.unique(_keys(ta[tc >= threshold - TOLERANCE], tb[tc >= threshold - TOLERANCE]))
    found = len(np.intersect1d(must, unique, assume_unique=True))
    extra = len(np.setdiff1d(unique, may, assume_unique=True))
    return Recall(len(must), found, len(unique), extra, len(mine) - len(unique))


def cluster_sizes(mix: Mix, clustering: Clustering) -> np.ndarray:
    """Rows per centroid (assigned as the pipeline does), largest first, read back from the
    mix's parquet."""
    counts = np.zeros(len(clustering.centroids), np.int64)
    for part in sorted(mix.path.glob("*.parquet")):
        column = pq.read_table(part, columns=["image_embedding"]).column(0).combine_chunks()
        data = np.frombuffer(column.buffers()[2], np.float16)
        x = _float(data[column.offset * DIM : (column.offset + len(column)) * DIM].reshape(-1, DIM))
        counts += np.bincount(clustering.assign(x)[:, 0], minlength=len(counts))
    return np.sort(counts)[::-1]


# --- one measured case ---------------------------------------------------------------------


@dataclass
class Case:
    n: int
    assignments: int
    seconds: float = 0.0
    kmeans_s: float = 0.0
    kmeans: dict = field(default_factory=dict)
    centroids: Clustering | None = None
    figures: dict = field(default_factory=dict)
    shuffle: tuple = (0, 0, 0)
    memory: dict = field(default_factory=dict)
    load: float = 0.0
    pairs: tuple | None = None


def measure(spark, mix: Mix, cfg: SemanticDedupConfig, poller: MemoryPoller, kmeans=True) -> Case:
    """`semantic_pairs` on the mix's parquet (timed whole, pairs counted), `train_centroids`
    timed apart on the same rows (checkpointed, as semantic_pairs samples them), our pairs."""
    case = Case(n=mix.n, assignments=cfg.assignments)
    if kmeans:
        frame = spark.read.parquet(str(mix.path)).localCheckpoint()
        frame.count()
        case.kmeans_s, (case.centroids, case.kmeans) = timed(
            lambda: train_centroids(frame, mix.n, cfg)
        )
        frame.unpersist()
    before = snapshot_or_none(spark)
    poller.reset()
    start = time.perf_counter()
    pairs, case.figures = semantic_pairs(spark.read.parquet(str(mix.path)), cfg)
    count = pairs.count()
    case.seconds = time.perf_counter() - start
    case.load = os.getloadavg()[1]
    case.memory = poller.read()
    if before is not None:
        case.shuffle = shuffle_between(before, stage_snapshot(spark))
    table = pairs.toArrow()
    case.pairs = (
        table["a"].to_numpy(),
        table["b"].to_numpy(),
        table["cosine"].to_numpy().astype(np.float32),
    )
    assert len(case.pairs[0]) == count
    pairs.unpersist()
    return case


def report_case(case: Case, mix: Mix, cfg: SemanticDedupConfig, cores: int) -> None:
    f, k = case.figures, case.kmeans
    tag = f"n={case.n:,} assignments={case.assignments}"
    print(
        f"case {tag}: {f.get('semantic_pairs', 0):,} pairs at cosine >= {f.get('threshold')}, "
        f"{f.get('clusters')} clusters (largest {f.get('largest_cluster', 0):,}, mean "
        f"{case.n / max(f.get('clusters', 1), 1):,.0f}), k-means sample "
        f"{f.get('kmeans_sample', 0):,}, {f.get('kmeans_iterations')} iterations"
    )
    print(
        f"time {tag}: semantic_pairs {case.seconds:.1f} s; k-means alone (train_centroids: "
        f"sample + spherical k-means, {k.get('kmeans_iterations')} iterations) {case.kmeans_s:.1f} s "
        f"= {case.kmeans_s / case.seconds:.0%} of it (5-min load average {case.load:.1f} on "
        f"{os.cpu_count()} CPUs)"
    )
    name = f"semdedup_{case.n:.0e}".replace("+0", "")
    report_rate(name, case.n, case.seconds, "embeddings/s")
    print(
        f"cost {tag}: {case.seconds / case.n * 1e6:.1f} us/embedding wall, "
        f"{case.seconds * cores / case.n * 1e6:.1f} core-us/embedding on {cores} cores "
        f"(k-means {case.kmeans_s / case.n * 1e6:.1f} us wall)"
    )
    m = case.memory
    print(
        f"memory {tag} (peak RSS): driver python {mib(m.get('driver', 0))}, JVM "
        f"{mib(m.get('jvm', 0))}, python workers {mib(m.get('workers', 0))}, all together "
        f"{mib(m.get('total', 0))}"
    )
    wb, wr, rb = case.shuffle
    print(
        f"shuffle {tag}: writes {mib(wb)} in {wr:,} records, reads {mib(rb)} "
        f"(embeddings {mib(case.n * DIM * 2)})"
    )
    if case.centroids is not None:
        sizes = cluster_sizes(mix, case.centroids)
        work = float((sizes.astype(float) ** 2).sum()) / (case.n**2 / len(sizes))
        print(
            f"clusters {tag}: largest {', '.join(f'{s:,}' for s in sizes[:5])}; smallest "
            f"{', '.join(f'{s:,}' for s in sizes[-3:])}; pairwise work sum(size^2) = {work:.2f}x "
            f"that of {len(sizes)} equal clusters; the largest holds {sizes[0] / case.n:.1%} of "
            f"the rows and {sizes[0] ** 2 / (sizes.astype(float) ** 2).sum():.0%} of the work"
        )
    threshold = 1.0 - cfg.eps
    planted = recall(case.pairs, family_pairs(mix, threshold - TOLERANCE), threshold)
    print(
        f"planted {tag}: {planted.found:,} of {planted.truth:,} family pairs at cosine >= "
        f"{threshold} found, {planted.extra:,} other pairs (not within a family), "
        f"duplicates {planted.duplicates}"
    )
    report_ratio(f"semdedup_planted_recall_{case.n:.0e}".replace("+0", ""), planted.recall)


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1e5,1e6", help="embeddings per case, comma-separated")
    parser.add_argument("--sample", type=parse_count, default=50_000, help="0: no exact recall")
    parser.add_argument(
        "--eps", default="", help="eps values for recall, default: dedup.semantic.eps and others"
    )
    parser.add_argument("--assignments", default="1,2", help="assignments for the recall runs")
    parser.add_argument(
        "--timed-assignments", default="", help="assignments for the timed cases (default: config)"
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="where to write the mixes (default: $TMPDIR)")
    args = parser.parse_args()
    setup_logging()
    config = load_config()
    cfg = config.dedup.semantic
    sizes = sorted(parse_count(s) for s in args.sizes.split(","))
    eps_list = [float(e) for e in args.eps.split(",")] if args.eps else [cfg.eps, *EPS_LIST]
    eps_list = sorted(dict.fromkeys(eps_list))
    recall_assignments = [int(a) for a in args.assignments.split(",")]
    timed_assignments = (
        [int(a) for a in args.timed_assignments.split(",")]
        if args.timed_assignments
        else [cfg.assignments]
    )
    spark_cfg = dataclasses.replace(
        config.spark, local_cores=str(args.cores), driver_memory=args.driver_memory
    )
    spark = get_spark(spark_cfg)
    cores = spark.sparkContext.defaultParallelism
    print(
        f"settings: {cfg}; Spark local[{args.cores}], {spark_cfg.shuffle_partitions} shuffle "
        f"partitions, driver memory {args.driver_memory}; load average {os.getloadavg()}"
    )
    poller = MemoryPoller()
    root = Path(tempfile.mkdtemp(prefix="bench_semdedup_", dir=args.tmp))
    try:
        # (c) recall on the sample against exact all-pairs; this also warms Spark up.
        if args.sample:
            log.info("mix of %s rows for the recall", f"{args.sample:,}")
            gen_s, sample = timed(
                lambda: write_mix(args.sample, args.seed, root / "sample", keep_all=True)
            )
            print(f"{describe(sample)}; generated and written in {gen_s:.1f} s")
            lowest = 1.0 - max(eps_list)
            log.info("exact all-pairs cosine on %s rows", f"{args.sample:,}")
            truth_s, truth = timed(
                lambda: exhaustive_pairs(sample.nodes, sample.embeddings, lowest - TOLERANCE)
            )
            ta, tb, _ = truth
            fam = dict(zip(sample.family_nodes.tolist(), sample.family_ids.tolist(), strict=True))
            across = sum(
                1
                for a, b in zip(ta.tolist(), tb.tolist(), strict=True)
                if fam.get(a, -1) < 0 or fam.get(a) != fam.get(b, -2)
            )
            print(
                f"exact n={args.sample:,}: {len(ta):,} pairs at cosine >= {lowest} in "
                f"{truth_s:.1f} s ({across:,} of them not within a planted family)"
            )
            recalls: dict[tuple[float, int], float] = {}
            for top in recall_assignments:
                # One run at the lowest threshold; the clusters do not depend on eps, so the
                # pairs at a higher threshold are its pairs filtered by cosine.
                run_cfg = dataclasses.replace(cfg, eps=max(eps_list), assignments=top)
                log.info("recall run: assignments %d on %s rows", top, f"{args.sample:,}")
                case = measure(spark, sample, run_cfg, poller, kmeans=False)
                for eps in eps_list:
                    r = recall(case.pairs, truth, 1.0 - eps)
                    recalls[eps, top] = r.recall
                    print(
                        f"recall n={args.sample:,} eps={eps} assignments={top}: {r.found:,} of "
                        f"{r.truth:,} true pairs found ({r.recall:.4f}), extra {r.extra}, "
                        f"duplicates {r.duplicates}; {case.figures.get('clusters')} clusters "
                        f"(largest {case.figures.get('largest_cluster', 0):,}), "
                        f"{case.seconds:.1f} s"
                    )
            for (eps, top), value in sorted(recalls.items()):
                if eps == cfg.eps and top == cfg.assignments:
                    report_ratio("semdedup_recall", value, ">=", 0.95)
                else:
                    report_ratio(f"semdedup_recall_eps{eps}_a{top}", value)
            shutil.rmtree(root / "sample")

        # (a) the cases.
        cases: dict[tuple[int, int], Case] = {}
        for n in sizes:
            log.info("mix of %s rows", f"{n:,}")
            gen_s, mix = timed(lambda n=n: write_mix(n, args.seed, root / f"n{n}"))
            print(f"{describe(mix)}; generated and written in {gen_s:.1f} s")
            for top in timed_assignments:
                run_cfg = dataclasses.replace(cfg, assignments=top)
                log.info("case n=%s assignments %d", f"{n:,}", top)
                case = measure(spark, mix, run_cfg, poller)
                cases[n, top] = case
                report_case(case, mix, run_cfg, cores)
                case.pairs = None
            shutil.rmtree(mix.path)

        # (b) growth over 10x the embeddings.
        for top in timed_assignments:
            for n in sizes:
                if (10 * n, top) in cases:
                    growth = cases[10 * n, top].seconds / cases[n, top].seconds
                    name = "semdedup_growth_10x" + ("" if top == cfg.assignments else f"_a{top}")
                    report_ratio(name, growth, "<=", 12)
                    kmeans = cases[10 * n, top].kmeans_s / cases[n, top].kmeans_s
                    report_ratio(f"semdedup_kmeans_growth_10x_a{top}", kmeans)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        spark.stop()


if __name__ == "__main__":
    main()
