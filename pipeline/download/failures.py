"""img2dataset's failed rows as ledger rows: per Arrow batch, and per shard, in the download
process right after the shard is written (`pipeline.download.runner`) or, for a shard that has
no part, in the tasks of the ledger's Spark job (`pipeline.download.plan`). Both read the shard's
parquet and write its ledger part through the filesystem API (any fsspec store: no Hadoop
connector needed), with the shard's rows per reason in the part's footer, so the ledger of a
billion candidates never passes through the driver: it reads one footer a shard."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.download.reasons import classify_batch
from pipeline.ledger import count_by_reason, write_ledger_part
from pipeline.storage import StoragePath, arrow_filesystem, as_path
from schemas.tables import LEDGER

STAGE = "download"
# The ledger keeps the start of img2dataset's message: enough to tell one failure from another,
# bounded so that a pathological message (a whole HTML error page) cannot bloat the ledger.
DETAIL_CHARS = 500


@dataclass(frozen=True)
class LedgerCounts:
    """What the ledger job found: shard rows read, successes among them, ledger rows per reason."""

    rows: int
    successes: int
    dropped: dict[str, int]


def ledger_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Ledger rows (uid, stage, reason, detail) for a batch of failed shard rows (uid, status,
    error_message): the reason from the status and message, the detail the message's start."""
    message = batch.column("error_message")
    detail = pc.utf8_slice_codeunits(pc.fill_null(message, ""), 0, DETAIL_CHARS)
    return pa.RecordBatch.from_arrays(
        [
            batch.column("uid"),
            pa.array([STAGE] * batch.num_rows, pa.string()),
            classify_batch(batch.column("status"), message),
            detail,
        ],
        schema=LEDGER,
    )


def ledger_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """`ledger_batch` over a stream of batches (the shape mapInArrow calls)."""
    for batch in batches:
        yield ledger_batch(batch)


# What each shard task reports: rows per reason code, a null reason counting the successes.
SHARD_COUNTS = pa.schema([pa.field("reason", pa.string()), pa.field("rows", pa.int64())])
# img2dataset's per-row status of a downloaded, resized and written image.
SUCCESS = "success"


def shard_failures(path: str) -> tuple[int, pa.Table]:
    """One shard's parquet (a path or URL): its success count and its ledger rows."""
    fs, inner = arrow_filesystem(as_path(path))
    table = pq.read_table(inner, columns=["uid", "status", "error_message"], filesystem=fs)
    # A null status is a failure, never a silent drop: `status != 'success'` is null there.
    ok = pc.fill_null(pc.equal(table.column("status"), SUCCESS), False)
    failed = table.filter(pc.invert(ok))
    rows = [ledger_batch(b) for b in failed.to_batches()]
    return table.num_rows - failed.num_rows, pa.Table.from_batches(rows, schema=LEDGER)


# The footer key of a shard's ledger part holding its rows per reason ("" counts the successes).
COUNTS_KEY = b"curate.download.counts"


def write_shard_ledger(ledger: StoragePath, path: str) -> dict[str | None, int]:
    """One shard's ledger part written whole to `ledger/<shard>.parquet` (a rerun writes the
    same file again), its rows per reason (None: successes) in the footer and returned."""
    successes, rows = shard_failures(path)
    shard = as_path(path).name.removesuffix(".parquet")
    counts = {None: successes, **count_by_reason(rows)}
    footer = {COUNTS_KEY: json.dumps({k or "": v for k, v in counts.items()}).encode()}
    write_ledger_part(ledger, shard, rows, footer)
    return counts


def read_shard_counts(ledger: StoragePath, shard: str) -> dict[str | None, int] | None:
    """The rows per reason a shard's ledger part records in its footer; None when the shard has
    no part, or one written without counts (an older run)."""
    part = ledger / f"{shard}.parquet"
    if not part.exists():
        return None
    fs, inner = arrow_filesystem(part)
    metadata = pq.read_schema(inner, filesystem=fs).metadata or {}
    if COUNTS_KEY not in metadata:
        return None
    return {k or None: int(v) for k, v in json.loads(metadata[COUNTS_KEY]).items()}


def ledger_counts(by_reason: Mapping[str | None, int]) -> LedgerCounts:
    """LedgerCounts from rows per reason, None counting the successes."""
    dropped = {k: v for k, v in by_reason.items() if k is not None}
    successes = by_reason.get(None, 0)
    return LedgerCounts(successes + sum(dropped.values()), successes, dict(sorted(dropped.items())))


def write_shard_ledgers(ledger: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """For each shard path of the batches: its ledger part (`write_shard_ledger`), and its rows
    per reason reported."""
    folder = as_path(ledger)
    for batch in batches:
        for path in batch.column("path").to_pylist():
            counts = write_shard_ledger(folder, path)
            yield pa.RecordBatch.from_pydict(
                {"reason": list(counts), "rows": list(counts.values())}, schema=SHARD_COUNTS
            )
