"""The Spark plan of the shard stage: join the keep-list with where each image lies and what
its pair says, order it by a seeded hash of the uid, number it, and write each shard in one task."""

from __future__ import annotations

import functools
import math

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType

from pipeline.shard.settings import ShardConfig
from pipeline.shard.writer import SHARD_RESULT, shard_batches
from pipeline.spark.arrow import map_batches
from pipeline.storage import StoragePath, spark_url

_ANNOTATION_COLUMNS = [
    "uid", "shard", "key", "offset", "image_bytes", "width", "height",
    "original_width", "original_height", "sha256", "phash",
]  # fmt: skip


def selected_samples(
    selection: DataFrame, annotations: DataFrame, downloads: StoragePath
) -> DataFrame:
    """One row per selected uid: its annotation (shard, offset ...) and its pair's metadata."""
    selection = selection.select("uid", "clip_score")
    annotations = annotations.select(*_ANNOTATION_COLUMNS)
    pairs = (
        selection.sparkSession.read.parquet(f"{spark_url(downloads)}/*.parquet")
        .filter(F.col("status") == "success")
        .select("uid", "url", "caption", "lang", "lang_score")
    )
    return selection.join(annotations, "uid").join(pairs, "uid")


def number_samples(samples: DataFrame, cfg: ShardConfig) -> tuple[DataFrame, int]:
    """Add `shard_id` and `index` from a deterministic shuffle: the order is a hash of
    (seed, uid), so it depends on the keep-list only, never on partitioning."""
    ordered = samples.withColumn(
        "_order", F.sha2(F.concat(F.lit(f"{cfg.seed}:"), "uid"), 256)
    ).orderBy("_order", "uid")
    schema = StructType([*ordered.schema.fields, StructField("position", LongType(), False)])
    numbered = ordered.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1])).toDF(schema)
    n = cfg.samples_per_shard
    numbered = numbered.withColumn("shard_id", (F.col("position") / n).cast("long")).withColumn(
        "index", F.col("position") % n
    )
    return numbered.drop("_order", "position"), n


def write_shards(
    samples: DataFrame, cfg: ShardConfig, out: StoragePath, downloads: StoragePath
) -> list[dict]:
    """Write every shard (one task per shard); returns (shard, count, bytes) per shard."""
    numbered, n = number_samples(samples, cfg)
    total = numbered.count()
    shards = max(1, math.ceil(total / n))
    fn = functools.partial(
        shard_batches,
        out=str(out),
        downloads=str(downloads),
        index_digits=max(1, math.ceil(math.log10(n))),
    )
    result = map_batches(numbered.repartition(shards, "shard_id"), fn, SHARD_RESULT)
    return sorted((r.asDict() for r in result.collect()), key=lambda r: r["shard"])
