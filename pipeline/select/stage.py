"""`curate select`: dedup/ + annotations/ -> selection/ (the keep-list of uids) + ledger/select/.

Decisions only: no model runs here, so changing a threshold and running select again is cheap
(the CLIP thresholds are select's settings; the model that scored is annotate's).
"""

from __future__ import annotations

import logging

from pipeline.runner import StageContext, StageResult
from pipeline.select.plan import select_decisions
from schemas.tables import SELECTION

log = logging.getLogger(__name__)


def run(ctx: StageContext) -> StageResult:
    """Apply `select.rules` to the samples dedup kept."""
    decisions, figures = select_decisions(ctx.read("dedup"), ctx.read("annotate"), ctx.config)
    result = ctx.write_decisions(decisions, SELECTION.names, figures)
    log.info("select: rules %s", figures["rules"])
    return result
