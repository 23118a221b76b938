"""The run directory: where each stage's input and output live, and which stages are complete."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.files import write_text_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunDir:
    """Paths of one run. Stages read the previous stage's folder and write their own."""

    root: Path

    @property
    def candidates(self) -> Path:
        return self.root / "candidates"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def annotations(self) -> Path:
        return self.root / "annotations"

    @property
    def dedup(self) -> Path:
        return self.root / "dedup"

    @property
    def selection(self) -> Path:
        return self.root / "selection"

    @property
    def balanced(self) -> Path:
        return self.root / "balanced"

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def stats_file(self) -> Path:
        return self.root / "stats.json"

    @property
    def work(self) -> Path:
        """Scratch space for a stage in progress; removed when the stage completes."""
        return self.root / "_work"

    def ledger_for(self, stage: str) -> Path:
        return self.ledger / stage

    def stats(self) -> dict[str, Any]:
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
