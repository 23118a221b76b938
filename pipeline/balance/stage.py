"""`curate balance`: selection/ + candidates/ (the captions) -> balanced/ (the keep-list, the
selection's schema) + ledger/balance/. MetaCLIP balancing over `balance.entries`; without an
entry list every selected sample is kept, so a run without one shards what select kept."""

from __future__ import annotations

import logging

from pipeline.balance.plan import decide
from pipeline.config import Config
from pipeline.entry_match import entry_match_mode, read_entry_list
from pipeline.errors import InputError
from pipeline.runner import StageContext, StageResult
from schemas.tables import SELECTION

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None = None) -> None:
    """The entry list, when set, must be a readable UTF-8 file with at least one entry."""
    path = config.balance.entries
    if not path:
        return
    try:
        entries = read_entry_list(path, entry_match_mode(config, "balance"))
    except OSError as exc:
        raise InputError(f"balance.entries: cannot read {path} ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"balance.entries: {path} is not UTF-8 text ({exc.reason})") from exc
    if not entries.entries:
        raise InputError(
            f"balance.entries: {path} has no entries (one per line; blank lines skipped, and #"
            " lines in casefold mode)"
        )


def run(ctx: StageContext) -> StageResult:
    """Balance the samples select kept over the entry list."""
    preflight(ctx.config)
    inputs = {"select": ctx.read("select"), "candidates": ctx.read("ingest")}
    decisions = decide(inputs, ctx.config)
    if not decisions.figures["applied"]:
        log.info("balance: %s", decisions.figures["why"])
    return ctx.write_decisions(decisions, SELECTION.names)
