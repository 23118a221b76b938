"""`curate shard`: the final keep-list (balanced/, the output of the stage shard needs) +
downloads/ -> shards/ (LAION-style webdataset) + sizes.json."""

from __future__ import annotations

import json
import logging

from pipeline.files import write_text_atomically
from pipeline.runner import StageContext, StageResult
from pipeline.shard.plan import selected_samples, write_shards

log = logging.getLogger(__name__)


def run(ctx: StageContext) -> StageResult:
    """Write every selected sample once; shards complete from a killed run are not rewritten."""
    # The keep-list is the output of the stage before shard in the registry (balance).
    keep = ctx.stage.needs or "balance"
    samples = selected_samples(ctx.read(keep), ctx.read("annotate"), ctx.folder("download"))
    results = write_shards(samples, ctx.config.shard, ctx.output, ctx.folder("download"))
    # open_clip's trainer reads the dataset size from sizes.json (no --train-num-samples).
    sizes = {f"{r['shard']}.tar": r["count"] for r in results}
    write_text_atomically(
        ctx.output / "sizes.json", json.dumps(sizes, indent=2, sort_keys=True) + "\n"
    )
    rows_in = ctx.stats_entry(keep)["rows_kept"]
    megabytes = sum(r["bytes"] for r in results) / 1e6
    log.info(
        "shard: %d samples in %d shards (%.1f MB)", sum(sizes.values()), len(results), megabytes
    )
    return StageResult(
        rows_in, sum(sizes.values()), {}, {"shards": len(results), "megabytes": round(megabytes, 3)}
    )
