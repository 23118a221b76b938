"""The Spark plan of the select stage: the dedup survivors, their CLIP scores, and the CLIP rule
(an absolute threshold, or a top fraction turned into a threshold over the whole pool)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.config import ClipConfig
from schemas.reasons import check

CLIP_SCORE = check("select.clip_score")
NO_SCORE = check("select.no_clip_score")


def pool_with_scores(dedup: DataFrame, annotations: DataFrame) -> DataFrame:
    """The samples dedup kept, with their clip_score (null when annotate did not score)."""
    score = (
        F.col("clip_score") if "clip_score" in annotations.columns else F.lit(None).cast("float")
    )
    scores = annotations.select("uid", score.alias("clip_score"))
    return dedup.select("uid").join(scores, "uid", "left")


def top_fraction_threshold(pool: DataFrame, fraction: float) -> float | None:
    """DataComp's rule: the score at rank `fraction` of the whole pool (exact percentile), so
    that keeping score >= threshold keeps that fraction (ties included)."""
    row = pool.agg(F.percentile(F.col("clip_score"), F.lit(1.0 - fraction)).alias("t")).first()
    return None if row is None or row["t"] is None else float(row["t"])


def select_decisions(pool: DataFrame, threshold: float | None) -> DataFrame:
    """Every pooled sample once, `reason` null when kept. No threshold: the CLIP rule is off."""
    if threshold is None:
        return pool.withColumn("reason", F.lit(None).cast("string")).withColumn(
            "detail", F.lit(None).cast("string")
        )
    below = F.col("clip_score") < F.lit(threshold)
    return pool.select(
        "uid",
        "clip_score",
        F.when(F.col("clip_score").isNull(), F.lit(NO_SCORE))
        .when(below, F.lit(CLIP_SCORE))
        .alias("reason"),
        F.when(below, F.format_string("%.4f < %.4f", F.col("clip_score"), F.lit(threshold))).alias(
            "detail"
        ),
    )


def clip_rule(pool: DataFrame, cfg: ClipConfig, has_scores: bool) -> tuple[float | None, dict]:
    """The threshold to apply (None: no CLIP rule) and what stats.json says about it."""
    if not cfg.enabled:
        return None, {"applied": False, "why": "clip.enabled is false: no CLIP rule ran"}
    if not has_scores:
        return None, {
            "applied": False,
            "why": "annotations have no clip_score (annotate ran without CLIP)",
        }
    if cfg.top_fraction > 0:
        threshold = top_fraction_threshold(pool, cfg.top_fraction)
        return threshold, {
            "applied": True,
            "top_fraction": cfg.top_fraction,
            "threshold": threshold,
        }
    return cfg.threshold, {"applied": True, "threshold": cfg.threshold}
