"""`curate dedup`: annotations/ -> dedup/ (kept samples with their cluster) + ledger/dedup/."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Config
from pipeline.dedup.exclude import load_exclusion_hashes
from pipeline.dedup.plan import dedup_decisions
from pipeline.errors import InputError
from pipeline.runner import StageContext, StageResult
from schemas.tables import DEDUP

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None = None) -> None:
    """The evaluation images of dedup.exclude must be there before a run starts."""
    exclude = config.dedup.exclude
    if exclude and not Path(exclude).exists() and "://" not in exclude:
        raise InputError(f"config dedup.exclude: {exclude} does not exist")


def run(ctx: StageContext) -> StageResult:
    """Exact and near-duplicate clusters over pHash, one kept per cluster; eval overlap out."""
    cfg = ctx.config.dedup
    eval_hashes = (
        load_exclusion_hashes(cfg.exclude, ctx.config.annotate.draft_size) if cfg.exclude else []
    )
    annotations = ctx.read("annotate")
    decisions, figures = dedup_decisions(ctx.spark, annotations, eval_hashes, cfg)
    # Rows in counted apart from the decisions: a sample the plan lost breaks the identity.
    return ctx.write_decisions(decisions, DEDUP.names, figures, rows_in=annotations.count())
