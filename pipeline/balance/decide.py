"""The balance stage's two passes over Arrow batches (Spark maps them, pipeline/balance/plan.py):
`match_batches` finds each caption's entries with the worker's Aho-Corasick automaton, and
`decide_batches` keeps or drops each sample from its entries' global counts and its own draw."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from pipeline.balance.kernels import entry_probabilities, keep_probabilities, uniform_draws
from pipeline.entry_match import matcher_for
from schemas.reasons import check
from schemas.tables import SELECTION

HEAD_ENTRY = check("balance.head_entry")
NO_ENTRY_MATCH = check("balance.no_entry_match")

ENTRY_IDS = pa.field("entry_ids", pa.list_(pa.int32()))
# Why a row was kept or dropped, for the stage's figures (never written to the output):
# kept because it matches a tail entry, kept by the draw, kept unmatched, or its reason.
KIND = pa.field("kind", pa.string())
KEPT_TAIL, KEPT_DRAW, KEPT_UNMATCHED = "tail_entry", "head_draw", "unmatched"

MATCHED = pa.schema([*SELECTION, ENTRY_IDS])
DECIDED = pa.schema(
    [
        *SELECTION,
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        ENTRY_IDS,
        KIND,
    ]
)


def match_batches(
    batches: Iterator[pa.RecordBatch], path: str, digest: str, mode: str
) -> Iterator[pa.RecordBatch]:
    """(uid, clip_score, caption) -> (uid, clip_score, entry_ids): the entries each caption
    contains as whole words (entry_match.mode). The automaton is built once per worker process
    (`matcher_for`)."""
    matcher = matcher_for(path, digest, mode)
    for batch in batches:
        ids = matcher.match_many(batch.column("caption").to_pylist())
        yield pa.record_batch(
            [
                batch.column("uid"),
                batch.column("clip_score").cast(pa.float32()),
                pa.array(ids, type=ENTRY_IDS.type),
            ],
            schema=MATCHED,
        )


def decide_batch(
    batch: pa.RecordBatch,
    counts: np.ndarray,
    t: int,
    seed: int,
    keep_unmatched: bool,
    entries: tuple[str, ...],
) -> pa.RecordBatch:
    """One batch of (uid, clip_score, entry_ids) decided: kept with probability
    1 - prod(1 - min(1, t / count_e)) by the row's own draw from (seed, uid)."""
    ids = batch.column("entry_ids")
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    offsets = ids.offsets.to_numpy()
    values = ids.values.to_numpy(zero_copy_only=False)
    probs = keep_probabilities(offsets, values, entry_probabilities(counts, t))
    draws = uniform_draws(batch.column("uid").to_pylist(), seed)
    sizes = np.diff(offsets)
    reasons: list[str | None] = []
    details: list[str | None] = []
    kinds: list[str] = []
    for i in range(batch.num_rows):
        if sizes[i] == 0:
            kept = keep_unmatched
            reasons.append(None if kept else NO_ENTRY_MATCH)
            details.append(None)
            kinds.append(KEPT_UNMATCHED if kept else NO_ENTRY_MATCH)
        elif probs[i] >= 1.0:
            reasons.append(None)
            details.append(None)
            kinds.append(KEPT_TAIL)
        elif draws[i] < probs[i]:
            reasons.append(None)
            details.append(None)
            kinds.append(KEPT_DRAW)
        else:
            row = values[offsets[i] : offsets[i + 1]]
            top = int(row[np.argmax(counts[row])])
            reasons.append(HEAD_ENTRY)
            details.append(
                f"keep probability {probs[i]:.4g} (t {t}) over {len(row)} head entries;"
                f" most matched {entries[top]!r} ({int(counts[top])})"
            )
            kinds.append(HEAD_ENTRY)
    return pa.record_batch(
        [
            batch.column("uid"),
            batch.column("clip_score"),
            pa.array(reasons, pa.string()),
            pa.array(details, pa.string()),
            ids,
            pa.array(kinds, pa.string()),
        ],
        schema=DECIDED,
    )


def decide_batches(
    batches: Iterator[pa.RecordBatch],
    counts: np.ndarray,
    t: int,
    seed: int,
    keep_unmatched: bool,
    path: str,
    digest: str,
    mode: str,
) -> Iterator[pa.RecordBatch]:
    """`decide_batch` over a partition; entry names (for the ledger's detail) come from the
    worker's cached matcher."""
    entries = matcher_for(path, digest, mode).entries
    for batch in batches:
        yield decide_batch(batch, counts, t, seed, keep_unmatched, entries)
