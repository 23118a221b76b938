"""Shard writing throughput: MB/s of our shard writer (seek into the downloaded tars, copy the
image bytes, write tar + json + txt + parquet + stats, rename) vs a plain sequential copy of the
same image bytes into one file (the limit), on a finished demo run: after one untimed round of
both, the best of `--repeat` alternating rounds, each into fresh files. The whole `curate shard`
stage (Spark join, deterministic numbering, one task per shard) is reported beside it.

Run with `make bench-shard` (after `make demo`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage
from pipeline.shard.plan import number_samples, selected_samples
from pipeline.shard.writer import shard_batches
from pipeline.spark.session import get_spark


def sequential_copy(rows: list[dict], downloads: Path, target: Path) -> int:
    """Read every image's bytes from its source tar, in order, and append them to one file."""
    total, sources = 0, {}
    with open(target, "wb") as out:
        for row in rows:
            if row["shard"] not in sources:
                sources[row["shard"]] = open(downloads / f"{row['shard']}.tar", "rb")  # noqa: SIM115
            source = sources[row["shard"]]
            source.seek(row["offset"])
            total += out.write(source.read(row["image_bytes"]))
    for source in sources.values():
        source.close()
    return total


def write_all_shards(table: pa.Table, downloads: Path, digits: int, out: Path) -> None:
    """Our side: every shard of the numbered samples, as the stage's Spark tasks write them."""
    out.mkdir()
    list(shard_batches(iter(table.to_batches()), str(out), str(downloads), digits))


def timed_fresh(write: Callable[[Path], object], target: Path) -> float:
    """Seconds of one `write(target)`. The output is deleted after, untimed: no side is timed
    truncating an earlier output, or writing behind the other side's dirty pages."""
    seconds, _ = timed(lambda: write(target))
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--samples-per-shard", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds; the best counts")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    source = RunDir(args.run_dir.resolve())
    if not source.is_complete("select"):
        raise SystemExit(f"{source.root}: run `make demo` first (needs a complete select stage)")
    config = load_config(None, [f"shard.samples_per_shard={args.samples_per_shard}"])
    spark = get_spark(config.spark)
    work = Path(tempfile.mkdtemp(prefix="bench-shard-"))
    try:
        samples = selected_samples(
            spark.read.parquet(str(source.selection)),
            spark.read.parquet(str(source.annotations)),
            source.downloads,
        )
        numbered, n = number_samples(samples, config.shard)
        table = pa.Table.from_pylist([r.asDict() for r in numbered.collect()])
        rows = table.to_pylist()
        megabytes = sum(r["image_bytes"] for r in rows) / 1e6
        digits = max(1, math.ceil(math.log10(n)))
        copy = functools.partial(sequential_copy, rows, source.downloads)
        ours = functools.partial(write_all_shards, table, source.downloads, digits)
        # Both sides alike: one untimed round first (the downloads' page cache, and each side's
        # one-time costs), then the best of --repeat alternating rounds, each into fresh files.
        rounds = [
            (timed_fresh(copy, work / "copy.bin"), timed_fresh(ours, work / "shards"))
            for _ in range(args.repeat + 1)
        ][1:]
        copy_s, ours_s = min(c for c, _ in rounds), min(o for _, o in rounds)
        copy_rate = report_rate("sequential_copy", round(megabytes), copy_s, "MB/s")
        ours_rate = report_rate("shard_writer", round(megabytes), ours_s, "MB/s")
        report_ratio("shard_writer_vs_sequential_copy", ours_rate / copy_rate, ">=", 0.5)

        run = RunDir(work / "run")
        for name in ("selection", "annotations", "downloads"):
            shutil.copytree(source.root / name, run.root / name)
        shutil.copy(source.stats_file, run.stats_file)
        run.forget(("shard",))
        stage_s, entry = timed(lambda: run_stage("shard", run.root, config))
        report_rate(
            f"shard_stage_end_to_end_{entry['shards']}_shards", round(megabytes), stage_s, "MB/s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
