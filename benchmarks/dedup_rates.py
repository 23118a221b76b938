"""The in-memory search's unit costs, measured: seconds a hash spends in one in-memory table (key,
sort, gathers, group bounds) and seconds a candidate pair costs (XOR, popcount, compare), the
constants `pipeline/dedup/bands.py` plans with (SORT_ROW_S, PAIR_S).

Buckets of uniform hashes of the size the planner expects at 1M and 10M hashes (radius 6 and 4)
are searched in this process with the in-memory layout forced to k + 1 and k + 2 blocks; each run
gives (rows x tables, candidates, seconds), and a least-squares fit through the origin over all
runs gives the two rates. Printed beside the constants in bands.py, with each run's time as the
fitted rates predict it. No Spark: the shuffle's own rate (SHUFFLE_ROW_S) is what `make
bench-dedup` measures around it.

Run: `python -m benchmarks.dedup_rates` (about a minute on one core).
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass

import numpy as np

from pipeline.dedup import bands, verify
from pipeline.dedup.bands import FULL, Layout, plan_index
from pipeline.logs import setup_logging

log = logging.getLogger("benchmarks.dedup_rates")
# Rows searched a run: buckets of the planned size, as many as fill this.
ROWS = 400_000


@dataclass(frozen=True)
class Run:
    n: int
    k: int
    blocks: int
    bucket: int
    row_tables: int  # rows x in-memory tables (each row sorted once a table)
    candidates: int
    seconds: float


def buckets(rng: np.random.Generator, bucket: int, mask: int) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, group starts): buckets of `bucket` uniform hashes, each agreeing on `mask`."""
    count = max(1, ROWS // bucket)
    nodes = rng.integers(0, 2**63, count * bucket, dtype=np.int64).view(np.uint64)
    nodes = nodes & np.uint64(FULL & ~mask)
    starts = np.arange(0, count * bucket + 1, bucket)
    return nodes, starts


def measure(n: int, k: int, blocks: int, seed: int = 0) -> Run:
    """Search buckets of the size plan_index expects for n hashes, in-memory layout forced to
    `blocks` blocks at the first level (the planner's choice below it)."""
    plan = plan_index(n, k, 1_000_000)
    mask = plan.shuffle.masks[0]
    bucket = round(plan.bucket_size)
    nodes, starts = buckets(np.random.default_rng(seed), bucket, mask)
    free = FULL & ~mask
    chosen = verify.group_cost

    def forced(size: int, free_bits: int, kk: int, depth: int = 0) -> tuple[float, int]:
        return (0.0, blocks) if depth == 0 else chosen(size, free_bits, kk, depth)

    verify.group_cost = forced
    try:
        found = verify.Found(k, False, 1_000_000)
        started = time.perf_counter()
        verify.search_groups(nodes, np.zeros(0, np.int8), starts, free, (), found)
        seconds = time.perf_counter() - started
    finally:
        verify.group_cost = chosen
    tables = Layout(free, blocks, k).tables
    return Run(
        n,
        k,
        blocks,
        bucket,
        len(nodes) * tables,
        found.stats.get(verify.STAT_CANDIDATES, 0),
        seconds,
    )


def fit(runs: list[Run]) -> tuple[float, float]:
    """(seconds a row-table, seconds a candidate): least squares through the origin."""
    design = np.array([[r.row_tables, r.candidates] for r in runs], float)
    seconds = np.array([r.seconds for r in runs])
    # Relative errors matter, not absolute: weight each run by 1 / its time.
    weights = 1 / seconds
    solution, *_ = np.linalg.lstsq(design * weights[:, None], seconds * weights, rcond=None)
    return float(solution[0]), float(solution[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="index sizes whose buckets are searched")
    args = parser.parse_args()
    setup_logging()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    runs = []
    for k in (6, 4):
        for n in sizes:
            for blocks in (k + 1, k + 2):
                run = measure(n, k, blocks)
                log.info("n=%s k=%d blocks=%d: %.2f s", f"{n:,}", k, blocks, run.seconds)
                runs.append(run)
    row_s, pair_s = fit(runs)
    print(f"fitted: {row_s:.3e} s a row-table (bands.SORT_ROW_S = {bands.SORT_ROW_S:.3e})")
    print(f"fitted: {pair_s:.3e} s a candidate pair (bands.PAIR_S = {bands.PAIR_S:.3e})")
    print("n           k  blocks  bucket   row-tables   candidates  seconds  fitted  constants")
    for r in runs:
        by_fit = r.row_tables * row_s + r.candidates * pair_s
        by_constants = r.row_tables * bands.SORT_ROW_S + r.candidates * bands.PAIR_S
        print(
            f"{r.n:<11,} {r.k}  {r.blocks:>6}  {r.bucket:>6}  {r.row_tables:>11,}"
            f"  {r.candidates:>11,}  {r.seconds:>7.2f}  {by_fit:>6.2f}  {by_constants:>9.2f}"
        )


if __name__ == "__main__":
    main()
