"""`stats.json`: the funnel of the run, one entry per completed stage, and its text summary.
It imports no command: the runner records through it, and the CLI asks each command for its lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pipeline.files import write_text_atomically
from pipeline.ledger import check_identity
from pipeline.run_dir import RunDir
from pipeline.stages import STAGE_NAMES


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
        for s in STAGE_NAMES
        if s in stats["stages"]
    ]
    write_text_atomically(run.stats_file, json.dumps(stats, indent=2) + "\n")
    return entry


def summary_lines(stats: dict[str, Any]) -> list[str]:
    """A short text table of the funnel and the drops per reason code (a comparison's table is
    compare's: `pipeline.compare.run_compare.table_lines`)."""
    lines = [f"{'stage':<10} {'rows in':>9} {'kept':>9} {'dropped':>9}"]
    for stage, entry in stats.get("stages", {}).items():
        lines.append(
            f"{stage:<10} {entry['rows_in']:>9} {entry['rows_kept']:>9} {entry['rows_dropped']:>9}"
        )
    lines.append("")
    lines.append(f"{'reason':<34} {'rows':>6}")
    for entry in stats.get("stages", {}).values():
        for reason, n in entry["dropped_by_reason"].items():
            lines.append(f"{reason:<34} {n:>6}")
    return lines
