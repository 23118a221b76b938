"""Connected components of a graph held as a DataFrame of long edges (a, b), distributed, in
O(log n) rounds: what dedup's pHash and semantic passes both group their pairs with."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.spark.checkpoint import fresh_checkpoint

log = logging.getLogger(__name__)


def connected_components(edges: DataFrame, max_iterations: int) -> tuple[DataFrame, int]:
    """(node, component) for every node of `edges`, component = the smallest node reachable.

    Parent pointers with hooking and shortcutting (Shiloach-Vishkin; the FastSV variant of
    Zhang, Azad & Hu 2020): every node points to a smaller-or-equal node of its component. Each
    round, for every edge (u, v) with grandparent gp(v): u's parent and u itself hook onto
    gp(v) when it is smaller (stochastic and aggressive hooking), and every node jumps to its
    grandparent (shortcutting, pointer jumping: the depth of a tree halves each round). A chain
    of n nodes collapses in O(log n) rounds, not the n of plain min-label propagation. At the
    fixed point every tree is a star and neighbours share a parent, so all nodes of a component
    point at its smallest node. Each round is a few joins and aggregations; only the count of
    changed parents reaches the driver.
    """
    both = (
        edges.select("a", "b")
        .union(edges.select(F.col("b").alias("a"), F.col("a").alias("b")))
        .withColumnRenamed("a", "u")
        .withColumnRenamed("b", "v")
        .localCheckpoint()
    )
    parent = (
        both.groupBy("u")
        .agg(F.least(F.col("u"), F.min("v")).alias("p"))
        .withColumnRenamed("u", "node")
        .localCheckpoint()
    )
    for iteration in range(1, max_iterations + 1):
        # A renamed copy, not an alias: both sides of a self-join must be distinct columns.
        up = parent.select(F.col("node").alias("pnode"), F.col("p").alias("gp"))
        grand = fresh_checkpoint(parent.join(up, parent.p == up.pnode).select("node", "p", "gp"))
        # Per edge (u, v): (p(u), gp(v)) hooks u's tree, (u, gp(v)) hooks u itself.
        per_edge = both.join(grand.select(F.col("node").alias("v"), "gp"), "v").join(
            parent.select(F.col("node").alias("u"), F.col("p").alias("pu")), "u"
        )
        proposals = (
            per_edge.select(F.col("pu").alias("node"), F.col("gp").alias("q"))
            .union(per_edge.select(F.col("u").alias("node"), F.col("gp").alias("q")))
            .union(grand.select("node", F.col("gp").alias("q")))
            .groupBy("node")
            .agg(F.min("q").alias("q"))
        )
        updated = fresh_checkpoint(
            parent.join(proposals, "node", "left").select(
                "node", "p", F.least("p", F.coalesce("q", "p")).alias("new")
            )
        )
        changed = updated.filter(F.col("new") != F.col("p")).count()
        parent = updated.select("node", F.col("new").alias("p"))
        log.info("components: round %d, %d parents changed", iteration, changed)
        if changed == 0:
            return parent.withColumnRenamed("p", "component"), iteration
    raise RuntimeError(f"connected components did not converge in {max_iterations} rounds")
