"""`curate download`: preselected/ (the candidates preselect kept) -> downloads/ (img2dataset
webdataset shards) + ledger/download/."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.download import plan
from pipeline.download.failures import LedgerCounts, ledger_counts, read_shard_counts
from pipeline.download.robots import robots_folder
from pipeline.download.runner import run_img2dataset
from pipeline.files import data_files
from pipeline.runner import StageContext, StageResult
from pipeline.storage import StoragePath, arrow_filesystem, as_path, refresh

log = logging.getLogger(__name__)
STAGE = "download"


@dataclass(frozen=True)
class DownloadInput:
    """The candidate files img2dataset reads as they are, in uid order, and their row counts
    (from the parquet footers: the driver never reads a candidate row)."""

    folder: StoragePath
    files: tuple[str, ...]
    rows: tuple[int, ...]
    carried: tuple[str, ...]

    @property
    def rows_in(self) -> int:
        return sum(self.rows)

    def shards(self, samples_per_shard: int) -> int:
        """The shards img2dataset makes: it cuts each input file into shards of its own (the
        last one of each file partial), numbering them on across files."""
        return sum(math.ceil(n / samples_per_shard) for n in self.rows)


def download_input(candidates: StoragePath) -> DownloadInput:
    """The candidates folder as img2dataset's input, with the columns its shards should carry.

    Spark wrote the candidates range-partitioned and sorted by uid, in files of bounded size
    (`pipeline.spark.decisions.MAX_ROWS_PER_FILE`), so the sorted file names are uid order and
    img2dataset's shards are the same on every run; it reads one file at a time.
    """
    files = data_files(candidates)
    # img2dataset reads every `*.parquet` of the folder; any it would read that is not one of
    # the candidates' data files (a stray temporary) would change the shards.
    seen = sorted(str(p) for p in candidates.glob("*.parquet"))
    if seen != files:
        stray = sorted(set(seen) - set(files))
        raise RuntimeError(
            f"download: {candidates} holds parquet files that are not candidates: {stray}"
        )
    rows = tuple(_footer(f).num_rows for f in files)
    names = _footer(files[0]).schema.to_arrow_schema().names if files else []
    carried = tuple(n for n in names if n not in ("url", "caption"))
    return DownloadInput(candidates, tuple(files), rows, carried)


def resolve_distributor(config: Config) -> str:
    """multiprocessing locally; img2dataset's pyspark distributor on a cluster master."""
    if config.download.distributor != "auto":
        return config.download.distributor
    from pipeline.spark.session import is_cluster, resolve_master

    return "pyspark" if is_cluster(resolve_master(config.spark)) else "multiprocessing"


def _footer(path: str) -> pq.FileMetaData:
    """A parquet file's footer (row count, schema), through the filesystem of its location."""
    fs, inner = arrow_filesystem(as_path(path))
    return pq.read_metadata(inner, filesystem=fs)


def complete_shards(downloads: StoragePath) -> list[str]:
    """Shard ids (e.g. '00000') whose `_stats.json` exists: img2dataset writes it last."""
    refresh(downloads)
    return sorted(p.name.split("_")[0] for p in downloads.glob("*_stats.json"))


def run(ctx: StageContext) -> StageResult:
    """Download every candidate with img2dataset; each failure becomes a ledger row."""
    cfg = ctx.config.download
    # The candidates the stage before download kept (preselect: those the pool rules pass).
    source = download_input(ctx.folder(ctx.stage.needs or "preselect"))
    expected = source.shards(cfg.samples_per_shard)
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
        run_img2dataset(
            source.folder,
            downloads,
            cfg,
            distributor,
            list(source.carried),
            allowed,
            ctx.ledger,
            robots_folder(ctx.work),
        )
    shards = complete_shards(downloads)
    if len(shards) != expected:
        raise RuntimeError(
            f"download: {expected - len(shards)} of {expected} shards did not complete; run again to resume"
        )
    counts = write_ledger(ctx, [str(downloads / f"{s}.parquet") for s in shards])
    if counts.rows != source.rows_in:
        # img2dataset writes one shard row per candidate: anything else is lost or duplicated.
        raise RuntimeError(
            f"download: {source.rows_in} candidates but {counts.rows} rows in the shards"
        )
    return StageResult(source.rows_in, counts.successes, counts.dropped, {"shards": len(shards)})


def write_ledger(ctx: StageContext, shard_files: list[str]) -> LedgerCounts:
    """The download ledger's counts: read from the footers of the parts the download processes
    wrote; a Spark job writes the parts of shards that have none (a kill between a shard and its
    part, a run resumed from an older version), one part per shard, each written whole."""
    by_reason: Counter[str | None] = Counter()
    missing = []
    for path in shard_files:
        counts = read_shard_counts(ctx.ledger, as_path(path).name.removesuffix(".parquet"))
        if counts is None:
            missing.append(path)
        else:
            by_reason.update(counts)
    if missing:
        log.info("download: writing the ledger parts of %d shards", len(missing))
        job = plan.write_ledger(ctx.spark, missing, str(ctx.ledger))
        by_reason.update({None: job.successes, **job.dropped})
    return ledger_counts(by_reason)
