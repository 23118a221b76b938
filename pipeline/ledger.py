"""The ledger: one row per dropped pair (uid, stage, reason, detail), and the accounting identity
`rows in = rows kept + ledger rows` checked at the end of every stage."""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.files import data_files, write_atomically
from pipeline.storage import StoragePath, arrow_filesystem, as_path
from schemas.reasons import may_write
from schemas.tables import LEDGER


class AccountingError(RuntimeError):
    """A stage lost or duplicated rows: a bug, never bad input."""


def ledger_table(uids: list[str], stage: str, reasons: list[str], details: list) -> pa.Table:
    """Build ledger rows, refusing any reason code not declared in schemas/ for this stage."""
    for code in set(reasons):
        if not may_write(stage, code):
            raise KeyError(f"reason {code!r} is not a declared {stage} reason code")
    return pa.table(
        {"uid": uids, "stage": [stage] * len(uids), "reason": reasons, "detail": details},
        schema=LEDGER,
    )


def write_ledger_part(
    directory: StoragePath, name: str, table: pa.Table, metadata: dict[bytes, bytes] | None = None
) -> StoragePath:
    """Write one ledger part file atomically (temporary name, then rename); `metadata` goes into
    the file's schema (a footer read finds it without reading a row)."""
    table = table.cast(LEDGER)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    return write_atomically(directory / f"{name}.parquet", functools.partial(pq.write_table, table))


def read_ledger(path: StoragePath) -> pa.Table:
    """All ledger rows under a folder (one stage's, or the whole `ledger/`), read into memory:
    for tests and the report; a stage counts its ledger with Spark."""
    if not path.exists():
        return LEDGER.empty_table()
    files = data_files(path, "**/*.parquet")
    if not files:
        return LEDGER.empty_table()
    fs, _ = arrow_filesystem(path)
    paths = [arrow_filesystem(as_path(f))[1] for f in files]
    return ds.dataset(paths, schema=LEDGER, format="parquet", filesystem=fs).to_table()


def count_by_reason(table: pa.Table) -> dict[str, int]:
    """Ledger rows per reason code, sorted by code."""
    if table.num_rows == 0:
        return {}
    counts = pc.value_counts(table.column("reason")).to_pylist()
    return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}


def check_identity(stage: str, rows_in: int, rows_kept: int, dropped: dict[str, int]) -> None:
    """Raise AccountingError unless rows in = rows kept + rows dropped."""
    total = sum(dropped.values())
    if rows_in != rows_kept + total:
        raise AccountingError(
            f"{stage}: {rows_in} rows in but {rows_kept} kept + {total} in the ledger"
        )
