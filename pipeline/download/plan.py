"""The download stage's Spark job: img2dataset's shard parquet files in, the download ledger out.

Each complete shard's parquet (one row per candidate, with img2dataset's `status` and
`error_message`) is read by the executors; failed rows become ledger rows through an Arrow batch
function (`pipeline.download.failures`). The driver sees only counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline.download.failures import LedgerCounts, ledger_batches
from pipeline.spark.arrow import map_batches
from schemas.tables import LEDGER

# img2dataset's per-row status of a downloaded, resized and written image.
SUCCESS = "success"


def shard_rows(spark: SparkSession, files: Sequence[str]) -> DataFrame:
    """The rows of the given shard parquet files (uid, status, error_message)."""
    return spark.read.parquet(*files).select("uid", "status", "error_message")


def _succeeded() -> F.Column:
    # A null status is a failure, never a silent drop: `status != 'success'` would be null there.
    return F.coalesce(F.col("status") == SUCCESS, F.lit(False))


def ledger_frame(rows: DataFrame) -> DataFrame:
    """One ledger row per failed shard row, its reason classified over Arrow batches."""
    return map_batches(rows.filter(~_succeeded()), ledger_batches, LEDGER)


def write_ledger(spark: SparkSession, files: Sequence[str], target: str) -> LedgerCounts:
    """Write the ledger of `files` to `target` (sorted by uid, so reruns write the same rows) and
    return the counts, read back from the shards and from what was written."""
    rows = shard_rows(spark, files)
    ledger_frame(rows).orderBy("uid", "reason").write.mode("overwrite").parquet(target)
    totals = rows.agg(
        F.count(F.lit(1)).alias("rows"), F.sum(_succeeded().cast("long")).alias("successes")
    ).first()
    by_reason = spark.read.parquet(target).groupBy("reason").count().collect()
    return LedgerCounts(
        rows=int(totals["rows"]),
        successes=int(totals["successes"] or 0),
        dropped={r["reason"]: int(r["count"]) for r in sorted(by_reason, key=lambda r: r[0])},
    )
