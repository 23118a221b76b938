"""`curate select`: dedup/ + annotations/ -> selection/ (the keep-list of uids) + ledger/select/.

Decisions only: no model runs here, so changing a threshold and running select again is cheap;
a run with different CLIP settings redoes select (and marks the stages after it incomplete).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.run_dir import RunDir, later_stages
from pipeline.spark.decisions import write_decisions
from pipeline.select.plan import clip_rule, pool_with_scores, select_decisions
from pipeline.spark.session import get_spark
from pipeline.stats import record_stage
from schemas.tables import SELECTION

log = logging.getLogger(__name__)
STAGE = "select"


def _settings(config: Config) -> dict[str, Any]:
    clip = config.clip
    return {
        "clip_enabled": clip.enabled,
        "threshold": clip.threshold,
        "top_fraction": clip.top_fraction,
    }


def run_select(run_dir: Path | str, config: Config) -> dict[str, Any]:
    """Run the select stage; returns its stats.json entry."""
    run = RunDir(Path(run_dir).resolve())
    settings = _settings(config)
    if run.is_complete(STAGE):
        entry = run.stats()["stages"][STAGE]
        if entry.get("settings") == settings:
            log.info("select: already complete with these settings in %s", run.root)
            return entry
        log.info(
            "select: settings changed (%s -> %s), selecting again", entry.get("settings"), settings
        )
        run.forget((STAGE, *later_stages(STAGE)))
        shutil.rmtree(run.ledger_for(STAGE), ignore_errors=True)
    run.require("dedup", "dedup")
    started = time.monotonic()
    spark = get_spark(config.spark)
    annotations = spark.read.parquet(str(run.annotations))
    has_scores = "clip_score" in annotations.columns
    pool = pool_with_scores(spark.read.parquet(str(run.dedup)), annotations).cache()
    rows_in = pool.count()
    threshold, rule = clip_rule(pool, config.clip, has_scores)
    written = write_decisions(
        spark, select_decisions(pool, threshold), run, STAGE, run.selection, SELECTION.names
    )
    pool.unpersist()
    entry = record_stage(
        run,
        STAGE,
        rows_in,
        written.rows_kept,
        written.dropped,
        time.monotonic() - started,
        {"clip_rule": rule, "settings": settings},
    )
    log.info("select: %d in, %d selected; CLIP rule %s", rows_in, written.rows_kept, rule)
    return entry
