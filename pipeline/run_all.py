"""`curate run`: every stage of the registry in order, then the report. Everything the whole
run needs is checked before the first stage (pipeline.runner.preflight); each stage complete with the
same settings is skipped, so a killed `curate run` is resumed by running it again."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.runner import run_stages

log = logging.getLogger(__name__)


def run_all(
    input_path: str, run_dir: Path | str, config: Config, report: bool = True
) -> dict[str, Any]:
    """Run every stage on `input_path` into `run_dir`, then write the report.

    Returns stats.json's content.
    """
    stats = run_stages(run_dir, config, input_path)
    if report:
        from pipeline.report.stage import run_report

        run_report(run_dir, config)
    return stats
