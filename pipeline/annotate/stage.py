"""`curate annotate`: downloads/ -> annotations/ (one row per image) + ledger/annotate/."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pipeline.clip.models import load_clip
from pipeline.config import Config
from pipeline.download.stage import complete_shards
from pipeline.run_dir import RunDir
from pipeline.annotate.plan import annotate_decisions
from pipeline.spark.decisions import write_decisions
from pipeline.spark.session import get_spark
from pipeline.stats import record_stage
from schemas.tables import ANNOTATION, CLIP_COLUMNS

log = logging.getLogger(__name__)
STAGE = "annotate"


def run_annotate(run_dir: Path | str, config: Config) -> dict[str, Any]:
    """Run the annotate stage; returns its stats.json entry. Does nothing if already complete."""
    run = RunDir(Path(run_dir).resolve())
    done = run.completed_entry(STAGE)
    if done is not None:
        return done
    run.require("download", "download")
    clip = config.clip if config.clip.enabled else None
    if clip is not None:
        # Fail fast, on the driver, before any task: bad weights are exit 2, not a task error.
        load_clip(clip.model, clip.pretrained, "cpu")
    started = time.monotonic()
    spark = get_spark(config.spark)
    shards = complete_shards(run.downloads)
    decisions = annotate_decisions(spark, run.downloads, shards, config.annotate, clip)
    columns = ANNOTATION.names + (CLIP_COLUMNS.names if clip is not None else [])
    written = write_decisions(spark, decisions, run, STAGE, run.annotations, columns)
    # Rows in: the samples the download stage kept (its identity was checked when it finished).
    rows_in = run.stats()["stages"]["download"]["rows_kept"]
    if written.rows_in != rows_in:
        log.error(
            "annotate: saw %d downloaded samples, download reported %d", written.rows_in, rows_in
        )
    entry = record_stage(
        run,
        STAGE,
        rows_in,
        written.rows_kept,
        written.dropped,
        time.monotonic() - started,
        {
            "shards": len(shards),
            # Which model produced clip_score: a threshold means nothing without it.
            "clip": {
                "enabled": config.clip.enabled,
                "model": config.clip.model,
                "pretrained": config.clip.pretrained,
            },
        },
    )
    log.info("annotate: %d images, %d annotated", rows_in, written.rows_kept)
    return entry
