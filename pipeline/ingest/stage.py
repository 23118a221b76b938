"""`curate ingest`: parquet in, `candidates/` and `ledger/ingest/` out, funnel in `stats.json`."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pipeline.config import Config, dump_yaml
from pipeline.ingest.input_check import check_local_input, is_local
from pipeline.ingest.langid import resolve_model_path
from pipeline.run_dir import RunDir, write_text_atomically
from pipeline.ingest import plan as ingest_plan
from pipeline.spark.decisions import write_decisions
from pipeline.spark.session import get_spark
from pipeline.stats import record_stage
from schemas.tables import CANDIDATE_CORE

log = logging.getLogger(__name__)
STAGE = "ingest"


def run_ingest(input_path: str, run_dir: Path | str, config: Config) -> dict[str, Any]:
    """Run the ingest stage; returns its stats.json entry. Does nothing if already complete."""
    run = RunDir(Path(run_dir).resolve())
    done = run.completed_entry(STAGE)
    if done is not None:
        return done
    started = time.monotonic()
    cfg = config.ingest
    model_path = resolve_model_path(cfg.langid_model)
    if is_local(str(input_path)):
        check_local_input(str(input_path), cfg)  # clear errors before the JVM starts
    spark = get_spark(config.spark)
    df, extra = ingest_plan.read_input(spark, str(input_path), cfg)

    # Validated: from here on the run directory is written.
    run.root.mkdir(parents=True, exist_ok=True)
    write_text_atomically(run.config_file, dump_yaml(config))
    decisions = ingest_plan.ingest_decisions(df, cfg, extra, model_path)
    written = write_decisions(
        spark, decisions, run, STAGE, run.candidates, [*CANDIDATE_CORE.names, *extra.names]
    )
    rows_in, rows_kept = written.rows_in, written.rows_kept
    entry = record_stage(
        run,
        STAGE,
        rows_in,
        rows_kept,
        written.dropped,
        time.monotonic() - started,
        {"input": str(input_path)},
    )
    log.info(
        "ingest: %d rows in, %d candidates, %d dropped", rows_in, rows_kept, rows_in - rows_kept
    )
    return entry
