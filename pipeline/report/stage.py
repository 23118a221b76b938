"""`curate report --run-dir DIR`: write report/index.html, self-contained (plots and thumbnails
inlined as data: URIs), from whatever stages of the run are complete."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import Config, load_config
from pipeline.files import write_text_atomically
from pipeline.report.html_page import page
from pipeline.report.input_pairs import recover_input_pairs
from pipeline.report.run_tables import load_run_tables
from pipeline.report.sections import (
    build_lookup,
    comparison_section,
    distributions_section,
    dropped_section,
    duplicates_section,
    funnel_section,
    kept_section,
    truth_section,
)
from pipeline.run_dir import RunDir

log = logging.getLogger(__name__)


def run_report(run_dir: Path | str, config: Config) -> Path:
    """Write `run_dir/report/index.html` and return its path.

    The run's own config.yaml (what its stages ran with) is used to recompute uids of the input
    rows; `config` is the fallback for a run directory without one.
    """
    run = RunDir(Path(run_dir).resolve())
    run.require("ingest", "ingest")
    if run.config_file.is_file():
        config = load_config(run.config_file, [])
    tables = load_run_tables(run.root)
    ingest = tables.stats.get("stages", {}).get("ingest", {})
    pairs = recover_input_pairs(ingest.get("input", ""), config.ingest)
    look = build_lookup(tables, pairs)
    sections = [funnel_section(tables)]
    for optional in (
        comparison_section(tables),
        truth_section(tables, pairs),
    ):
        if optional is not None:
            sections.append(optional)
    sections.append(distributions_section(tables))
    for optional in (kept_section(tables, look), duplicates_section(tables, look)):
        if optional is not None:
            sections.append(optional)
    sections.append(dropped_section(tables, look))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = page(f"curate report: {run.root.name} ({stamp})", sections)
    out = run.report / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out, html)
    log.info("report: %s (%.1f MB)", out, len(html) / 1e6)
    return out
