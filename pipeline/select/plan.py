"""The Spark plan of the select stage: the dedup survivors with the columns the rules read
(annotations; the caption from the candidates), each rule's parameters (a top fraction becomes a
threshold over the whole pool, k-means centroids come from a bounded sample), and the rules
applied in order over Arrow batches."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.config import Config
from pipeline.dedup.semantic.plan import seeded_sample
from pipeline.select.rules import Rule, apply_rules, get_rule
from pipeline.select.top_fraction import Cut
from pipeline.spark.arrow import map_batches
from pipeline.spark.decisions import Decisions
from pipeline.spark.top_fraction import top_fraction_cut
from schemas.tables import SELECTION


def pool_with_columns(
    dedup: DataFrame, annotations: DataFrame, columns: set[str], candidates: DataFrame | None = None
) -> DataFrame:
    """The samples dedup kept, with the annotation columns the rules read and, from the
    candidates, the caption and input columns they read (null when absent everywhere)."""
    present = [c for c in sorted(columns) if c in annotations.columns]
    pool = dedup.select("uid").join(annotations.select("uid", *present), "uid", "left")
    # The caption, and score columns the input carried (LAION's punsafe), from the candidates.
    wanted = sorted(columns - set(present) - {"uid"})
    from_candidates = [c for c in wanted if candidates is not None and c in candidates.columns]
    if from_candidates:
        pool = pool.join(candidates.select("uid", *from_candidates), "uid", "left")
        present += from_candidates
    for missing in sorted(columns - set(present)):
        pool = pool.withColumn(missing, F.lit(None).cast("float"))
    return pool


@dataclass
class SparkPool:
    """The select.rules.Pool of a cached pool DataFrame: each answer is one Spark job."""

    frame: DataFrame
    _count: int | None = None

    def top_fraction(self, column: str, fraction: float, rule: str, denominator: str) -> Cut:
        return top_fraction_cut(self.frame, column, fraction, rule, denominator)

    def count(self) -> int:
        """Samples with an image embedding (the ones k-means can place)."""
        if self._count is None:
            self._count = self.frame.filter(F.col("image_embedding").isNotNull()).count()
        return self._count

    def embedding_sample(self, wanted: int, seed: int) -> np.ndarray:
        with_embedding = self.frame.filter(F.col("image_embedding").isNotNull())
        return seeded_sample(with_embedding, self.count(), wanted, seed)


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
    """The stage's plan: `inputs["dedup"]` (the survivors), `inputs["annotations"]` and, for
    rules that read the caption, `inputs["candidates"]` -> every pooled sample once (`reason`
    null = selected), and what each rule did."""
    dedup, annotations = inputs["dedup"], inputs["annotations"]
    rules = [get_rule(name) for name in config.select.effective_rules]
    needed = {"clip_score"} | {c for r in rules for c in r.needed(config)}
    candidates = inputs.get("candidates")
    pool = pool_with_columns(dedup, annotations, needed, candidates).cache()
    available = set(annotations.columns) | set(candidates.columns if candidates is not None else ())
    spark_pool = SparkPool(pool)
    applied: list[tuple[Rule, dict[str, Any]]] = []
    figures: dict[str, Any] = {"rules": {}}
    for rule in rules:
        params = rule.params(config, available, spark_pool)
        figures["rules"][rule.name] = params.summary
        if params.values is not None:
            applied.append((rule, params.values))
    # The CLIP rule's summary keeps its own key: the report and older runs read it there.
    if "clip_score" in figures["rules"]:
        figures["clip_rule"] = figures["rules"]["clip_score"]
    fn = functools.partial(_decide_batches, rules=applied)
    return Decisions(map_batches(pool, fn, DECISIONS), figures)
