"""Shared fixtures: one SparkSession per test run, and small parquet builders."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import SparkConfig
from pipeline.spark.session import get_spark


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the run: local[2,4] (retries on), few shuffle partitions."""
    session = get_spark(SparkConfig(local_cores="2", shuffle_partitions=4, driver_memory="2g"))
    yield session
    session.stop()


def write_parquet(path: Path, columns: dict[str, list], schema: pa.Schema | None = None) -> Path:
    """Write a small parquet file from columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)
    return path
