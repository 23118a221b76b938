"""The Spark plan of the preselect stage: the CLIP top fraction becomes a threshold over every
candidate (pipeline/spark/top_fraction.py: a few counting jobs), then the pool rules map over Arrow batches; every candidate
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
from pipeline.select.settings import top_fraction_rule
from pipeline.spark.arrow import map_batches, to_arrow
from pipeline.spark.decisions import Decisions
from pipeline.spark.top_fraction import top_fraction_cut


def _decide_batches(
    batches: Iterator[pa.RecordBatch], bounds: PoolBounds
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        reason, detail = decide_rows(batch, bounds)
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, reason, detail],
            names=[*batch.schema.names, "reason", "detail"],
        )


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
    threshold, cut = None, None
    if cfg.clip_column in candidates.columns and cfg.clip_top_fraction > 0:
        rule, denominator = top_fraction_rule(config)
        cut = top_fraction_cut(
            candidates, cfg.clip_column, cfg.clip_top_fraction, rule, denominator
        )
        threshold = cut.threshold
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
            **({} if cut is None else cut.summary),
        },
        "min": dict(bounds.lower),
        "max": dict(bounds.upper),
    }
    schema = to_arrow(candidates.schema)
    out = pa.schema([*schema, pa.field("reason", pa.string()), pa.field("detail", pa.string())])
    fn = functools.partial(_decide_batches, bounds=bounds)
    return Decisions(map_batches(candidates, fn, out), figures)
