"""The Spark plan of the annotate stage: one task per downloaded shard, mapped over Arrow."""

from __future__ import annotations

import functools
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from pipeline.annotate.annotate_shard import annotate_batches, output_schema
from pipeline.config import AnnotateConfig, ClipConfig
from pipeline.spark.arrow import map_batches


def annotate_decisions(
    spark: SparkSession,
    downloads: Path,
    shards: list[str],
    cfg: AnnotateConfig,
    clip: ClipConfig | None,
) -> DataFrame:
    """Annotation rows (with `reason` for the samples that could not be annotated)."""
    # One partition per shard: a task reads one tar, as img2dataset's distributor does.
    rdd = spark.sparkContext.parallelize([(s,) for s in shards], max(1, len(shards)))
    df = spark.createDataFrame(rdd, "shard string")
    fn = functools.partial(
        annotate_batches,
        downloads=str(downloads),
        draft_size=cfg.draft_size,
        batch_rows=cfg.batch_rows,
        clip=clip,
    )
    return map_batches(df, fn, output_schema(clip))
