"""The Spark plan of the select stage: the dedup survivors with the annotation columns the
rules read, each rule's parameters (a top fraction becomes a threshold over the whole pool), and
the rules applied in order over Arrow batches."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.config import Config
from pipeline.select.rules import Rule, apply_rules, get_rule
from pipeline.spark.arrow import map_batches
from pipeline.spark.decisions import Decisions
from schemas.tables import SELECTION


def pool_with_columns(dedup: DataFrame, annotations: DataFrame, columns: set[str]) -> DataFrame:
    """The samples dedup kept, with the annotation columns the rules read (null when absent)."""
    present = [c for c in sorted(columns) if c in annotations.columns]
    pool = dedup.select("uid").join(annotations.select("uid", *present), "uid", "left")
    for missing in sorted(columns - set(present)):
        pool = pool.withColumn(missing, F.lit(None).cast("float"))
    return pool


def _quantile(pool: DataFrame, column: str, q: float) -> float | None:
    row = pool.agg(F.percentile(F.col(column), F.lit(q)).alias("t")).first()
    return None if row is None or row["t"] is None else float(row["t"])


def _decide_batches(
    batches: Iterator[pa.RecordBatch], rules: list[tuple[Rule, dict[str, Any]]]
) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        reason, detail = apply_rules(batch, rules)
        score = batch.column("clip_score").cast(pa.float32())
        yield pa.record_batch(
            [batch.column("uid"), score, reason, detail],
            names=["uid", "clip_score", "reason", "detail"],
        )


DECISIONS = pa.schema(
    [*SELECTION, pa.field("reason", pa.string()), pa.field("detail", pa.string())]
)


def decide(inputs: Mapping[str, DataFrame], config: Config) -> Decisions:
    """The stage's plan: `inputs["dedup"]` (the survivors) and `inputs["annotations"]` -> every
    pooled sample once (`reason` null = selected), and what each rule did."""
    dedup, annotations = inputs["dedup"], inputs["annotations"]
    rules = [get_rule(name) for name in config.select.rules]
    needed = {"clip_score"} | {c for r in rules for c in r.columns}
    pool = pool_with_columns(dedup, annotations, needed).cache()
    available = set(annotations.columns)
    applied: list[tuple[Rule, dict[str, Any]]] = []
    figures: dict[str, Any] = {"rules": {}}
    for rule in rules:
        params = rule.params(config, available, functools.partial(_quantile, pool))
        figures["rules"][rule.name] = params.summary
        if params.values is not None:
            applied.append((rule, params.values))
    # The CLIP rule's summary keeps its own key: the report and older runs read it there.
    if "clip_score" in figures["rules"]:
        figures["clip_rule"] = figures["rules"]["clip_score"]
    fn = functools.partial(_decide_batches, rules=applied)
    return Decisions(map_batches(pool, fn, DECISIONS), figures)
