"""The Spark plan of the annotate stage: one task per downloaded shard, mapped over Arrow."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession

from pipeline.annotate.annotate_shard import annotate_batches, output_schema
from pipeline.config import Config
from pipeline.spark.arrow import map_batches
from pipeline.spark.decisions import Decisions
from pipeline.storage import StoragePath


def shard_table(spark: SparkSession, downloads: StoragePath, shards: list[str]) -> DataFrame:
    """The stage's input: one row per complete downloaded shard (folder, shard id), one partition
    each, so a task reads one tar as img2dataset's distributor does."""
    rows = [(str(downloads), s) for s in shards]
    rdd = spark.sparkContext.parallelize(rows, max(1, len(rows)))
    return spark.createDataFrame(rdd, "folder string, shard string")


def decide(inputs: Mapping[str, DataFrame], config: Config) -> Decisions:
    """The stage's plan: `inputs["shards"]` (folder, shard) -> one annotation row per sample
    (`reason` set for the samples that could not be annotated)."""
    clip = config.clip if config.clip.enabled else None
    fn = functools.partial(
        annotate_batches,
        draft_size=config.annotate.draft_size,
        batch_rows=config.annotate.batch_rows,
        clip=clip,
        heads=dict(config.annotate.heads),
    )
    return Decisions(map_batches(inputs["shards"], fn, output_schema(clip, config.annotate.heads)))
