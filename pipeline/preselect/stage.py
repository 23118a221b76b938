"""`curate preselect`: candidates/ -> preselected/ + ledger/preselect/.

DataComp's and LAION's pools ship scores with their URLs; rules that need only those
(select.pool: a CLIP cut on the pool's own CLIP column, lower and upper bounds) run here, so the
download fetches only the pairs they keep. With no select.pool rule set, every candidate passes.
"""

from __future__ import annotations

import logging

from pipeline.config import Config
from pipeline.preselect.plan import decide
from pipeline.runner import StageContext, StageResult

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None = None) -> None:
    """Nothing to load: the columns are checked against the candidates when the stage runs."""


def run(ctx: StageContext) -> StageResult:
    candidates = ctx.read("ingest")
    decisions = decide({"candidates": candidates}, ctx.config)
    log.info("preselect: %s", decisions.figures)
    return ctx.write_decisions(decisions, candidates.columns)
