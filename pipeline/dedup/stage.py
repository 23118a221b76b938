"""`curate dedup`: annotations/ -> dedup/ (kept samples with their cluster) + ledger/dedup/."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Config
from pipeline.dedup.blocklists import load_image_blocklists
from pipeline.dedup.plan import blocklist_frames, decide, exclusion_hashes
from pipeline.dedup.semantic.eval_set import eval_embeddings
from pipeline.errors import InputError
from pipeline.runner import StageContext, StageResult
from schemas.tables import DEDUP

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None = None) -> None:
    """The evaluation images of dedup.exclude, and readable, well-formed image blocklists, before
    a run starts."""
    load_image_blocklists(config.dedup.blocklists)
    exclude = config.dedup.exclude
    if exclude and not Path(exclude).exists() and "://" not in exclude:
        raise InputError(f"config dedup.exclude: {exclude} does not exist")


def run(ctx: StageContext) -> StageResult:
    """Exact and near-duplicate clusters over pHash, then semantic duplicates over CLIP image
    embeddings, one kept per group; eval overlap (pHash and embedding) out."""
    config = ctx.config
    annotations = ctx.read("annotate")
    inputs = {"annotations": annotations}
    if config.dedup.exclude:
        # Read by Spark (a parquet of hashes never passes through the driver).
        inputs["exclude"] = exclusion_hashes(
            ctx.spark, config.dedup.exclude, config.annotate.draft_size
        )
        if config.dedup.semantic.enabled and "image_embedding" in annotations.columns:
            embedded = eval_embeddings(config.dedup.exclude, config.clip)
            if embedded is not None:
                inputs["exclude_embeddings"] = ctx.spark.createDataFrame(embedded)
    if config.dedup.blocklists:
        lists = load_image_blocklists(config.dedup.blocklists)
        blocked = blocklist_frames(ctx.spark, lists)
        if blocked is not None:
            inputs["blocked"] = blocked
    decisions = decide(inputs, config)
    # Rows in counted apart from the decisions: a sample the plan lost breaks the identity.
    return ctx.write_decisions(decisions, DEDUP.names, rows_in=annotations.count())
