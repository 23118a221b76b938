"""Block layouts and the index planner: the pigeonhole guarantee of every layout (nested ones
too), the table counts of Manku et al.'s scheme, and the planner's choices as n grows."""

from __future__ import annotations

import math
import random

import pytest

from pipeline.dedup.bands import FULL, Layout, block_masks, layouts, plan_index


@pytest.mark.parametrize(
    ("free", "blocks", "widths"),
    [
        (FULL, 1, [64]),
        (FULL, 4, [16, 16, 16, 16]),
        (FULL, 7, [10, 9, 9, 9, 9, 9, 9]),
        (0xFF00, 3, [3, 3, 2]),
    ],
)
def test_blocks_cover_the_free_bits(free, blocks, widths):
    masks = block_masks(free, blocks)
    assert [m.bit_count() for m in masks] == widths
    assert sum(masks) == free  # disjoint and covering


def test_blocks_reject_more_blocks_than_bits():
    with pytest.raises(ValueError):
        block_masks(0b111, 4)


@pytest.mark.parametrize(
    ("k", "blocks", "tables", "key_bits"),
    [(0, 1, 1, 64), (3, 4, 4, 16), (4, 5, 5, 12), (6, 7, 7, 9), (6, 8, 28, 16), (6, 9, 84, 21)],
)
def test_layout_tables_and_key_bits(k, blocks, tables, key_bits):
    layout = Layout(FULL, blocks, k)
    assert layout.tables == len(layout.masks) == tables == math.comb(blocks, k)
    assert min(layout.key_bits) == key_bits


@pytest.mark.parametrize("k", [0, 1, 3, 6, 8])
def test_every_pair_within_radius_agrees_on_a_table_at_every_level(k):
    rng = random.Random(k)
    first = layouts(FULL, k, 512)[-1]
    for _ in range(300):
        a = rng.getrandbits(64)
        b = a
        for bit in rng.sample(range(64), rng.randint(0, k)):
            b ^= 1 << bit
        agree = [m for m in first.masks if (a ^ b) & m == 0]
        assert agree
        free = FULL & ~agree[0]
        if free.bit_count() > k:  # a second, nested layout over the free bits
            nested = Layout(free, k + 1, k)
            assert any((a ^ b) & m == 0 for m in nested.masks)


@pytest.mark.parametrize(
    ("n", "k", "tables", "key_bits", "partitions"),
    [
        (10_000, 6, 7, 9, 1),
        (10_000_000, 6, 7, 9, 35),
        (2_000_000_000, 6, 28, 16, 28_000),
        (10_000_000, 4, 5, 12, 25),
        (2_000_000_000, 4, 5, 12, 5_000),
        (2_000_000_000, 3, 4, 16, 4_000),
        (1_000, 0, 1, 64, 1),
    ],
)
def test_plan_lengthens_keys_as_n_grows(n, k, tables, key_bits, partitions):
    plan = plan_index(n, k, max_bucket_size=1_000_000)
    assert plan.shuffle.tables == tables
    assert min(plan.shuffle.key_bits) == key_bits
    assert plan.partitions == partitions
    assert plan.shuffle_rows == n * tables
    assert plan.bucket_size <= 500_000
    assert f"{n:,} hashes, radius {k}" in plan.describe()


def test_plan_keeps_buckets_under_the_cap():
    small_cap = plan_index(10_000_000, 6, max_bucket_size=2_000)
    assert small_cap.shuffle.tables == 28
    assert small_cap.bucket_size == 10_000_000 / 2**16


def test_plan_names_the_layout_it_rejected_and_why():
    # Cheaper by the cost model: the runner-up is named with its ratio of core-seconds.
    plan = plan_index(1_000_000, 6, max_bucket_size=1_000_000)
    runner_up = plan_index(1_000_000, 6, max_bucket_size=2_000)  # 7 tables' buckets over 1,000
    ratio = runner_up.expected_seconds / plan.expected_seconds
    assert plan.rejected == (
        f"28 tables of 16 key bits ({runner_up.expected_seconds:,.1f} core-seconds, expected "
        f"bucket 15.3, in memory 1 table): {ratio:.2f}x the expected core-seconds"
    )
    assert plan.describe().endswith(f"; rejected {plan.rejected}")
    # Only the largest layout (462 tables, keys of 25+ bits) keeps 2B hashes' buckets under
    # 100: the runner-up, the cheapest of the others, is named with its bucket against the cap.
    capped = plan_index(2_000_000_000, 6, max_bucket_size=200)
    assert capped.shuffle.tables == 462
    assert capped.rejected.startswith("7 tables of 9 key bits (")
    assert capped.rejected.endswith("): expected bucket 3,906,250 over 100")


def test_expected_seconds_add_the_fixed_and_per_hash_costs():
    from pipeline.dedup import bands

    small, large = plan_index(1_000, 6, 1_000_000), plan_index(1_000_000, 6, 1_000_000)
    assert small.expected_seconds >= bands.SEARCH_FIXED_S + 1_000 * bands.NODE_S
    shuffle = bands.SEARCH_FIXED_S + 1_000_000 * (bands.NODE_S + 7 * bands.SHUFFLE_ROW_S)
    assert shuffle < large.expected_seconds < 2 * shuffle
