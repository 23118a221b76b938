"""Arrow <-> Spark schema mapping and the `mapInArrow` helper: stage logic stays in plain functions
over Arrow batches, Spark only maps them."""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

BatchFn = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]

# Fault injection for retry tests: set to a folder in the executors' environment (e.g.
# `--conf spark.executorEnv.CURATE_FAIL_ONCE=/shared/dir`) and exactly one task fails once.
FAIL_ONCE_ENV = "CURATE_FAIL_ONCE"
FAIL_ONCE_MARKER = "failed-once"


def to_spark_schema(schema: pa.Schema) -> StructType:
    """The Spark schema of an Arrow schema from `schemas/`."""
    return from_arrow_schema(schema, prefer_timestamp_ntz=True)


def to_arrow(schema: StructType) -> pa.Schema:
    """The Arrow schema of a Spark DataFrame's schema."""
    return to_arrow_schema(schema, prefers_large_types=False)


def map_batches(df: DataFrame, fn: BatchFn, schema: pa.Schema | StructType) -> DataFrame:
    """Map a batch function over a DataFrame with an explicit (never inferred) output schema."""
    spark_schema = schema if isinstance(schema, StructType) else to_spark_schema(schema)
    return df.mapInArrow(fail_once(fn), spark_schema)


class InjectedFailure(RuntimeError):
    """The one failure `CURATE_FAIL_ONCE` asks for."""


def fail_once(fn: BatchFn) -> BatchFn:
    """`fn`, except that with $CURATE_FAIL_ONCE set, the first task to get there fails once.

    That task emits its first batch, creates `$CURATE_FAIL_ONCE/failed-once` atomically and
    raises; every other task and every retry finds the marker and runs normally. Unset, the cost
    is one environment lookup per task. A partial of module functions: pickles by reference.
    """
    return functools.partial(_fail_once, fn)


def _fail_once(fn: BatchFn, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    marker_dir = os.environ.get(FAIL_ONCE_ENV)
    if not marker_dir:
        return fn(batches)
    return _fail_after_first_batch(fn(batches), Path(marker_dir))


def _fail_after_first_batch(
    out: Iterator[pa.RecordBatch], marker_dir: Path
) -> Iterator[pa.RecordBatch]:
    claimed = False
    for batch in out:
        yield batch  # downstream has this batch before the failure: retries must not duplicate it
        if not claimed:
            claimed = True
            _claim_failure(marker_dir)
    if not claimed:  # no output at all: fail at the end instead
        _claim_failure(marker_dir)


def _claim_failure(marker_dir: Path) -> None:
    """Raise InjectedFailure if this task is the first to create the marker (O_EXCL: only one)."""
    marker_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(marker_dir / FAIL_ONCE_MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return
    from pyspark import TaskContext

    ctx = TaskContext.get()
    task = (
        f"stage {ctx.stageId()} partition {ctx.partitionId()} attempt {ctx.attemptNumber()}"
        if ctx is not None
        else "outside Spark"
    )
    where = f"{task}, pid {os.getpid()} on {socket.gethostname()}"
    with os.fdopen(fd, "w") as marker:
        marker.write(where + "\n")
    raise InjectedFailure(f"{FAIL_ONCE_ENV}: injected failure in {where}")
