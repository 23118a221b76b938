"""Materialise a DataFrame and forget how it was made: iterative plans (connected components)
must not drag every earlier round's plan along."""

from __future__ import annotations

from pyspark.sql import DataFrame


def fresh_checkpoint(df: DataFrame) -> DataFrame:
    """`df.localCheckpoint()`, then a DataFrame over the checkpointed rows with no link to the
    plan that produced them.

    A plain local checkpoint truncates the RDD lineage, but its logical node keeps the origin
    plan for statistics and constraints, so a loop that reuses the previous round's result
    several times per round grows a plan that doubles each round: measured on a 6,000-long
    chain, round 12 of connected components took 77 s and round 13 ran out of driver heap.
    Rebuilt from the RDD, every round costs the same (about 1 s there).
    """
    spark = df.sparkSession
    cp = df.localCheckpoint()
    return DataFrame(spark._jsparkSession.createDataFrame(cp._jdf.rdd(), cp._jdf.schema()), spark)
