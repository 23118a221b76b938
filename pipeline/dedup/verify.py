"""Verify candidate pairs inside band buckets with vectorised XOR + popcount: the rows of one
bucket share a band value, and only pairs within the radius come out (never all candidates)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

PAIRS = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("oversized", pa.bool_())])
_BLOCK = 1024


def _bucket_pairs(nodes: np.ndarray, sides: np.ndarray, max_distance: int, cross: bool):
    """(a, b) index pairs within one bucket: a < b within one set, or left x right across."""
    if cross:
        left, right = np.nonzero(sides == 0)[0], np.nonzero(sides == 1)[0]
    else:
        left = right = np.arange(len(nodes))
    if len(left) == 0 or len(right) == 0:
        return [], []
    values = nodes.view(np.uint64)
    out_a, out_b = [], []
    for start in range(0, len(left), _BLOCK):
        rows = left[start : start + _BLOCK]
        close = np.bitwise_count(values[rows][:, None] ^ values[right][None, :]) <= max_distance
        i, j = np.nonzero(close)
        a, b = rows[i], right[j]
        if not cross:
            keep = a < b
            a, b = a[keep], b[keep]
        out_a.append(nodes[a])
        out_b.append(nodes[b])
    return out_a, out_b


def verify_partition(
    band: np.ndarray,
    value: np.ndarray,
    node: np.ndarray,
    side: np.ndarray,
    max_distance: int,
    cross: bool,
    max_bucket_size: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """All verified pairs of the buckets in these rows (any order), and the oversized count."""
    order = np.lexsort((node, value, band))
    band, value, node, side = band[order], value[order], node[order], side[order]
    starts = np.flatnonzero(np.r_[True, (band[1:] != band[:-1]) | (value[1:] != value[:-1])])
    ends = np.r_[starts[1:], len(band)]
    out_a, out_b, oversized = [], [], 0
    for s, e in zip(starts, ends, strict=True):
        if e - s < 2:
            continue
        if e - s > max_bucket_size:
            oversized += 1
            continue
        a, b = _bucket_pairs(node[s:e], side[s:e], max_distance, cross)
        out_a += a
        out_b += b
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), oversized
    return np.concatenate(out_a), np.concatenate(out_b), oversized


def verify_batches(
    batches: Iterator[pa.RecordBatch], max_distance: int, cross: bool, max_bucket_size: int
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body over rows (band, value, node, side) partitioned by (band, value).

    A partition's rows are gathered first: a bucket may span Arrow batches. The partition is a
    slice of the hash table (three integers a row), sized by the number of partitions.
    """
    table = pa.Table.from_batches(list(batches))
    if table.num_rows == 0:
        return
    cols = [table.column(c).to_numpy() for c in ("band", "value", "node", "side")]
    a, b, oversized = verify_partition(*cols, max_distance, cross, max_bucket_size)
    if len(a):
        yield pa.RecordBatch.from_arrays(
            [pa.array(a), pa.array(b), pa.array(np.zeros(len(a), bool))], schema=PAIRS
        )
    if oversized:
        marks = np.full(oversized, -1, np.int64)
        yield pa.RecordBatch.from_arrays(
            [pa.array(marks), pa.array(marks), pa.array(np.ones(oversized, bool))], schema=PAIRS
        )
