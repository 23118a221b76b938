"""`curate select`: dedup/ + annotations/ -> selection/ (the keep-list of uids) + ledger/select/.

Decisions only: no model runs here, so changing a threshold and running select again is cheap
(the CLIP thresholds are select's settings; the model that scored is annotate's).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Config
from pipeline.entry_match import entry_match_mode, read_entry_list
from pipeline.errors import ConfigError, InputError
from pipeline.runner import StageContext, StageResult
from pipeline.select.plan import decide
from pipeline.select.rules import RULE_NAMES
from schemas.tables import SELECTION

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None = None) -> None:
    """Every rule of select.rules must exist, with the files it reads, before a run starts."""
    rules = config.select.rules
    unknown = [r for r in rules if r not in RULE_NAMES]
    if unknown:
        raise ConfigError(
            f"config select.rules: unknown rule {unknown[0]!r} (rules: {', '.join(RULE_NAMES)})"
        )
    if "text_based" in rules and config.select.text_based.mode == "terms":
        terms = config.select.text_based.terms
        if not terms:
            raise ConfigError(
                "config select.rules has text_based but select.text_based.terms is empty"
            )
        if not Path(terms).is_file():
            raise InputError(f"select.text_based.terms {terms}: no such file")
        if not read_entry_list(terms, entry_match_mode(config, "select")).entries:
            raise InputError(f"select.text_based.terms {terms}: no terms in the file")
    if "image_based" in rules:
        reference = config.select.image_based.reference
        if not reference:
            raise ConfigError(
                "config select.rules has image_based but select.image_based.reference is empty"
            )
        if not Path(reference).exists():
            raise InputError(f"select.image_based.reference {reference}: no such file or folder")


def run(ctx: StageContext) -> StageResult:
    """Apply `select.rules` to the samples dedup kept."""
    inputs = {
        "dedup": ctx.read("dedup"),
        "annotations": ctx.read("annotate"),
        "candidates": ctx.read("ingest"),
    }
    decisions = decide(inputs, ctx.config)
    log.info("select: rules %s", decisions.figures["rules"])
    return ctx.write_decisions(decisions, SELECTION.names)
