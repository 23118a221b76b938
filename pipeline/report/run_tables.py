"""The run directory's tables as Arrow, read with pyarrow on the driver (the report is a summary,
not a Spark stage): only the columns the report draws on are read."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.files import data_files
from pipeline.ledger import read_ledger
from pipeline.report.ground_truth import HEAD_COLUMNS
from pipeline.run_dir import RunDir
from pipeline.storage import StoragePath, arrow_filesystem, as_path

log = logging.getLogger(__name__)

# Where the demo leaves the planted truth of its synthetic web; a run without it has no
# precision/recall section.
GROUND_TRUTH = "web/ground_truth.parquet"
# Written by the demo's training comparison (pipeline/demo/compare.py).
COMPARISON = "comparison.json"


def read_parquet_dir(path: StoragePath, columns: list[str] | None = None) -> pa.Table | None:
    """All parquet files under `path` (Spark's _SUCCESS and dot files skipped), or None if absent.

    Columns that the table lacks are left out rather than failing: clip_score exists only when
    annotate scored with CLIP.
    """
    if not path.exists():
        return None
    files = data_files(path, "**/*.parquet")
    if not files:
        return None
    fs, _ = arrow_filesystem(path)
    paths = [arrow_filesystem(as_path(f))[1] for f in files]
    dataset = ds.dataset(paths, format="parquet", filesystem=fs)
    if columns is not None:
        columns = [c for c in columns if c in dataset.schema.names]
    return dataset.to_table(columns=columns)


@dataclass
class RunTables:
    """What the report reads from one run directory."""

    run: RunDir
    stats: dict[str, Any]
    ledger: pa.Table
    candidates: pa.Table | None
    annotations: pa.Table | None
    selection: pa.Table | None  # the keep-list that goes into the shards
    dedup: pa.Table | None  # dedup's kept samples (uid only)
    comparison: dict[str, Any] | None

    @property
    def ground_truth_path(self) -> StoragePath:
        return self.run.root / GROUND_TRUTH


def load_run_tables(run_dir: StoragePath | str) -> RunTables:
    """Read stats, ledger and the stage outputs the report needs."""
    run = RunDir(as_path(run_dir))
    comparison_path = run.root / COMPARISON
    comparison = json.loads(comparison_path.read_text()) if comparison_path.is_file() else None
    return RunTables(
        run=run,
        stats=run.stats(),
        ledger=read_ledger(run.ledger),
        candidates=read_parquet_dir(run.candidates, ["uid", "url", "caption", "lang"]),
        annotations=read_parquet_dir(
            run.annotations,
            [
                "uid",
                "shard",
                "offset",
                "image_bytes",
                "width",
                "height",
                "original_width",
                "original_height",
                "phash",
                "clip_score",
                # The heads named after a planted kind, scored against the truth (if present).
                *HEAD_COLUMNS,
            ],
        ),
        # The final keep-list: balance's when it ran (it keeps a subset of the selection).
        selection=read_parquet_dir(
            run.balanced if run.balanced.is_dir() else run.selection, ["uid", "clip_score"]
        ),
        dedup=read_parquet_dir(run.dedup, ["uid"]),
        comparison=comparison,
    )
