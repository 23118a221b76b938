"""The uid, url and caption of every input row, from what ingest wrote: candidates/ for the rows
it kept and dropped_inputs/ for those it dropped (the ledger keeps only uid, reason and detail),
so the report can show the captions of ingest's drops and match every row to a ground truth
without the input or ingest's code."""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.files import data_files
from pipeline.run_dir import RunDir
from pipeline.storage import StoragePath, arrow_filesystem, as_path

log = logging.getLogger(__name__)

# The report reads these rows into one process: beyond this many input rows it leaves the
# captions of ingest drops (and the ground-truth tables) out.
MAX_INPUT_ROWS = 2_000_000
# Input columns carried along when present (the demo's link to its truth).
CARRIED = ("gt_id",)
COLUMNS = ("uid", "url", "caption", "reason")


def _dataset(folder: StoragePath) -> ds.Dataset | None:
    if not folder.exists():
        return None
    files = data_files(folder, "**/*.parquet")
    if not files:
        return None
    fs, _ = arrow_filesystem(folder)
    return ds.dataset(
        [arrow_filesystem(as_path(f))[1] for f in files], format="parquet", filesystem=fs
    )


def input_pairs(run: RunDir) -> pa.Table | None:
    """(uid, url, caption, reason, and `gt_id` when the input had it) per input row, kept ones
    with a null reason; None when ingest wrote no dropped_inputs/ (a run directory written
    before it did) or the input had more than MAX_INPUT_ROWS rows."""
    kept, dropped = _dataset(run.candidates), _dataset(run.dropped_inputs)
    if dropped is None and not run.dropped_inputs.exists():
        log.info(
            "report: %s is missing, ingest drops are shown without captions", run.dropped_inputs
        )
        return None
    parts = [d for d in (kept, dropped) if d is not None]
    rows = sum(d.count_rows() for d in parts)
    if rows > MAX_INPUT_ROWS:
        log.info(
            "report: %d input rows (> %d), ingest drops without captions", rows, MAX_INPUT_ROWS
        )
        return None
    carried = [c for c in CARRIED if all(c in d.schema.names for d in parts)]
    tables = []
    for dataset in parts:
        names = [c for c in (*COLUMNS, *carried) if c in dataset.schema.names]
        table = dataset.to_table(columns=names)
        if "reason" not in names:  # candidates/: every row kept
            table = table.append_column("reason", pa.nulls(table.num_rows, pa.string()))
        tables.append(table.select([*COLUMNS, *carried]))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")
