"""`curate download`: candidates/ -> downloads/ (img2dataset webdataset shards) + ledger/download/."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.download.reasons import classify
from pipeline.download.runner import run_img2dataset
from pipeline.ledger import count_by_reason, ledger_table, read_ledger, write_ledger_part
from pipeline.run_dir import RunDir
from pipeline.stats import record_stage

log = logging.getLogger(__name__)
STAGE = "download"


def _candidate_files(run: RunDir) -> list[str]:
    return sorted(
        str(p) for p in run.candidates.glob("*.parquet") if not p.name.startswith((".", "_"))
    )


def write_download_input(run: RunDir, target: Path) -> tuple[int, list[str]]:
    """One parquet of all candidates in uid order (so shards are the same on every run).

    Returns the row count and the columns img2dataset should carry into its shard metadata.
    """
    files = _candidate_files(run)
    dataset = ds.dataset(files, format="parquet")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    rows = 0
    with pq.ParquetWriter(tmp, dataset.schema) as writer:
        # Spark wrote the candidates range-partitioned by uid: file order is uid order.
        for fragment in dataset.get_fragments():
            table = fragment.to_table()
            rows += table.num_rows
            writer.write_table(table)
    tmp.replace(target)
    carried = [n for n in dataset.schema.names if n not in ("url", "caption")]
    return rows, carried


def resolve_distributor(config: Config) -> str:
    """multiprocessing locally; img2dataset's pyspark distributor on a cluster master."""
    if config.download.distributor != "auto":
        return config.download.distributor
    from pipeline.spark.session import is_cluster, resolve_master

    return "pyspark" if is_cluster(resolve_master(config.spark)) else "multiprocessing"


def complete_shards(downloads: Path) -> list[str]:
    """Shard ids (e.g. '00000') whose `_stats.json` exists: img2dataset writes it last."""
    return sorted(p.name.split("_")[0] for p in downloads.glob("*_stats.json"))


def write_shard_ledger(run: RunDir, shard: str) -> tuple[int, int]:
    """Ledger rows for one shard's failures; returns (successes, failures)."""
    table = pq.read_table(
        run.downloads / f"{shard}.parquet", columns=["uid", "status", "error_message"]
    )
    failed = table.filter(pc.not_equal(table.column("status"), "success"))
    rows = failed.to_pylist()
    ledger = ledger_table(
        [r["uid"] for r in rows],
        STAGE,
        [classify(r["status"], r["error_message"]) for r in rows],
        [(r["error_message"] or "")[:500] for r in rows],
    )
    write_ledger_part(run.ledger_for(STAGE), shard, ledger)
    return table.num_rows - failed.num_rows, failed.num_rows


def run_download(run_dir: Path | str, config: Config) -> dict[str, Any]:
    """Run the download stage; returns its stats.json entry. Does nothing if already complete."""
    run = RunDir(Path(run_dir).resolve())
    done = run.completed_entry(STAGE)
    if done is not None:
        return done
    run.require("ingest", "ingest")
    started = time.monotonic()
    cfg = config.download
    work = run.work / STAGE
    input_file = work / "input.parquet"
    rows_in, carried = write_download_input(run, input_file)
    expected = math.ceil(rows_in / cfg.samples_per_shard)
    distributor = resolve_distributor(config)
    if distributor == "pyspark":
        from pipeline.spark.session import get_spark

        get_spark(config.spark)  # img2dataset's pyspark distributor uses the active session
    run.downloads.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        if len(complete_shards(run.downloads)) >= expected:
            break
        if attempt:
            log.warning(
                "download: %d shards incomplete, running img2dataset again",
                expected - len(complete_shards(run.downloads)),
            )
        run_img2dataset(input_file, run.downloads, cfg, distributor, carried)
    shards = complete_shards(run.downloads)
    if len(shards) != expected:
        raise RuntimeError(
            f"download: {expected - len(shards)} of {expected} shards did not complete; run again to resume"
        )
    shutil.rmtree(run.ledger_for(STAGE), ignore_errors=True)
    kept = 0
    for shard in shards:
        successes, _ = write_shard_ledger(run, shard)
        kept += successes
    by_reason = count_by_reason(read_ledger(run.ledger_for(STAGE)))
    entry = record_stage(
        run, STAGE, rows_in, kept, by_reason, time.monotonic() - started, {"shards": len(shards)}
    )
    shutil.rmtree(work, ignore_errors=True)
    log.info("download: %d candidates, %d downloaded, %d dropped", rows_in, kept, rows_in - kept)
    return entry
