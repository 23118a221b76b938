"""A comparison's trainings one after another against `compare.parallel` at once: the demo's
model and budget (`pipeline/demo/compare.py`), on a finished demo run's raw downloads, seeds 0 to
K - 1, each evaluated on the demo's eval set as the comparison evaluates it.

Reported: wall seconds of the K trainings each way, `ratio compare_parallel_speedup` (one after
another over at once), and whether both ways trained the same models (final loss and zero-shot
top-1 of every seed). Run with `make bench-compare-parallel` (`make demo` first; BENCH_ARGS=
"--run-dir DIR --trainings K --parallel P"); about 6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
from pathlib import Path

from benchmarks.common import report_ratio, timed
from pipeline.compare.trainings import Training, run_trainings
from pipeline.config import load_config
from pipeline.cores import usable_cores
from pipeline.demo.compare import demo_train_config
from pipeline.logs import setup_logging
from pipeline.run_dir import RunDir

log = logging.getLogger("benchmarks.bench_compare_parallel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/demo")
    parser.add_argument("--trainings", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    setup_logging()
    run = RunDir(Path(args.run_dir).resolve())
    eval_dir = run.root / "web" / "eval"
    if not (eval_dir / "eval.parquet").is_file() or not run.downloads.is_dir():
        raise SystemExit(f"{run.root}: no finished demo run (make demo first)")
    config = demo_train_config(load_config(), eval_dir)
    seconds, results = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-compare-parallel-") as tmp:
        for parallel in (1, args.parallel):
            trainings = [
                Training(
                    "bench",
                    run.downloads,
                    "bench",
                    config.replace(train=dataclasses.replace(config.train, seed=seed)),
                    Path(tmp) / f"parallel{parallel}" / f"seed{seed}",
                )
                for seed in range(args.trainings)
            ]
            log.info("%d trainings, %d at once", len(trainings), parallel)
            seconds[parallel], results[parallel] = timed(
                lambda t=trainings, p=parallel: run_trainings(t, p)
            )
    one, many = results[1], results[args.parallel]
    print(
        f"trainings: {args.trainings} x {config.train.model}, {config.train.steps} steps x "
        f"{config.train.batch_size}, on {run.downloads} ({usable_cores()} usable cores)"
    )
    for parallel in (1, args.parallel):
        print(
            f"time parallel={parallel}: {seconds[parallel]:.1f} s "
            f"({seconds[parallel] / args.trainings:.1f} s a training)"
        )
    same = all(
        (a.get("loss"), a.get("metrics", {}).get("zeroshot_top1"))
        == (b.get("loss"), b.get("metrics", {}).get("zeroshot_top1"))
        for a, b in zip(one, many, strict=True)
    )
    print(f"same models both ways (final loss and top-1 of every seed): {same}")
    report_ratio("compare_parallel_speedup", seconds[1] / seconds[args.parallel])


if __name__ == "__main__":
    main()
