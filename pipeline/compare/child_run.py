"""A selection's own run directory (`<run>/compare/<name>/`): the parent run's outputs up to
dedup linked in, with their stats.json entries, so that the runner reruns only select, balance
and shard under the selection's settings, and a change upstream in the parent shows as stale."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipeline import stages as registry
from pipeline.files import write_text_atomically
from pipeline.run_dir import RunDir

# The stages a selection shares with its parent run; everything after is its own.
SHARED_UNTIL = "dedup"


def shared_stages() -> list[registry.Stage]:
    names = [s.name for s in registry.STAGES]
    return list(registry.STAGES[: names.index(SHARED_UNTIL) + 1])


def _link(target: Path, link: Path) -> None:
    """A relative symlink `link` -> `target` (replacing a stale one)."""
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(os.readlink(link)) == Path(
            os.path.relpath(target, link.parent)
        ):
            return
        link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)


def child_run(parent: RunDir, name: str) -> RunDir:
    """The run directory of selection `name`, its shared stages in step with the parent's."""
    child = RunDir(parent.root / "compare" / name)
    child.root.mkdir(parents=True, exist_ok=True)
    parent_entries = parent.stats().get("stages", {})
    stats = child.stats()
    entries = stats.setdefault("stages", {})
    changed = False
    for stage in shared_stages():
        if stage.name not in parent_entries:
            raise RuntimeError(f"compare: {parent.root} has no complete {stage.name} stage")
        _link(parent.root / stage.output, child.root / stage.output)
        if parent.ledger_for(stage.name).is_dir():
            _link(parent.ledger_for(stage.name), child.ledger_for(stage.name))
        if entries.get(stage.name) != parent_entries[stage.name]:
            entries[stage.name] = parent_entries[stage.name]
            changed = True
    if changed:
        # The funnel is rebuilt from the entries by the next stage the runner records.
        write_text_atomically(child.stats_file, json.dumps(stats, indent=2) + "\n")
    return child
