"""`stats.json`: the funnel of the run, one entry per completed stage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pipeline.ledger import check_identity
from pipeline.run_dir import STAGES, RunDir, write_text_atomically


def record_stage(
    run: RunDir,
    stage: str,
    rows_in: int,
    rows_kept: int,
    dropped: dict[str, int],
    seconds: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the accounting identity, then add the stage to stats.json (this marks it complete)."""
    check_identity(stage, rows_in, rows_kept, dropped)
    stats = run.stats()
    entry: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_kept": rows_kept,
        "rows_dropped": sum(dropped.values()),
        "dropped_by_reason": dict(sorted(dropped.items())),
        "seconds": round(seconds, 3),
        "completed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if extra:
        entry.update(extra)
    stats.setdefault("stages", {})[stage] = entry
    stats["funnel"] = [
        {
            "stage": s,
            "rows_in": stats["stages"][s]["rows_in"],
            "rows_kept": stats["stages"][s]["rows_kept"],
        }
        for s in STAGES
        if s in stats["stages"]
    ]
    write_text_atomically(run.stats_file, json.dumps(stats, indent=2) + "\n")
    return entry
