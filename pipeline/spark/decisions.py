"""Write a stage's decisions: one DataFrame with a `reason` column (null = kept) becomes the
stage's output folder (kept rows) and its ledger folder (dropped rows), each written to a
temporary folder and moved into place, with the counts read back from what was written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline.faults import kill_point
from pipeline.files import replace_dir
from pipeline.run_dir import RunDir
from pipeline.spark.arrow import to_spark_schema
from pipeline.storage import StoragePath, remove_tree, spark_url
from schemas.tables import LEDGER

# Output files hold at most this many rows: whoever reads one file whole (img2dataset reads each
# candidates file into memory on the driver to cut it into shards) then needs memory bounded by
# this, not by the input. ~250k candidates are ~50 MB of Arrow.
MAX_ROWS_PER_FILE = 250_000


@dataclass(frozen=True)
class Decisions:
    """What every stage plan returns (`plan.decide(inputs, config)`): each input row once, with
    `reason` null when kept (else a declared reason code) and `detail`, plus the figures that go
    into the stage's stats.json entry."""

    frame: DataFrame
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    """What a stage wrote: rows in, rows kept and ledger rows per reason (from disk)."""

    rows_in: int
    rows_kept: int
    dropped: dict[str, int]


def write_decisions(
    spark: SparkSession,
    decisions: DataFrame,
    run: RunDir,
    stage: str,
    output: StoragePath,
    kept_columns: Sequence[str],
    sort_by: str = "uid",
    dropped: tuple[StoragePath, Sequence[str | Column]] | None = None,
) -> Written:
    """Materialise `decisions` once, then write kept rows to `output` and dropped rows to the
    stage's ledger, both sorted by `sort_by` (so reruns write the same files); `dropped`
    (folder, columns): the dropped rows' columns to that folder too (ingest's dropped_inputs)."""
    work = run.work / stage
    remove_tree(work)
    decisions.write.mode("overwrite").parquet(spark_url(work / "decisions"))
    spark.catalog.clearCache()
    decided = spark.read.parquet(spark_url(work / "decisions"))
    # Sorted output is range-partitioned: file name order is `sort_by` order, and a partition
    # over the bound rolls into more files (c000, c001 ...) that keep that order.
    decided.filter(F.col("reason").isNull()).select(*kept_columns).orderBy(sort_by).write.mode(
        "overwrite"
    ).option("maxRecordsPerFile", MAX_ROWS_PER_FILE).parquet(spark_url(work / "kept"))
    decided.filter(F.col("reason").isNotNull()).select(
        "uid", F.lit(stage).alias("stage"), "reason", "detail"
    ).orderBy("uid", "reason").write.mode("overwrite").parquet(spark_url(work / "ledger"))
    if dropped is not None:
        decided.filter(F.col("reason").isNotNull()).select(*dropped[1]).orderBy(
            "uid", "reason"
        ).write.mode("overwrite").parquet(spark_url(work / "dropped"))
    rows_in = decided.count()
    kill_point(stage, "decisions_written")
    if dropped is not None:
        replace_dir(work / "dropped", dropped[0])
    replace_dir(work / "kept", output)
    kill_point(stage, "output_moved")
    replace_dir(work / "ledger", run.ledger_for(stage))
    rows_kept = spark.read.parquet(spark_url(output)).count()
    dropped = count_by_reason(spark, run.ledger_for(stage))
    remove_tree(work)
    return Written(rows_in, rows_kept, dropped)


def count_by_reason(spark: SparkSession, ledger: StoragePath) -> dict[str, int]:
    """Ledger rows per reason code, sorted by code, counted by Spark (the driver gets one row a
    code, never the ledger)."""
    # An explicit schema: a ledger with no row may be a folder with no part file to infer from.
    frame = spark.read.schema(to_spark_schema(LEDGER)).parquet(spark_url(ledger))
    counts = frame.groupBy("reason").count().collect()
    return {r["reason"]: int(r["count"]) for r in sorted(counts, key=lambda r: r["reason"])}
