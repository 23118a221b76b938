"""The Spark plan of the balance stage (MetaCLIP, Xu et al. 2023, Algorithm 1): the selected
samples joined with their captions, matched against the entry list in `mapInArrow`, matches
counted per entry by Spark (the count table, bounded by the entry list, comes to the driver), then
every sample kept or dropped in a second `mapInArrow` from those counts and its own draw."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipeline.balance.decide import DECIDED, MATCHED, decide_batches, match_batches
from pipeline.balance.kernels import auto_t, distribution
from pipeline.config import Config
from pipeline.entry_match import entry_match_mode, read_entry_list
from pipeline.spark.arrow import map_batches
from pipeline.spark.decisions import Decisions
from schemas.tables import SELECTION

log = logging.getLogger(__name__)


def _count_table(ids: DataFrame, n_entries: int) -> np.ndarray:
    """Matches per entry id (a row per matched entry comes to the driver: at most the list)."""
    counts = np.zeros(n_entries, dtype=np.int64)
    rows = ids.select(F.explode("entry_ids").alias("entry")).groupBy("entry").count().collect()
    for row in rows:
        counts[row["entry"]] = row["count"]
    return counts


def not_applied(selection: DataFrame, why: str) -> Decisions:
    """Every selected sample kept as it is (no entry list)."""
    frame = selection.select(*SELECTION.names).withColumns(
        {"reason": F.lit(None).cast("string"), "detail": F.lit(None).cast("string")}
    )
    return Decisions(frame, {"applied": False, "why": why})


def decide(inputs: Mapping[str, DataFrame], config: Config) -> Decisions:
    """`inputs["select"]` (uid, clip_score) and `inputs["candidates"]` (uid, caption) -> every
    selected sample once (`reason` null = kept), and the figures of what balancing did."""
    cfg = config.balance
    selection = inputs["select"]
    if not cfg.entries:
        return not_applied(selection, "balance.entries is empty: every selected sample kept")
    # Executors read the list by path (shared storage on a cluster), as the driver did.
    path = str(Path(cfg.entries).resolve())
    mode = entry_match_mode(config, "balance")
    entry_list = read_entry_list(path, mode)
    captions = inputs["candidates"].select("uid", "caption")
    # Left: a selected sample is decided even without a caption row (it then matches nothing).
    pool = selection.select(*SELECTION.names).join(captions, "uid", "left")
    match = functools.partial(match_batches, path=path, digest=entry_list.digest, mode=mode)
    # Read by the counts and by the decision pass: the automaton runs over each caption once.
    matched = map_batches(pool, match, MATCHED).cache()

    totals = matched.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.size("entry_ids") > 0, 1).otherwise(0)).alias("matched"),
    ).first()
    rows_in, rows_matched = int(totals["rows"]), int(totals["matched"] or 0)
    before = _count_table(matched, len(entry_list))
    t = cfg.t or auto_t(rows_in)
    t_rule = "balance.t" if cfg.t else f"auto: max(1, round({rows_in} rows / 20,000))"
    log.info(
        "balance: %d entries, %d of %d samples match one, t = %d (%s), %d head entries",
        len(entry_list),
        rows_matched,
        rows_in,
        t,
        t_rule,
        int((before > t).sum()),
    )

    decide_fn = functools.partial(
        decide_batches,
        counts=before,
        t=t,
        seed=cfg.seed,
        keep_unmatched=cfg.keep_unmatched,
        path=path,
        digest=entry_list.digest,
        mode=mode,
    )
    # Read by the two figure queries below and then by the decision writer.
    decided = map_batches(matched, decide_fn, DECIDED).cache()
    kinds = {r["kind"]: int(r["count"]) for r in decided.groupBy("kind").count().collect()}
    after = _count_table(decided.filter(F.col("reason").isNull()), len(entry_list))
    figures: dict[str, Any] = {
        "applied": True,
        "entries": len(entry_list),
        "entries_file": path,
        "entries_sha256": entry_list.digest,
        "matching": mode,
        "matched_entries": int((before > 0).sum()),
        "matched_share": round(rows_matched / rows_in, 6) if rows_in else 0.0,
        "t": t,
        "t_rule": t_rule,
        "head_entries": int((before > t).sum()),
        "keep_unmatched": cfg.keep_unmatched,
        "seed": cfg.seed,
        "rows_by_outcome": dict(sorted(kinds.items())),
        "distribution": distribution(before, after, t, entry_list.entries),
    }
    return Decisions(decided.select(*SELECTION.names, "reason", "detail"), figures)
