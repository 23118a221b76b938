"""`curate annotate`: downloads/ -> annotations/ (one row per image) + ledger/annotate/."""

from __future__ import annotations

import logging

import numpy as np

from pipeline.annotate.annotate_shard import head_fields
from pipeline.annotate.plan import decide, shard_table
from pipeline.clip.heads import loaded_heads
from pipeline.clip.models import embedding_width, load_clip
from pipeline.config import Config
from pipeline.download.stage import complete_shards
from pipeline.errors import ConfigError
from pipeline.runner import StageContext, StageResult
from schemas.tables import ANNOTATION, CLIP_COLUMNS

log = logging.getLogger(__name__)


def preflight(config: Config, input_path: str | None = None) -> None:
    """Load the CLIP weights and the heads once on the driver: bad weights, a head of the wrong
    width or a pickled head are exit 2, not a task error."""
    if config.annotate.heads and not config.clip.enabled:
        raise ConfigError(
            "config annotate.heads: the heads score CLIP embeddings; set clip.enabled"
        )
    if config.clip.enabled:
        model, _, _ = load_clip(config.clip.model, config.clip.pretrained, "cpu")
        width = embedding_width(model)
        for head in loaded_heads(config.annotate.heads):
            head.score(np.zeros((1, width), np.float32))  # the width checked, the output shape too


def run(ctx: StageContext) -> StageResult:
    """Annotate every downloaded sample (sizes, sha256, pHash, CLIP score when enabled)."""
    config = ctx.config
    downloads = ctx.folder("download")
    shards = complete_shards(downloads)
    decisions = decide({"shards": shard_table(ctx.spark, downloads, shards)}, config)
    columns = ANNOTATION.names
    if config.clip.enabled:
        columns += CLIP_COLUMNS.names + [f.name for f in head_fields(config.annotate.heads)]
    # Rows in: the samples the download stage kept (its identity was checked when it finished).
    rows_in = ctx.stats_entry("download")["rows_kept"]
    figures = {
        "shards": len(shards),
        # Which model produced clip_score: a threshold means nothing without it.
        "clip": {
            "enabled": config.clip.enabled,
            "model": config.clip.model,
            "pretrained": config.clip.pretrained,
        },
    }
    result = ctx.write_decisions(decisions, columns, rows_in=rows_in, figures=figures)
    if result.rows_kept + sum(result.dropped.values()) != rows_in:
        log.error("annotate: saw fewer or more samples than download reported (%d)", rows_in)
    return result
