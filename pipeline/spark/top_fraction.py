"""The top-fraction threshold of a score column of a DataFrame, by either rule of
pipeline/select/top_fraction.py: counts and at most 65,536 digit counts a pass reach the driver,
never the scores."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import FloatType

from pipeline.select.top_fraction import (
    Cut,
    digit_counts,
    float32_at_least,
    interpolated_quantile,
    key_at_rank,
    key_value,
    orderable_keys,
    reference_cut,
)
from pipeline.spark.arrow import map_batches
from pipeline.spark.columns import finite

_COUNTS = pa.schema([pa.field("digit", pa.int64()), pa.field("n", pa.int64())])


def _count_batches(
    batches: Iterator[pa.RecordBatch], prefix: int, level: int, float32: bool
) -> Iterator[pa.RecordBatch]:
    dtype = pa.float32() if float32 else pa.float64()
    for batch in batches:
        # The frame holds no null or NaN score (`_ranked` filtered them in Spark).
        values = pc.cast(batch.column(0), dtype).to_numpy(zero_copy_only=False)
        keys = orderable_keys(values)
        counts = digit_counts(keys, prefix, level, 32 if float32 else 64)
        yield pa.record_batch(
            [pa.array(list(counts), pa.int64()), pa.array(list(counts.values()), pa.int64())],
            schema=_COUNTS,
        )


def _ranked(frame: DataFrame, column: str) -> DataFrame:
    value = F.col(column).cast("double")
    return frame.select(column).filter(value.isNotNull() & ~F.isnan(value))


def value_at_descending_rank(frame: DataFrame, column: str, rank: int, ranked: int) -> float:
    """The value at 0-based descending `rank` among the `ranked` non-null, non-NaN scores,
    exactly (float32 columns in float32)."""
    float32 = isinstance(frame.schema[column].dataType, FloatType)
    values = _ranked(frame, column)

    def count(prefix: int, level: int) -> dict[int, int]:
        fn = functools.partial(_count_batches, prefix=prefix, level=level, float32=float32)
        rows = map_batches(values, fn, _COUNTS).groupBy("digit").agg(F.sum("n").alias("n"))
        return {r["digit"]: r["n"] for r in rows.collect()}

    key = key_at_rank(count, ranked - 1 - rank, 32 if float32 else 64)
    return key_value(key, float32)


def top_fraction_cut(
    frame: DataFrame, column: str, fraction: float, rule: str, denominator: str
) -> Cut:
    """The threshold that keeps the top `fraction` of `frame` by `column` (keep >= threshold)."""
    value = F.col(column).cast("double")
    ranked_row = value.isNotNull() & ~F.isnan(value)
    infinite = (value == F.lit(float("inf"))) | (value == F.lit(float("-inf")))
    # One job counts all rows, the ranked ones (incl. +-inf, as the reference's sort has them)
    # and the finite ones (the interpolated percentile's).
    row = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count(F.when(ranked_row, 1)).alias("ranked"),
        F.count(F.when(ranked_row & ~infinite, 1)).alias("finite"),
    ).first()
    rows, ranked, n_finite = int(row["rows"]), int(row["ranked"]), int(row["finite"])
    if rule == "reference":
        return reference_cut(
            fraction,
            denominator,
            rows,
            ranked,
            lambda k: value_at_descending_rank(frame, column, k, ranked),
        )
    scored = finite(frame, column)
    q = interpolated_quantile(fraction, denominator, rows, n_finite)
    t = scored.agg(F.percentile(F.col(column), F.lit(q)).alias("t")).first()
    threshold = None if t is None or t["t"] is None else float(t["t"])
    if threshold is not None and isinstance(frame.schema[column].dataType, FloatType):
        threshold = float32_at_least(threshold)
    summary = {"rule": "interpolated", "denominator": denominator, "quantile": q}
    return Cut(threshold, {**summary, "threshold": threshold})
