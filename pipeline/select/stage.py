"""`curate select`: dedup/ + annotations/ -> selection/ (the keep-list of uids) + ledger/select/.

Decisions only: no model runs here, so changing a threshold and running select again is cheap
(the CLIP thresholds are select's settings; the model that scored is annotate's).
"""

from __future__ import annotations

import logging

from pipeline.config import Config
from pipeline.errors import ConfigError
from pipeline.runner import StageContext, StageResult
from pipeline.select.plan import decide
from pipeline.select.rules import RULE_NAMES
from schemas.tables import SELECTION

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None = None) -> None:
    """Every rule of select.rules must exist before a run starts."""
    unknown = [r for r in config.select.rules if r not in RULE_NAMES]
    if unknown:
        raise ConfigError(
            f"config select.rules: unknown rule {unknown[0]!r} (rules: {', '.join(RULE_NAMES)})"
        )


def run(ctx: StageContext) -> StageResult:
    """Apply `select.rules` to the samples dedup kept."""
    inputs = {"dedup": ctx.read("dedup"), "annotations": ctx.read("annotate")}
    decisions = decide(inputs, ctx.config)
    log.info("select: rules %s", decisions.figures["rules"])
    return ctx.write_decisions(decisions, SELECTION.names)
