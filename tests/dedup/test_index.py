"""The Spark index end to end: near_pairs equals brute force at radii 0, 3, 6, 8 on random and
clustered hashes, whatever the partitioning; oversized buckets split in the shuffle (counted,
never skipped); a 10,000-long chain collapses to one component in O(log n) rounds; eval
hashes read from parquet by Spark."""

from __future__ import annotations

import contextlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.dedup.plan import exclusion_hashes, near_pairs
from pipeline.dedup.verify import brute_force_pairs
from pipeline.spark.components import connected_components
from tests.dedup.test_verify import family, mixed, random_hashes


def _frame(spark, values):
    return spark.createDataFrame(pa.table({"node": np.unique(np.asarray(values, np.int64))}))


@contextlib.contextmanager
def shuffle_partitions(spark, n: int):
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(n))
    try:
        yield
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)


def _pairs(frame) -> list[tuple[int, int]]:
    return [(r["a"], r["b"]) for r in frame.collect()]


@pytest.mark.parametrize("k", [0, 3, 6, 8])
def test_near_pairs_equal_brute_force_on_clustered_input(spark, k):
    hashes = mixed(100 + k, k)
    cfg = load_config(None, [f"dedup.max_distance={k}"]).dedup
    truth = brute_force_pairs(hashes, None, k)
    results = []
    for partitions in (1, 4):
        with shuffle_partitions(spark, partitions):
            pairs, figures = near_pairs(_frame(spark, hashes), None, cfg)
            found = _pairs(pairs)
        assert len(found) == len(set(found))
        results.append(set(found))
    assert results[0] == results[1] == truth
    assert figures["hashes"] == len(np.unique(hashes))
    assert figures["oversized_buckets"] == 0


def test_cross_pairs_equal_brute_force(spark):
    rng = np.random.default_rng(3)
    left = mixed(3, 6)
    right = np.concatenate([left[::11], family(rng, int(left[7]), 40, 8), random_hashes(rng, 500)])
    cfg = load_config().dedup
    pairs, _ = near_pairs(_frame(spark, left), _frame(spark, right), cfg)
    assert set(_pairs(pairs)) == brute_force_pairs(left, right, 6)


def test_oversized_buckets_are_split_in_the_shuffle_not_skipped(spark):
    rng = np.random.default_rng(4)
    hashes = np.concatenate([family(rng, 0x0F0F_0000_1234_5678, 600, 3), random_hashes(rng, 400)])
    cfg = load_config(None, ["dedup.max_bucket_size=50"]).dedup
    pairs, figures = near_pairs(_frame(spark, hashes), None, cfg)
    found = _pairs(pairs)
    assert len(found) == len(set(found))
    assert set(found) == brute_force_pairs(hashes, None, 6)
    assert figures["oversized_buckets"] > 0
    assert figures["split_tables"] > 0


def _chain(n: int, seed: int) -> np.ndarray:
    """n distinct hashes, each one bit from the next and 2+ bits from every other (a
    self-avoiding walk on the 64-cube, in random bit order)."""
    rng = np.random.default_rng(seed)
    value = int(rng.integers(0, 2**63))
    chain, seen = [value], {value}
    while len(chain) < n:
        step = value ^ (1 << int(rng.integers(0, 64)))
        touching = [step ^ (1 << b) for b in range(64)]
        if step in seen or any(t in seen and t != value for t in touching):
            continue
        chain.append(step)
        seen.add(step)
        value = step
    return np.array(chain, np.uint64).view(np.int64)


def test_a_10000_chain_collapses_to_one_component_in_log_rounds(spark):
    hashes = _chain(10_000, 7)
    cfg = load_config(None, ["dedup.max_distance=1"]).dedup
    pairs, _ = near_pairs(_frame(spark, hashes), None, cfg)
    assert pairs.count() == len(brute_force_pairs(hashes, None, 1)) == 9_999
    components, rounds = connected_components(pairs, max_iterations=50)
    labels = components.select("component").distinct().collect()
    assert [r["component"] for r in labels] == [int(hashes.min())]
    assert components.count() == 10_000
    assert rounds <= 20  # log2(10,000) = 13.3; min-label propagation alone would take thousands


@pytest.mark.parametrize("as_hex", [False, True])
def test_exclusion_hashes_read_by_spark(spark, tmp_path, as_hex):
    values = [-1, 5, 5, 0x7FFF_FFFF_FFFF_FFFF]
    column = (
        pa.array([f"{v & (2**64 - 1):016x}" for v in values] + [None])
        if as_hex
        else pa.array(values + [None], pa.int64())
    )
    pq.write_table(pa.table({"phash": column}), tmp_path / "eval.parquet")
    frame = exclusion_hashes(spark, str(tmp_path / "eval.parquet"))
    assert sorted(r["node"] for r in frame.collect()) == [-1, 5, 0x7FFF_FFFF_FFFF_FFFF]
