"""Near-duplicate search at 100k hashes with planted near duplicates: our band index (Spark join
on bands, verified distances) vs exhaustive all-pairs comparison at the same radius, which must
find the same pairs; and the index's cost at 10k vs 100k hashes (should grow near-linearly).

Run with `make bench-dedup`.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.dedup.plan import near_pairs
from pipeline.spark.session import get_spark


def make_hashes(n: int, planted: int, max_distance: int, seed: int = 0) -> np.ndarray:
    """n distinct-ish random 64-bit hashes (signed), the last `planted` ones each a copy of an
    earlier hash with 1..max_distance bits flipped."""
    rng = np.random.default_rng(seed)
    base = rng.integers(
        np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=n - planted, dtype=np.int64
    )
    copies = base[rng.integers(0, len(base), size=planted)].copy()
    for i in range(planted):
        for bit in rng.choice(64, size=int(rng.integers(1, max_distance + 1)), replace=False):
            copies[i] ^= np.int64(-(1 << 63)) if bit == 63 else np.int64(1 << int(bit))
    return np.unique(np.concatenate([base, copies]))


def exhaustive_pairs(
    hashes: np.ndarray, max_distance: int, block: int = 2048
) -> set[tuple[int, int]]:
    """Every pair compared: XOR and popcount of each block of rows against all later hashes."""
    found = set()
    values = hashes.view(np.uint64)
    for start in range(0, len(values), block):
        rows = values[start : start + block]
        distances = np.bitwise_count(rows[:, None] ^ values[None, start:])
        i, j = np.nonzero(distances <= max_distance)
        keep = j > i
        for a, b in zip(i[keep] + start, j[keep] + start, strict=True):
            x, y = int(hashes[a]), int(hashes[b])
            found.add((min(x, y), max(x, y)))
    return found


def index_pairs(spark, hashes: np.ndarray, cfg) -> set[tuple[int, int]]:
    nodes = spark.createDataFrame([(int(h),) for h in hashes], "node long").repartition(8).cache()
    nodes.count()
    seconds, pairs = timed(
        lambda: {(r["a"], r["b"]) for r in near_pairs(nodes, None, cfg)[0].collect()}
    )
    nodes.unpersist()
    return seconds, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hashes", type=int, default=100_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = load_config()
    cfg = config.dedup
    spark = get_spark(config.spark)
    small, large = args.hashes // 10, args.hashes
    hashes = {n: make_hashes(n, n // 100, cfg.max_distance) for n in (small, large)}
    index_pairs(spark, hashes[small], cfg)  # warm-up
    t_small, _ = index_pairs(spark, hashes[small], cfg)
    t_large, ours = index_pairs(spark, hashes[large], cfg)
    report_rate(f"index_{small}", small, t_small, "hashes/s")
    report_rate(f"index_{large}", large, t_large, "hashes/s")
    t_all_small, _ = timed(lambda: exhaustive_pairs(hashes[small], cfg.max_distance))
    t_all, truth = timed(lambda: exhaustive_pairs(hashes[large], cfg.max_distance))
    report_rate(f"exhaustive_{small}", small, t_all_small, "hashes/s")
    report_rate(f"exhaustive_{large}", large, t_all, "hashes/s")
    print(f"pairs found: index {len(ours)}, exhaustive {len(truth)}, identical {ours == truth}")
    report_ratio("dedup_index_vs_exhaustive", t_all / t_large, ">=", 50)
    report_ratio("dedup_index_cost_growth_10x", t_large / t_small, "<=", 15)
    report_ratio("dedup_exhaustive_cost_growth_10x", t_all / t_all_small)
    # Projection, not a measurement: each side grown by its own measured 10x factor.
    projected = (t_all * t_all / t_all_small) / (t_large * t_large / t_small)
    report_ratio(f"dedup_index_vs_exhaustive_projected_at_{10 * large}", projected)


if __name__ == "__main__":
    main()
