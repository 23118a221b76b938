"""Dedup's recall per planted kind of copy at several radii, on a finished demo run's
annotations (`make demo` first): the pHash pass with crop windows, rerun by `dedup_decisions` at
each radius with the run's other dedup settings at their defaults, scored against the web's
ground truth. The figures behind the default radius (docs/crop_robust_hashing.md).

Run with `make bench-dedup-radius` (BENCH_ARGS="--run-dir runs/demo --radii 4,5,6").
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.common import report_ratio, timed
from pipeline.config import load_config
from pipeline.dedup.plan import dedup_decisions
from pipeline.report.ground_truth import ALL, format_dedup_truth, score_dedup_against_truth
from pipeline.report.input_pairs import input_pairs
from pipeline.run_dir import RunDir
from pipeline.spark.session import get_spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", default="runs/demo")
    parser.add_argument("--radii", default="4,5,6")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run = RunDir(Path(args.run_dir).resolve())
    config = load_config(None, [])
    spark = get_spark(config.spark)
    annotations = spark.read.parquet(str(run.annotations))
    truth = pq.read_table(
        run.root / "web" / "ground_truth.parquet", columns=["gt_id", "noise", "duplicate_of"]
    )
    pairs = input_pairs(run)
    recall = {}
    for radius in (int(r) for r in args.radii.split(",")):
        cfg = dataclasses.replace(config.dedup, max_distance=radius)
        seconds, rows = timed(
            lambda cfg=cfg: (
                dedup_decisions(spark, annotations, [], cfg)[0]
                .select("uid", "reason", "detail")
                .toArrow()
            )
        )
        dropped = rows.filter(pc.is_valid(rows.column("reason")))
        kept = rows.filter(pc.is_null(rows.column("reason"))).column("uid").to_pylist()
        result = score_dedup_against_truth(truth, pairs, dropped, kept)
        print(f"radius {radius}: {dropped.num_rows:,} drops in {seconds:.1f} s")
        print(format_dedup_truth(result))
        recall[radius] = next(k.recall for k in result.kinds if k.kind == ALL)
    for radius, value in recall.items():
        report_ratio(f"dedup_recall_radius_{radius}", value)


if __name__ == "__main__":
    main()
