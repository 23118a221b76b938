"""Column predicates shared by the Spark plans."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def finite(frame: DataFrame, column: str) -> DataFrame:
    """The rows whose `column` is a finite number: not null, not NaN, not infinite. Spark orders
    NaN above every value, so a quantile over a column with NaN in it moves by their count."""
    value = F.col(column).cast("double")
    return frame.filter(
        value.isNotNull()
        & ~F.isnan(value)
        & (value != F.lit(float("inf")))
        & (value != F.lit(float("-inf")))
    )
