"""The Spark plan of `noop`: every selected sample, kept."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.config import Config
from pipeline.spark.decisions import Decisions


def decide(inputs: Mapping[str, DataFrame], config: Config) -> Decisions:
    frame = inputs["selection"].withColumn("reason", F.lit(None).cast("string"))
    return Decisions(
        frame.withColumn("detail", F.lit(None).cast("string")), {"noop": config.noop.label}
    )
