"""`curate run`: every stage in order, ingest to shard, then the report. Each stage skips itself
when its output is complete, so a killed `curate run` is resumed by running it again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.config import Config

log = logging.getLogger(__name__)


def stage_runners() -> list[tuple[str, Callable[[Path, Config], Any]]]:
    """(stage, runner over a run dir) for every stage after ingest, in pipeline order."""
    from pipeline.annotate.stage import run_annotate
    from pipeline.dedup.stage import run_dedup
    from pipeline.download.stage import run_download
    from pipeline.select.stage import run_select
    from pipeline.shard.stage import run_shard

    return [
        ("download", run_download),
        ("annotate", run_annotate),
        ("dedup", run_dedup),
        ("select", run_select),
        ("shard", run_shard),
    ]


def run_all(
    input_path: str, run_dir: Path | str, config: Config, report: bool = True
) -> dict[str, Any]:
    """Run ingest with `input_path`, then every later stage, then write the report.

    Returns stats.json's content.
    """
    from pipeline.ingest.stage import run_ingest
    from pipeline.run_dir import RunDir

    run_dir = Path(run_dir)
    log.info("run: ingest")
    run_ingest(input_path, run_dir, config)
    for stage, runner in stage_runners():
        log.info("run: %s", stage)
        runner(run_dir, config)
    if report:
        from pipeline.report.stage import run_report

        run_report(run_dir, config)
    return RunDir(run_dir.resolve()).stats()
