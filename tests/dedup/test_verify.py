"""In-memory search of shuffle buckets without Spark: exact recall against brute force on random
and clustered hashes at radii 0, 3, 6, 8 (each pair once), cross-set pairs, giant groups
compared in blocks and counted, buckets spanning input batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.dedup import verify
from pipeline.dedup.bands import plan_index
from pipeline.dedup.verify import (
    SPLIT,
    STAT_BLOCKED,
    STAT_SPLITS,
    Found,
    brute_force_pairs,
    compact,
    search_batches,
    search_partition,
)


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64)


def family(rng: np.random.Generator, centre: int, size: int, max_flips: int) -> np.ndarray:
    """`size` hashes within max_flips bits of centre."""
    out = np.full(size, centre, np.int64).view(np.uint64)
    for i in range(size):
        for bit in rng.choice(64, int(rng.integers(0, max_flips + 1)), replace=False):
            out[i] ^= np.uint64(1) << np.uint64(bit)
    return out.view(np.int64)


def mixed(seed: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = random_hashes(rng, 4)
    parts = [random_hashes(rng, 2000)] + [family(rng, int(c), 150, k + 1) for c in centres]
    return np.concatenate(parts)


def index_pairs(left, right, k, max_bucket_size=1_000_000, partitions=1):
    """The in-memory search over the shuffle rows the plan would produce, in `partitions`
    hash partitions of the bucket key; pairs as a list (duplicates would show)."""
    nodes = np.unique(left)
    sides = np.zeros(len(nodes), np.int32)
    if right is not None:
        r = np.unique(right)
        nodes, sides = (
            np.concatenate([nodes, r]),
            np.concatenate([sides, np.ones(len(r), np.int32)]),
        )
    masks = plan_index(len(nodes), k, max_bucket_size).shuffle.masks
    table = np.repeat(np.arange(len(masks), dtype=np.int32) * SPLIT, len(nodes))
    key = np.concatenate([(nodes.view(np.uint64) & np.uint64(m)).view(np.int64) for m in masks])
    node, side = np.tile(nodes, len(masks)), np.tile(sides, len(masks))
    part = (key.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15) >> np.uint64(40)) % partitions
    found = Found(k, right is not None, max_bucket_size)
    for p in range(partitions):
        at = part == p
        search_partition(table[at], key[at], node[at], side[at], found, masks, {})
    if not found.a:
        return [], found.stats
    return list(
        zip(np.concatenate(found.a).tolist(), np.concatenate(found.b).tolist(), strict=True)
    ), found.stats


@pytest.mark.parametrize("k", [0, 3, 6, 8])
@pytest.mark.parametrize("kind", ["random", "clustered"])
def test_exact_recall_each_pair_once(k, kind):
    rng = np.random.default_rng(k)
    hashes = random_hashes(rng, 3000) if kind == "random" else mixed(k, k)
    if kind == "random":  # a few planted neighbours so that random input has pairs too
        hashes = np.concatenate([hashes, family(rng, int(hashes[0]), 20, k)])
    truth = brute_force_pairs(hashes, None, k)
    for partitions in (1, 3):
        pairs, _ = index_pairs(hashes, None, k, partitions=partitions)
        assert len(pairs) == len(set(pairs))
        assert set(pairs) == truth
    assert (len(truth) > 0) == (k > 0)  # distinct hashes: no pair at radius 0


@pytest.mark.parametrize("k", [0, 3, 6])
def test_cross_pairs_exact(k):
    rng = np.random.default_rng(10 + k)
    left = mixed(k, k)
    right = np.concatenate(
        [left[::9], family(rng, int(left[5]), 30, k + 2), random_hashes(rng, 300)]
    )
    pairs, _ = index_pairs(left, right, k)
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == brute_force_pairs(left, right, k)
    assert all(a in set(left.tolist()) and b in set(right.tolist()) for a, b in pairs)


def test_giant_family_is_split_or_blocked_never_skipped():
    rng = np.random.default_rng(5)
    hashes = np.concatenate([family(rng, 0x0123_4567_89AB_CDEF, 1500, 3), random_hashes(rng, 500)])
    pairs, stats = index_pairs(hashes, None, 6, max_bucket_size=100)
    assert set(pairs) == brute_force_pairs(hashes, None, 6)
    assert len(pairs) == len(set(pairs))
    assert stats.get(STAT_SPLITS, 0) + stats.get(STAT_BLOCKED, 0) > 0


@pytest.mark.parametrize(
    ("value", "mask", "packed"),
    [(0b1011_0110, 0b1111_0000, 0b1011), (0b1011_0110, 0b1001_0010, 0b111), (-1, 1 << 63, 1)],
)
def test_compact_packs_the_masked_bits(value, mask, packed):
    out = compact(np.array([value], np.int64).view(np.uint64), mask)
    assert out.tolist() == [packed]


def test_negative_hashes_compare_as_64_bits():
    hashes = np.array([-1, 0x7FFF_FFFF_FFFF_FFFF], np.int64)
    pairs, _ = index_pairs(hashes, None, 1)
    assert pairs == [(-1, 0x7FFF_FFFF_FFFF_FFFF)]


def test_a_bucket_split_over_batches_is_whole():
    schema = pa.schema(
        [("table", pa.int32()), ("key", pa.int64()), ("node", pa.int64()), ("side", pa.int32())]
    )
    first = pa.RecordBatch.from_pylist(
        [{"table": 0, "key": 0, "node": 8, "side": 0}], schema=schema
    )
    second = pa.RecordBatch.from_pylist(
        [{"table": 0, "key": 0, "node": 9, "side": 0}], schema=schema
    )
    out = pa.Table.from_batches(
        list(search_batches(iter([first, second]), 1, False, 10, (0xF0,), {}))
    ).to_pylist()
    assert [r for r in out if r["kind"] == 0] == [{"a": 8, "b": 9, "kind": 0}]


@pytest.mark.parametrize(
    ("sweep_group", "blocked"),
    [(4096, 0), (50, 1)],  # unsplit groups of 65-4096 rows are swept; larger ones blocked
)
@pytest.mark.parametrize("cross", [False, True])
def test_unsplit_large_groups_are_swept_or_blocked_exactly(
    monkeypatch, sweep_group, blocked, cross
):
    # The cost model leaves every group unsplit: a family of 300 within 3 bits of its centre
    # fills buckets far over SMALL_GROUP, which the sweep (or, over SWEEP_GROUP, the blocked
    # comparison) must search whole.
    rng = np.random.default_rng(21)
    hashes = np.concatenate([family(rng, 0x0F0F_1234_5678_9ABC, 300, 3), random_hashes(rng, 200)])
    right = np.concatenate([hashes[::7], family(rng, 0x0F0F_1234_5678_9ABC, 40, 2)])
    truth = brute_force_pairs(hashes, right if cross else None, 6)
    monkeypatch.setattr(verify, "group_cost", lambda *args, **kw: (0.0, 0))
    monkeypatch.setattr(verify, "SWEEP_GROUP", sweep_group)
    calls = []
    blocked_search = verify._blocked
    monkeypatch.setattr(
        verify, "_blocked", lambda nodes, *a: calls.append(len(nodes)) or blocked_search(nodes, *a)
    )
    pairs, stats = index_pairs(hashes, right if cross else None, 6)
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == truth
    assert stats.get(STAT_SPLITS, 0) == 0
    assert bool(calls) == bool(blocked)
    assert all(size > sweep_group for size in calls)
