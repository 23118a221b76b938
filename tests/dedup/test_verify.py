"""Bucket verification without Spark: exact pairs within the radius, cross-set pairs, the
oversized-bucket guard, buckets spanning input batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.dedup.verify import verify_batches, verify_partition


def _rows(entries):
    band, value, node, side = (np.array(c, dtype=np.int64) for c in zip(*entries, strict=True))
    return band, value, node, side


def test_pairs_within_a_set():
    # bucket (0, 5): nodes 0b0000, 0b0011 (distance 2), 0b1111 (distance 2 from 0b0011, 4 from 0)
    rows = _rows([(0, 5, 0b0000, 0), (0, 5, 0b0011, 0), (0, 5, 0b1111, 0), (1, 5, 0b0000, 0)])
    a, b, oversized = verify_partition(*rows, max_distance=2, cross=False, max_bucket_size=10)
    assert sorted(zip(a.tolist(), b.tolist(), strict=True)) == [(0b0000, 0b0011), (0b0011, 0b1111)]
    assert oversized == 0


def test_cross_pairs_only_join_left_to_right():
    rows = _rows([(0, 1, 0b0000, 0), (0, 1, 0b0001, 0), (0, 1, 0b0011, 1)])
    a, b, _ = verify_partition(*rows, max_distance=1, cross=True, max_bucket_size=10)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0b0001, 0b0011)]


def test_oversized_buckets_are_skipped_and_counted():
    rows = _rows([(0, 9, n, 0) for n in range(5)] + [(1, 2, 0, 0), (1, 2, 1, 0)])
    a, b, oversized = verify_partition(*rows, max_distance=64, cross=False, max_bucket_size=4)
    assert oversized == 1
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1)]


def test_negative_hashes_compare_as_64_bits():
    rows = _rows([(0, 0, -1, 0), (0, 0, 0x7FFF_FFFF_FFFF_FFFF, 0)])
    a, b, _ = verify_partition(*rows, max_distance=1, cross=False, max_bucket_size=10)
    assert (a.tolist(), b.tolist()) in (
        ([-1], [0x7FFF_FFFF_FFFF_FFFF]),
        ([0x7FFF_FFFF_FFFF_FFFF], [-1]),
    )


def test_a_bucket_split_over_batches_is_whole():
    schema = pa.schema(
        [("band", pa.int32()), ("value", pa.int64()), ("node", pa.int64()), ("side", pa.int32())]
    )
    first = pa.RecordBatch.from_pylist(
        [{"band": 0, "value": 3, "node": 8, "side": 0}], schema=schema
    )
    second = pa.RecordBatch.from_pylist(
        [{"band": 0, "value": 3, "node": 9, "side": 0}], schema=schema
    )
    out = pa.Table.from_batches(
        list(verify_batches(iter([first, second]), 1, False, 10))
    ).to_pylist()
    assert out == [{"a": 8, "b": 9, "oversized": False}]
