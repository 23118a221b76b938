"""`curate download`: preselected/ (the candidates preselect kept) -> downloads/ (img2dataset
webdataset shards) + ledger/download/."""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.download.reasons import classify
from pipeline.download.runner import run_img2dataset
from pipeline.files import data_files, write_atomically
from pipeline.ledger import count_by_reason, ledger_table, read_ledger, write_ledger_part
from pipeline.runner import StageContext, StageResult

log = logging.getLogger(__name__)
STAGE = "download"


def write_download_input(candidates: Path, target: Path) -> tuple[int, list[str]]:
    """One parquet of all candidates in uid order (so shards are the same on every run).

    Returns the row count and the columns img2dataset should carry into its shard metadata.
    """
    files = data_files(candidates)
    dataset = ds.dataset(files, format="parquet")
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        with pq.ParquetWriter(tmp, dataset.schema) as writer:
            # Spark wrote the candidates range-partitioned by uid: file order is uid order.
            for fragment in dataset.get_fragments():
                table = fragment.to_table()
                rows += table.num_rows
                writer.write_table(table)

    write_atomically(target, write)
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


def write_shard_ledger(downloads: Path, ledger: Path, shard: str) -> tuple[int, int]:
    """Ledger rows for one shard's failures; returns (successes, failures)."""
    table = pq.read_table(
        downloads / f"{shard}.parquet", columns=["uid", "status", "error_message"]
    )
    failed = table.filter(pc.not_equal(table.column("status"), "success"))
    rows = failed.to_pylist()
    ledger_rows = ledger_table(
        [r["uid"] for r in rows],
        STAGE,
        [classify(r["status"], r["error_message"]) for r in rows],
        [(r["error_message"] or "")[:500] for r in rows],
    )
    write_ledger_part(ledger, shard, ledger_rows)
    return table.num_rows - failed.num_rows, failed.num_rows


def run(ctx: StageContext) -> StageResult:
    """Download every candidate with img2dataset; each failure becomes a ledger row."""
    cfg = ctx.config.download
    input_file = ctx.work / "input.parquet"
    # The candidates the stage before download kept (preselect: those the pool rules pass).
    rows_in, carried = write_download_input(ctx.folder(ctx.stage.needs or "preselect"), input_file)
    expected = math.ceil(rows_in / cfg.samples_per_shard)
    distributor = resolve_distributor(ctx.config)
    if distributor == "pyspark":
        ctx.spark  # noqa: B018 - img2dataset's pyspark distributor uses the active session
    downloads = ctx.output
    allowed = ctx.config.network.allowed_networks
    for attempt in range(2):
        if len(complete_shards(downloads)) >= expected:
            break
        if attempt:
            log.warning(
                "download: %d shards incomplete, running img2dataset again",
                expected - len(complete_shards(downloads)),
            )
        run_img2dataset(input_file, downloads, cfg, distributor, carried, allowed)
    shards = complete_shards(downloads)
    if len(shards) != expected:
        raise RuntimeError(
            f"download: {expected - len(shards)} of {expected} shards did not complete; run again to resume"
        )
    shutil.rmtree(ctx.ledger, ignore_errors=True)
    kept = 0
    for shard in shards:
        successes, _ = write_shard_ledger(downloads, ctx.ledger, shard)
        kept += successes
    by_reason = count_by_reason(read_ledger(ctx.ledger))
    return StageResult(rows_in, kept, by_reason, {"shards": len(shards)})
