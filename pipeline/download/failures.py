"""img2dataset's failed rows as ledger rows, one Arrow batch at a time (mapped by a Spark job in
`pipeline.download.plan`, so the ledger of a billion candidates never passes through the driver)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.download.reasons import classify_batch
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
