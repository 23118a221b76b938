"""The uid, normalised URL and caption of every input row, recomputed with ingest's own hygiene
function: the ledger keeps only uid and detail for rows ingest dropped, and the report wants to
show their captions and match them to a ground truth."""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import IngestConfig, ingest_columns
from pipeline.errors import InputError
from pipeline.ingest import hygiene
from pipeline.ingest.input_check import is_local, local_files

log = logging.getLogger(__name__)

# Re-running hygiene costs ~20 µs a row in one process: beyond this many input rows the report
# leaves captions of ingest drops out instead of spending minutes on them.
MAX_INPUT_ROWS = 2_000_000
# Input columns carried into the recovered table when present (the demo's link to its truth).
CARRIED = ("gt_id",)


def recover_input_pairs(input_path: str, cfg: IngestConfig) -> pa.Table | None:
    """(uid, url, caption, reason, and `gt_id` when the input has it) per input row, or None.

    None when the input is remote, gone, or larger than MAX_INPUT_ROWS.
    """
    if not input_path or not is_local(input_path):
        return None
    try:
        files = local_files(input_path)
    except InputError:
        log.info("report: input %s is gone, ingest drops are shown without captions", input_path)
        return None
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if rows > MAX_INPUT_ROWS:
        log.info(
            "report: input has %d rows (> %d), ingest drops without captions", rows, MAX_INPUT_ROWS
        )
        return None
    cols = ingest_columns(cfg)
    parts = []
    for file in files:
        table = pq.read_table(file)
        names = table.schema.names
        mapped = {
            hygiene.RAW_URL: table.column(cols["url_col"]),
            hygiene.RAW_CAPTION: table.column(cols["caption_col"]),
            hygiene.SOURCE_FILE: pa.array([file] * table.num_rows, pa.string()),
            hygiene.SOURCE_ROW: pa.array(range(table.num_rows), pa.int64()),
        }
        if cols["uid_col"] and cols["uid_col"] in names:
            mapped[hygiene.RAW_UID] = table.column(cols["uid_col"]).cast(pa.string())
        file_parts = [
            pa.Table.from_batches(
                [hygiene.apply_hygiene(chunk, cfg, pa.schema([]), with_tokens=False)]
            ).select(["uid", "url", "caption", "reason"])
            for chunk in pa.Table.from_pydict(mapped).to_batches(max_chunksize=65_536)
        ]
        if not file_parts:
            continue
        done = pa.concat_tables(file_parts)
        # apply_hygiene keeps every row in order, so the input's own columns line up.
        for name in CARRIED:
            if name in names:
                done = done.append_column(name, table.column(name).combine_chunks())
        parts.append(done)
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="default")
