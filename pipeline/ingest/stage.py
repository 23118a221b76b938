"""`curate ingest`: parquet in, `candidates/`, `ledger/ingest/` and `dropped_inputs/` out (run by
pipeline.runner)."""

from __future__ import annotations

import logging

from pipeline.config import Config, dump_yaml
from pipeline.files import write_text_atomically
from pipeline.ingest import plan
from pipeline.ingest.blocklists import load_blocklists
from pipeline.ingest.input_check import check_input
from pipeline.ingest.langid import resolve_model_path
from pipeline.runner import StageContext, StageResult
from schemas.tables import CANDIDATE_CORE

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None) -> None:
    """What ingest needs before any work: a readable input, the language-ID model and readable,
    well-formed blocklists."""
    resolve_model_path(config.ingest.langid_model)
    load_blocklists(config.ingest.blocklists)
    if input_path is not None:
        # Every file's footer, before the JVM starts and before the run directory is touched.
        check_input(str(input_path), config.ingest)


def run(ctx: StageContext) -> StageResult:
    """Read and map the input, decide every row, write candidates and the ledger."""
    input_path = str(ctx.input_path)
    df, extra = plan.read_input(ctx.spark, input_path, ctx.config.ingest)
    # Validated: the resolved config goes into the run directory (the report reads it back).
    write_text_atomically(ctx.run.config_file, dump_yaml(ctx.config))
    decisions = plan.decide({"input": df}, ctx.config)
    columns = [*CANDIDATE_CORE.names, *extra.names]
    # The dropped pairs as read, for the report: the ledger keeps only uid, reason and detail.
    dropped = (ctx.run.dropped_inputs, plan.dropped_input_columns(extra))
    return ctx.write_decisions(decisions, columns, figures={"input": input_path}, dropped=dropped)
