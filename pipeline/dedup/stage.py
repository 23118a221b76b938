"""`curate dedup`: annotations/ -> dedup/ (kept samples with their cluster) + ledger/dedup/."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.dedup.exclude import load_exclusion_hashes
from pipeline.run_dir import RunDir
from pipeline.spark.decisions import write_decisions
from pipeline.dedup.plan import dedup_decisions
from pipeline.spark.session import get_spark
from pipeline.stats import record_stage
from schemas.tables import DEDUP

log = logging.getLogger(__name__)
STAGE = "dedup"


def run_dedup(run_dir: Path | str, config: Config) -> dict[str, Any]:
    """Run the dedup stage; returns its stats.json entry. Does nothing if already complete."""
    run = RunDir(Path(run_dir).resolve())
    done = run.completed_entry(STAGE)
    if done is not None:
        return done
    run.require("annotate", "annotate")
    cfg = config.dedup
    eval_hashes = (
        load_exclusion_hashes(cfg.exclude, config.annotate.draft_size) if cfg.exclude else []
    )
    started = time.monotonic()
    spark = get_spark(config.spark)
    annotations = spark.read.parquet(str(run.annotations))
    rows_in = annotations.count()
    decisions, figures = dedup_decisions(spark, annotations, eval_hashes, cfg)
    written = write_decisions(spark, decisions, run, STAGE, run.dedup, DEDUP.names)
    entry = record_stage(
        run, STAGE, rows_in, written.rows_kept, written.dropped, time.monotonic() - started, figures
    )
    log.info("dedup: %d samples, %d kept, %s", rows_in, written.rows_kept, figures)
    return entry
