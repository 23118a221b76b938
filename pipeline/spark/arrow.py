"""Arrow <-> Spark schema mapping and the `mapInArrow` helper: stage logic stays in plain functions
over Arrow batches, Spark only maps them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

BatchFn = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


def to_spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema of an Arrow schema from `schemas/`."""
    return from_arrow_schema(schema, prefer_timestamp_ntz=True)


def to_arrow(schema: StructType) -> pa.Schema:
    """The Arrow schema of a Spark DataFrame's schema."""
    return to_arrow_schema(schema, prefers_large_types=False)


def map_batches(df: DataFrame, fn: BatchFn, schema: pa.Schema | StructType) -> DataFrame:
    """Map a batch function over a DataFrame with an explicit (never inferred) output schema."""
    spark_schema = schema if isinstance(schema, StructType) else to_spark_schema(schema)
    return df.mapInArrow(fn, spark_schema)
