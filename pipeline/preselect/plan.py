"""The Spark plan of the preselect stage: the CLIP top fraction becomes a threshold over every
candidate (one percentile job), then the pool rules map over Arrow batches; every candidate
comes out once with its reason (null = kept) and its columns as they were."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.preselect.rules import PoolBounds, resolve
from pipeline.preselect.rules import decide as decide_rows
from pipeline.spark.arrow import map_batches, to_arrow
from pipeline.spark.decisions import Decisions


def _decide_batches(
    batches: Iterator[pa.RecordBatch], bounds: PoolBounds
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        reason, detail = decide_rows(batch, bounds)
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, reason, detail],
            names=[*batch.schema.names, "reason", "detail"],
        )


def _threshold(candidates: DataFrame, column: str, top_fraction: float) -> float | None:
    """The score that keeps `top_fraction` of the candidates that have one (ties included)."""
    row = candidates.agg(F.percentile(F.col(column), F.lit(1.0 - top_fraction)).alias("t")).first()
    return None if row is None or row["t"] is None else float(row["t"])


def decide(inputs: Mapping[str, DataFrame], config: Config) -> Decisions:
    """`inputs["candidates"]` -> every candidate once, `reason` null when kept."""
    candidates = inputs["candidates"]
    cfg = config.select.pool
    if not cfg.applies:
        figures = {"applied": False, "why": "no select.pool rule is set"}
        keep_all = candidates.withColumn("reason", F.lit(None).cast("string")).withColumn(
            "detail", F.lit(None).cast("string")
        )
        return Decisions(keep_all, figures)
    threshold = None
    if cfg.clip_column in candidates.columns and cfg.clip_top_fraction > 0:
        threshold = _threshold(candidates, cfg.clip_column, cfg.clip_top_fraction)
    bounds = resolve(cfg, threshold)
    absent = [c for c in bounds.columns if c not in candidates.columns]
    if absent:
        raise InputError(
            f"select.pool: the candidates have no column {absent[0]!r} (input columns are"
            f" carried as they are: {', '.join(candidates.columns)})"
        )
    figures = {
        "applied": True,
        "clip": None
        if bounds.clip is None
        else {
            "column": bounds.clip[0],
            "threshold": bounds.clip[1],
            "top_fraction": cfg.clip_top_fraction or None,
        },
        "min": dict(bounds.lower),
        "max": dict(bounds.upper),
    }
    schema = to_arrow(candidates.schema)
    out = pa.schema([*schema, pa.field("reason", pa.string()), pa.field("detail", pa.string())])
    fn = functools.partial(_decide_batches, bounds=bounds)
    return Decisions(map_batches(candidates, fn, out), figures)
