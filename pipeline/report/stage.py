"""`curate report --run-dir DIR`: write report/index.html, self-contained (plots and thumbnails
inlined as data: URIs), from whatever stages of the run are complete."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.files import write_text_atomically
from pipeline.ledger import read_ledger
from pipeline.report.balance_section import balance_section
from pipeline.report.ground_truth import DedupTruth, score_dedup_against_truth
from pipeline.report.html_page import page
from pipeline.report.input_pairs import input_pairs
from pipeline.report.run_tables import GROUND_TRUTH, load_run_tables, read_parquet_dir
from pipeline.report.sections import (
    build_lookup,
    comparison_section,
    distributions_section,
    dropped_section,
    duplicates_section,
    funnel_section,
    kept_section,
    semantic_section,
    truth_section,
)
from pipeline.run_dir import RunDir
from pipeline.storage import arrow_filesystem, as_path, make_dirs

log = logging.getLogger(__name__)


def run_report(run_dir: Path | str, config: Config | None = None) -> Path:
    """Write `run_dir/report/index.html` and return its path.

    Everything comes from the run directory (what its stages wrote and recorded); `config` is
    accepted for the commands' common signature and not read.
    """
    run = RunDir(as_path(run_dir))
    run.require("ingest", "ingest")
    tables = load_run_tables(run.root)
    pairs = input_pairs(run)
    look = build_lookup(tables, pairs)
    sections = [funnel_section(tables)]
    for optional in (
        comparison_section(tables),
        truth_section(tables, pairs),
    ):
        if optional is not None:
            sections.append(optional)
    sections.append(distributions_section(tables))
    for optional in (
        balance_section(tables),
        kept_section(tables, look),
        duplicates_section(tables, look),
        semantic_section(tables, look),
    ):
        if optional is not None:
            sections.append(optional)
    sections.append(dropped_section(tables, look))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = page(f"curate report: {run.root.name} ({stamp})", sections)
    out = run.report / "index.html"
    make_dirs(out.parent)
    write_text_atomically(out, html)
    log.info("report: %s (%.1f MB)", out, len(html) / 1e6)
    return out


def dedup_truth_for_run(run_dir: Path | str, config: Config | None = None) -> DedupTruth | None:
    """`score_dedup_against_truth` for a run over a labelled web (the demo's layout: the truth in
    `run_dir/web/ground_truth.parquet`, its input with a gt_id column); None when the run has no
    truth, no input pairs or no complete dedup (`config` is not read). Print it with
    `format_dedup_truth`."""
    run = RunDir(as_path(run_dir))
    truth_path = run.root / GROUND_TRUTH
    if not truth_path.is_file() or not run.is_complete("dedup"):
        return None
    pairs = input_pairs(run)
    kept = read_parquet_dir(run.dedup, ["uid"])
    if pairs is None or "gt_id" not in pairs.schema.names or kept is None:
        return None
    fs, inner = arrow_filesystem(truth_path)
    truth = pq.read_table(inner, columns=["gt_id", "noise", "duplicate_of"], filesystem=fs)
    return score_dedup_against_truth(truth, pairs, read_ledger(run.ledger_for("dedup")), kept)
