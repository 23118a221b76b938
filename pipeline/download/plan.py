"""The download stage's Spark job for complete shards that have no ledger part (the download
processes write the parts as they go): the shards' parquet files in, their ledger parts out.

One row per shard path; each task reads its shards' parquet (uid, status, error_message) through
the filesystem API, writes each shard's ledger part (`ledger/download/<shard>.parquet`) and
reports rows per reason (`pipeline.download.failures`). The driver sees the shard paths and one
count per reason code, never a candidate row.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipeline.download.failures import (
    SHARD_COUNTS,
    LedgerCounts,
    ledger_counts,
    write_shard_ledgers,
)
from pipeline.spark.arrow import map_batches


def write_ledger(spark: SparkSession, files: Sequence[str], ledger: str) -> LedgerCounts:
    """Write the ledger parts of the shard parquet `files` (paths or URLs) under `ledger` and
    return the counts (read back from the shards by the tasks)."""
    # A few shards a task: enough tasks to keep every core busy, no task per tiny shard list.
    partitions = max(1, min(len(files), spark.sparkContext.defaultParallelism * 4))
    paths = spark.createDataFrame([(f,) for f in files], "path string").repartition(partitions)
    counts = map_batches(paths, functools.partial(write_shard_ledgers, ledger), SHARD_COUNTS)
    totals = counts.groupBy("reason").agg(F.sum("rows").alias("rows")).collect()
    return ledger_counts({r["reason"]: int(r["rows"]) for r in totals})
