"""`noop`: the keep-list of the stage it needs -> noop/ unchanged; every sample kept, nothing
in the ledger."""

from __future__ import annotations

from pipeline.runner import StageContext, StageResult
from tests.noop_stage.plan import decide


def run(ctx: StageContext) -> StageResult:
    selection = ctx.read(ctx.stage.needs or "balance")
    return ctx.write_decisions(decide({"selection": selection}, ctx.config), selection.columns)
