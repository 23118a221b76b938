"""The arithmetic of MetaCLIP balancing (Xu et al. 2023, Algorithm 1), numpy only: each entry's
keep probability from its match count, a sample's keep probability over its matched entries, the
deterministic uniform draw of a sample from (seed, uid), the automatic cap `t`, and the compact
summaries of an entry count table that stats.json and the report show."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

# MetaCLIP curates its 400M-pair dataset with t = 20,000 (Xu et al. 2023, section 3.4): an entry
# matched more often than that is a head entry. With `balance.t: 0` the cap scales linearly with
# the pool balanced: t = round(rows * 20,000 / 400M) = round(rows / 20,000), at least 1.
METACLIP_T = 20_000
METACLIP_POOL = 400_000_000
# Below one match an entry cannot be capped: every entry with a single match keeps it.
MIN_T = 1


def auto_t(pool_rows: int) -> int:
    """MetaCLIP's t = 20,000 at 400M, scaled linearly to `pool_rows`, rounded, at least 1."""
    scaled = (pool_rows * METACLIP_T * 2 + METACLIP_POOL) // (2 * METACLIP_POOL)  # round half up
    return max(MIN_T, int(scaled))


def entry_probabilities(counts: np.ndarray, t: int) -> np.ndarray:
    """Per entry: t / count for a head entry (count > t), else 1 (a tail entry is kept whole;
    MetaCLIP counts an entry under t as t). Entries never matched get 1 too (never used)."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.minimum(1.0, t / np.maximum(counts, 1.0))


def keep_probabilities(offsets: np.ndarray, entry_ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per row of a list column (`offsets`, flat `entry_ids`): 1 - prod(1 - p_e) over the row's
    matched entries, the chance that at least one of MetaCLIP's per-entry draws keeps it; 0 for a
    row that matches nothing."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n = len(offsets) - 1
    out = np.zeros(n, dtype=np.float64)
    if n <= 0:
        return out
    # A sliced Arrow list array's values may run past its own rows: take just theirs.
    ids = np.asarray(entry_ids, dtype=np.int64)[offsets[0] : offsets[-1]]
    if len(ids) == 0:
        return out
    miss = 1.0 - probs[ids]
    sizes = np.diff(offsets)
    matched = sizes > 0
    # reduceat over the start of every non-empty row: a product of that row's factors, in order.
    out[matched] = 1.0 - np.multiply.reduceat(miss, offsets[:-1][matched] - offsets[0])
    return out


def uniform_draws(uids: Sequence[str], seed: int) -> np.ndarray:
    """One number in [0, 1) per uid from blake2b of "seed:uid": the same on every run and for any
    partitioning, independent of the row's neighbours (53 bits, as a float64 holds)."""
    prefix = f"{seed}:".encode()
    out = np.empty(len(uids), dtype=np.float64)
    for i, uid in enumerate(uids):
        digest = hashlib.blake2b(prefix + uid.encode(), digest_size=8).digest()
        out[i] = (int.from_bytes(digest, "big") >> 11) * 2.0**-53
    return out


def log2_buckets(counts: np.ndarray) -> np.ndarray:
    """floor(log2(count)) of every count >= 1 (bucket k holds counts 2^k .. 2^(k+1) - 1)."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.floor(np.log2(counts[counts > 0])).astype(np.int64)


def count_histogram(before: np.ndarray, after: np.ndarray) -> list[dict[str, int]]:
    """Entries per log2 count bucket before and after balancing, with their matches (a row per
    bucket that holds an entry before or after)."""
    before = np.asarray(before, dtype=np.int64)
    after = np.asarray(after, dtype=np.int64)
    rows = []
    top = int(log2_buckets(before).max()) if (before > 0).any() else -1
    for k in range(top + 1):
        lo, hi = 1 << k, (1 << (k + 1)) - 1
        in_before = (before >= lo) & (before <= hi)
        in_after = (after >= lo) & (after <= hi)
        if not (in_before.any() or in_after.any()):
            continue
        rows.append(
            {
                "bucket": k,
                "lo": lo,
                "hi": hi,
                "entries_before": int(in_before.sum()),
                "entries_after": int(in_after.sum()),
                "matches_before": int(before[in_before].sum()),
                "matches_after": int(after[in_after].sum()),
            }
        )
    return rows


def rank_curve(before: np.ndarray, after: np.ndarray) -> list[dict[str, int]]:
    """Counts at log-spaced ranks (1, 2, 4, ... and the last matched rank) of the entries sorted
    by count, before and after, each sorted on its own: MetaCLIP's head-vs-tail picture in a few
    dozen points whatever the size of the entry list."""
    b = np.sort(np.asarray(before, dtype=np.int64)[np.asarray(before) > 0])[::-1]
    a = np.sort(np.asarray(after, dtype=np.int64)[np.asarray(after) > 0])[::-1]
    if len(b) == 0:
        return []
    ranks = sorted({*(1 << k for k in range(int(np.log2(len(b))) + 1)), len(b)})
    return [
        {"rank": r, "before": int(b[r - 1]), "after": int(a[r - 1]) if r <= len(a) else 0}
        for r in ranks
    ]


def distribution(
    before: np.ndarray, after: np.ndarray, t: int, entries: Sequence[str], top: int = 10
) -> dict[str, Any]:
    """The entry count distribution before and after, compact: head and tail totals, the
    log2 histogram, the rank curve and the `top` most matched entries (bounded by the entry
    list, never by the pool)."""
    before = np.asarray(before, dtype=np.int64)
    after = np.asarray(after, dtype=np.int64)
    head = before > t
    tail = (before > 0) & ~head
    order = np.argsort(-before, kind="stable")[: min(top, int((before > 0).sum()))]
    return {
        "head": {
            "entries": int(head.sum()),
            "matches_before": int(before[head].sum()),
            "matches_after": int(after[head].sum()),
        },
        "tail": {
            "entries": int(tail.sum()),
            "matches_before": int(before[tail].sum()),
            "matches_after": int(after[tail].sum()),
        },
        "histogram": count_histogram(before, after),
        "rank_curve": rank_curve(before, after),
        "top": [
            {"entry": entries[i], "before": int(before[i]), "after": int(after[i])} for i in order
        ],
    }
