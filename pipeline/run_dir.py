"""The run directory: where each stage's input and output live, and which stages are complete."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pipeline.files import write_text_atomically
from pipeline.storage import StoragePath, refresh

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunDir:
    """Paths of one run: a local folder or a URL (pipeline.storage). Stages read the previous
    stage's folder and write their own."""

    root: StoragePath

    @property
    def candidates(self) -> StoragePath:
        return self.root / "candidates"

    @property
    def dropped_inputs(self) -> StoragePath:
        """The input pairs ingest dropped, as it read them (schemas.tables.DROPPED_INPUT)."""
        return self.root / "dropped_inputs"

    @property
    def downloads(self) -> StoragePath:
        return self.root / "downloads"

    @property
    def annotations(self) -> StoragePath:
        return self.root / "annotations"

    @property
    def dedup(self) -> StoragePath:
        return self.root / "dedup"

    @property
    def selection(self) -> StoragePath:
        return self.root / "selection"

    @property
    def balanced(self) -> StoragePath:
        return self.root / "balanced"

    @property
    def shards(self) -> StoragePath:
        return self.root / "shards"

    @property
    def ledger(self) -> StoragePath:
        return self.root / "ledger"

    @property
    def report(self) -> StoragePath:
        return self.root / "report"

    @property
    def config_file(self) -> StoragePath:
        return self.root / "config.yaml"

    @property
    def stats_file(self) -> StoragePath:
        return self.root / "stats.json"

    @property
    def work(self) -> StoragePath:
        """Scratch space for a stage in progress; removed when the stage completes."""
        return self.root / "_work"

    def ledger_for(self, stage: str) -> StoragePath:
        return self.ledger / stage

    def stats(self) -> dict[str, Any]:
        refresh(self.stats_file)  # written by whichever process ran the last stage
        if not self.stats_file.exists():
            return {"stages": {}}
        return json.loads(self.stats_file.read_text())

    def is_complete(self, stage: str) -> bool:
        """The stage has a stats.json entry (written last, atomically). Whether that entry
        still matches the settings is the runner's question (pipeline.runner.stage_state)."""
        return stage in self.stats().get("stages", {})

    def completed_entry(self, stage: str) -> dict[str, Any] | None:
        """The stage's stats.json entry, or None."""
        return self.stats().get("stages", {}).get(stage)

    def forget(self, stages: tuple[str, ...]) -> None:
        """Mark stages incomplete (their entries leave stats.json), so they run again."""
        stats = self.stats()
        entries = stats.get("stages", {})
        if any(s in entries for s in stages):
            for s in stages:
                entries.pop(s, None)
            stats["funnel"] = [f for f in stats.get("funnel", []) if f["stage"] in entries]
            write_text_atomically(self.stats_file, json.dumps(stats, indent=2) + "\n")

    def require(self, stage: str, command: str) -> None:
        """InputError unless `stage` is complete (the stage before the one being run)."""
        if not self.is_complete(stage):
            from pipeline.errors import InputError

            raise InputError(
                f"run directory {self.root}: no complete {stage} stage (run `curate {command}` first)"
            )
