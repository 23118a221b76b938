"""The run directory: where each stage's input and output live, and which stages are complete."""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def temporary_sibling(path: Path) -> Path:
    """A unique hidden name beside `path` (readers skip names starting with "."), for a file
    written in full and then renamed into place."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a temporary sibling, then rename it to `path`: readers see the old
    file or the whole new one, never half of it. The temporary goes if `write` fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> None:
    """Write text to a temporary sibling and rename it into place."""
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write bytes to a temporary sibling and rename it into place."""
    write_atomically(path, lambda tmp: tmp.write_bytes(data))


def is_data_file(path: Path) -> bool:
    """Spark's and our own convention: names starting with "." or "_" are markers, temporaries
    and metadata (_SUCCESS, _COMPLETE, .x.tmp), never data."""
    return not path.name.startswith((".", "_"))


def data_files(folder: Path, pattern: str = "*.parquet") -> list[str]:
    """The data files of a folder matching `pattern`, sorted, markers and temporaries left out."""
    return sorted(str(p) for p in folder.glob(pattern) if is_data_file(p))


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished temporary folder into place, replacing any leftover at `dst`."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
