"""`curate shard`: selection/ + downloads/ -> shards/ (LAION-style webdataset) + sizes.json."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.run_dir import RunDir, write_text_atomically
from pipeline.spark.session import get_spark
from pipeline.shard.plan import write_shards
from pipeline.stats import record_stage

log = logging.getLogger(__name__)
STAGE = "shard"


def run_shard(run_dir: Path | str, config: Config) -> dict[str, Any]:
    """Run the shard stage; returns its stats.json entry. Complete shards are not rewritten."""
    run = RunDir(Path(run_dir).resolve())
    done = run.completed_entry(STAGE)
    if done is not None:
        return done
    run.require("select", "select")
    started = time.monotonic()
    spark = get_spark(config.spark)
    run.shards.mkdir(parents=True, exist_ok=True)
    results = write_shards(spark, run, config.shard, str(run.shards))
    # open_clip's trainer reads the dataset size from sizes.json (no --train-num-samples).
    sizes = {f"{r['shard']}.tar": r["count"] for r in results}
    write_text_atomically(
        run.shards / "sizes.json", json.dumps(sizes, indent=2, sort_keys=True) + "\n"
    )
    rows_in = pq.read_table(run.selection, columns=["uid"]).num_rows
    written = sum(sizes.values())
    megabytes = sum(r["bytes"] for r in results) / 1e6
    entry = record_stage(
        run,
        STAGE,
        rows_in,
        written,
        {},
        time.monotonic() - started,
        {"shards": len(results), "megabytes": round(megabytes, 3)},
    )
    log.info("shard: %d samples in %d shards (%.1f MB)", written, len(results), megabytes)
    return entry
