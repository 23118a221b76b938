"""The download stage's driver-side steps at scale, before and after the candidates stopped
funnelling through the driver: on a synthetic candidates table (files of at most
MAX_ROWS_PER_FILE rows, uid-sorted, as ingest writes them) and synthetic img2dataset output
(one parquet and one `_stats.json` per shard, a share of rows failed with img2dataset's
messages), no image downloaded.

Steps, each in a fresh Python process whose peak RSS (VmHWM, reset after the imports) is the
step's own:

- prepare, before: every candidate copied into one parquet on the driver (the code before #14,
  kept here as the baseline); after: `download_input`, the file list and the footers' row counts.
- reader, before: img2dataset's own Reader (which runs on the driver) cutting that one file
  into shards: it reads the whole file; after: the same Reader over the candidates folder, one
  bounded file at a time.
- ledger, before: every shard's parquet read on the driver, one ledger part per shard, the
  ledger read back to count reasons; after: the Spark job (`pipeline.download.plan`), Spark's
  start-up timed apart. The local JVM's peak (driver and executor in one) is polled from /proc.

Printed: seconds and peak driver RSS per step and size, and `ratio` lines: after/before driver
memory at the largest size, and each step's memory growth from the smallest to the largest size
(target <= 1.2: constant driver memory).

Run with `make bench-download-driver` (200k and 2M candidates); quick: `--sizes 2e4,2e5`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from benchmarks.common import report_ratio

# The failures a real crawl sees, in img2dataset's words (pipeline.download.reasons maps them).
MESSAGES = [
    "HTTP Error 404: Not Found",
    "HTTP Error 403: Forbidden",
    "<urlopen error [Errno -2] Name or service not known>",
    "The read operation timed out",
    "image too small",
    "Image decoding error: cannot identify image file",
    "Use of image disallowed by X-Robots-Tag directive",
]
FAILURE_SHARE = 0.35
STEPS = ("prepare_before", "prepare_after", "reader_before", "reader_after")
LEDGER_STEPS = ("ledger_before", "ledger_after")


def parse_count(text: str) -> int:
    return int(float(text))


# --- synthetic data ------------------------------------------------------------------------


def _hex_uids(rng: np.random.Generator, n: int) -> pa.Array:
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64).view(np.uint64)
    uids = np.char.add(
        np.char.zfill(np.char.mod("%x", raw[:, 0]), 16),
        np.char.zfill(np.char.mod("%x", raw[:, 1]), 16),
    )
    return pa.array(np.sort(uids).astype(object), pa.string())


def _texts(prefix: str, ids: np.ndarray, suffix: str) -> pa.Array:
    return pc.binary_join_element_wise(
        pa.scalar(prefix), pa.array(ids.astype(str).astype(object)), pa.scalar(suffix), ""
    )


def write_candidates(folder: Path, n: int, rows_per_file: int, seed: int = 0) -> None:
    """n candidates, uid-sorted, in files of `rows_per_file` rows named like Spark's parts."""
    rng = np.random.default_rng(seed)
    uids = _hex_uids(rng, n)
    ids = rng.integers(0, 10**9, size=n)
    table = pa.table(
        {
            "uid": uids,
            "url": _texts("https://images.example.com/photos/2026/", ids, "/large-original.jpg"),
            "caption": _texts("a photograph of a mountain lake at sunrise, number ", ids, ""),
            "lang": pa.array(["en"] * n, pa.string()),
            "lang_score": pa.array(rng.uniform(0.5, 1, n).astype(np.float32)),
        }
    )
    folder.mkdir(parents=True)
    for part, start in enumerate(range(0, n, rows_per_file)):
        pq.write_table(
            table.slice(start, rows_per_file), folder / f"part-{part:05d}-bench-c000.zstd.parquet"
        )


def write_shards(candidates: Path, downloads: Path, per_shard: int, seed: int = 1) -> int:
    """img2dataset-shaped output for every candidate: `{shard}.parquet` with its columns and
    a status per row, and `{shard}_stats.json`; returns the shard count."""
    rng = np.random.default_rng(seed)
    downloads.mkdir(parents=True)
    shard = 0
    for path in sorted(candidates.glob("*.parquet")):
        table = pq.read_table(path)
        for start in range(0, table.num_rows, per_shard):
            rows = table.slice(start, per_shard)
            n = rows.num_rows
            failed = rng.random(n) < FAILURE_SHARE
            which = rng.integers(0, len(MESSAGES), n)
            message = np.where(failed, np.array(MESSAGES, dtype=object)[which], None)
            size = pa.array(np.where(failed, 0, 256).astype(np.int32))
            out = rows.select(["url", "caption", "uid", "lang", "lang_score"])
            for name, column in (
                ("key", pa.array([f"{shard:05d}{i:04d}" for i in range(n)])),
                ("status", pa.array(np.where(failed, "failed_to_download", "success"))),
                ("error_message", pa.array(message, pa.string())),
                ("width", size),
                ("height", size),
                ("original_width", size),
                ("original_height", size),
                ("sha256", pa.array(np.where(failed, None, "0" * 64), pa.string())),
            ):
                out = out.append_column(name, column)
            pq.write_table(out, downloads / f"{shard:05d}.parquet")
            stats = {
                "count": n,
                "successes": int((~failed).sum()),
                "failed_to_download": int(failed.sum()),
            }
            (downloads / f"{shard:05d}_stats.json").write_text(json.dumps(stats))
            shard += 1
    return shard


# --- the steps, before and after ---------------------------------------------------------


def legacy_write_download_input(candidates: Path, target: Path) -> int:
    """The preparation before #14: every candidate fragment copied into one parquet."""
    from pipeline.files import data_files

    dataset = ds.dataset(data_files(candidates), format="parquet")
    rows = 0
    with pq.ParquetWriter(target, dataset.schema) as writer:
        for fragment in dataset.get_fragments():
            table = fragment.to_table()
            rows += table.num_rows
            writer.write_table(table)
    return rows


def legacy_ledger(downloads: Path, ledger: Path) -> tuple[int, dict[str, int]]:
    """The ledger before #14: each shard's parquet read on the driver, rows classified one by
    one in Python, then the whole ledger read back to count reasons."""
    from pipeline.download.reasons import classify
    from pipeline.ledger import count_by_reason, ledger_table, read_ledger, write_ledger_part

    kept = 0
    for stats in sorted(downloads.glob("*_stats.json")):
        shard = stats.name.split("_")[0]
        table = pq.read_table(
            downloads / f"{shard}.parquet", columns=["uid", "status", "error_message"]
        )
        failed = table.filter(pc.not_equal(table.column("status"), "success"))
        rows = failed.to_pylist()
        part = ledger_table(
            [r["uid"] for r in rows],
            "download",
            [classify(r["status"], r["error_message"]) for r in rows],
            [(r["error_message"] or "")[:500] for r in rows],
        )
        write_ledger_part(ledger, shard, part)
        kept += table.num_rows - failed.num_rows
    return kept, count_by_reason(read_ledger(ledger))


def _reader(url_list: Path, tmp: Path, per_shard: int) -> int:
    from img2dataset.reader import Reader

    tmp.mkdir(parents=True, exist_ok=True)
    reader = Reader(
        str(url_list),
        "parquet",
        "url",
        "caption",
        None,
        None,
        ["uid", "lang", "lang_score"],
        per_shard,
        set(),
        str(tmp),
    )
    shards = 0
    for _, arrow_file in reader:
        shards += 1
        os.unlink(arrow_file)  # img2dataset's workers delete each shard file when done with it
    return shards


def _import_everything() -> int:
    """Import what any step uses (img2dataset, pyspark, the stage), so that every step starts
    from the same floor; returns that floor, the peak RSS after the imports."""
    import img2dataset.reader  # noqa: F401

    import pipeline.download.plan
    import pipeline.download.stage
    import pipeline.ledger  # noqa: F401

    # The peak RSS a process starts with counts what it was forked from (Linux keeps it across
    # exec): reset the high-water mark to the current RSS, then measure from here.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_bytes("VmRSS")


def _status_bytes(field: str) -> int:
    """A /proc/self/status memory figure (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def run_step(step: str, work: Path, per_shard: int) -> dict:
    """One step, in this process; returns its seconds and figures (peak RSS, and the peak over
    the floor that the imports alone reach)."""
    floor = _import_everything()
    candidates, downloads = work / "candidates", work / "downloads"
    scratch = work / f"scratch-{step}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    figures: dict = {}
    start = time.perf_counter()
    if step == "prepare_before":
        figures["rows"] = legacy_write_download_input(candidates, scratch / "input.parquet")
    elif step == "prepare_after":
        from pipeline.download.stage import download_input

        source = download_input(candidates)
        figures.update(
            rows=source.rows_in, files=len(source.files), shards=source.shards(per_shard)
        )
    elif step == "reader_before":
        legacy_write_download_input(candidates, work / "input.parquet")
        start = time.perf_counter()  # the copy is prepare_before's; this times the Reader only
        figures["shards"] = _reader(work / "input.parquet", scratch / "tmp", per_shard)
    elif step == "reader_after":
        figures["shards"] = _reader(candidates, scratch / "tmp", per_shard)
    elif step == "ledger_before":
        figures["kept"], figures["dropped"] = legacy_ledger(downloads, scratch / "ledger")
    elif step == "ledger_after":
        figures.update(_spark_ledger(downloads, scratch, start))
        start = figures.pop("job_start")
    figures["seconds"] = time.perf_counter() - start
    figures["peak_rss"] = _status_bytes("VmHWM")
    figures["floor_rss"] = floor
    shutil.rmtree(scratch, ignore_errors=True)
    return figures


def _spark_ledger(downloads: Path, scratch: Path, started: float) -> dict:
    from benchmarks.bench_dedup import MemoryPoller
    from pipeline.config import load_config
    from pipeline.download.plan import write_ledger
    from pipeline.download.stage import complete_shards
    from pipeline.spark.session import get_spark

    poller = MemoryPoller()
    spark = get_spark(load_config(None, ["spark.ui=false"]).spark)
    job_start = time.perf_counter()
    files = [str(downloads / f"{s}.parquet") for s in complete_shards(downloads)]
    counts = write_ledger(spark, files, str(scratch / "ledger"))
    jvm = poller.read().get("jvm", 0)
    spark.stop()
    return {
        "kept": counts.successes,
        "dropped": counts.dropped,
        "spark_start_s": job_start - started,
        "jvm_peak_rss": jvm,
        "job_start": job_start,
    }


def child(step: str, work: Path, per_shard: int) -> dict:
    """Run `step` in a fresh Python process and return what it printed."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_download_driver",
            "--step",
            step,
            "--work",
            str(work),
            "--samples-per-shard",
            str(per_shard),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _over_floor(r: dict) -> int:
    return max(r["peak_rss"] - r["floor_rss"], 2**20)  # at least 1 MiB: RSS pages are coarse


def mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="2e5,2e6", help="candidate counts, comma-separated")
    parser.add_argument("--samples-per-shard", type=int, default=10_000)
    parser.add_argument("--step", choices=(*STEPS, *LEDGER_STEPS))
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.step:
        print(json.dumps(run_step(args.step, args.work, args.samples_per_shard)))
        return

    from pipeline.spark.decisions import MAX_ROWS_PER_FILE

    sizes = [parse_count(s) for s in args.sizes.split(",")]
    per_shard = args.samples_per_shard
    root = Path(tempfile.mkdtemp(prefix="bench-download-driver-"))
    results: dict[int, dict[str, dict]] = {}
    try:
        for n in sizes:
            work = root / str(n)
            work.mkdir()
            write_candidates(work / "candidates", n, MAX_ROWS_PER_FILE)
            shards = write_shards(work / "candidates", work / "downloads", per_shard)
            print(
                f"\nn={n:,}: {math.ceil(n / MAX_ROWS_PER_FILE)} candidate files of <="
                f" {MAX_ROWS_PER_FILE:,} rows, {shards} shards of <= {per_shard:,}"
            )
            results[n] = {}
            for step in (*STEPS, *LEDGER_STEPS):
                r = child(step, work, per_shard)
                results[n][step] = r
                extra = ""
                if "jvm_peak_rss" in r:
                    extra = (
                        f", Spark start {r['spark_start_s']:.1f} s (not included),"
                        f" local JVM (driver + executor) peak {mib(r['jvm_peak_rss'])}"
                    )
                print(
                    f"  {step:<15} {r['seconds']:>8.2f} s   driver python peak RSS"
                    f" {mib(r['peak_rss']):>10} ({mib(r['peak_rss'] - r['floor_rss'])} over"
                    f" the imports' {mib(r['floor_rss'])}){extra}"
                )
            before, after = results[n]["ledger_before"], results[n]["ledger_after"]
            assert (before["kept"], before["dropped"]) == (after["kept"], after["dropped"]), n
            assert results[n]["reader_before"]["shards"] <= results[n]["reader_after"]["shards"]
            shutil.rmtree(work)
        big, small = max(sizes), min(sizes)
        print()
        for name in ("prepare", "reader", "ledger"):
            for when in ("before", "after"):
                step = f"{name}_{when}"
                if len(sizes) > 1:
                    # Growth of the memory the step itself takes (over the imports' floor); after:
                    # constant, except the Reader's, which is bounded by MAX_ROWS_PER_FILE.
                    growth = _over_floor(results[big][step]) / _over_floor(results[small][step])
                    target = (">=", 0.0) if when == "before" or name == "reader" else ("<=", 1.2)
                    report_ratio(
                        f"{step}_driver_memory_growth_{big // small}x",
                        growth,
                        *(target if target[1] else (None, None)),
                    )
            b, a = results[big][f"{name}_before"], results[big][f"{name}_after"]
            report_ratio(
                f"{name}_driver_memory_after_over_before_at_{big:,}",
                _over_floor(a) / _over_floor(b),
            )
            report_ratio(
                f"{name}_seconds_after_over_before_at_{big:,}", a["seconds"] / b["seconds"]
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
