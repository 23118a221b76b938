"""MetaCLIP balancing arithmetic: entry and sample keep probabilities, the automatic t, the
deterministic draw, one batch decided with its reason codes, and the compact distribution."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.balance.decide import decide_batch
from pipeline.balance.kernels import (
    auto_t,
    distribution,
    entry_probabilities,
    keep_probabilities,
    uniform_draws,
)

# (pool rows, t): t = round(rows * 20,000 / 400M), at least 1 (MetaCLIP: 20k at 400M).
AUTO_T = [
    (400_000_000, 20_000),
    (2_500_000_000, 125_000),
    (1_000_000, 50),
    (30_000, 2),  # 1.5 rounds half up
    (29_999, 1),
    (10_000, 1),  # 0.5 -> 1 (half up, and the floor)
    (0, 1),
]


@pytest.mark.parametrize(("rows", "t"), AUTO_T)
def test_auto_t_scales_metaclip_linearly_with_a_floor_of_one(rows, t):
    assert auto_t(rows) == t


# counts per entry (id = position), t = 10
COUNTS = np.array([0, 5, 10, 11, 40, 100])
T = 10

# (matched entry ids of a sample, its keep probability)
KEEP = [
    ([1], 1.0),  # count <= t: a tail entry is kept whole
    ([2], 1.0),  # count == t is still tail
    ([3], 10 / 11),
    ([4], 0.25),
    ([5], 0.1),
    ([4, 5], 1 - (1 - 0.25) * (1 - 0.1)),  # 0.325
    ([3, 4, 5], 1 - (1 - 10 / 11) * (1 - 0.25) * (1 - 0.1)),
    ([4, 1], 1.0),  # one tail entry keeps the sample
    ([], 0.0),  # no entry: not drawn (the reason depends on balance.keep_unmatched)
]


KEEP_BY_IDS = [(tuple(ids), p) for ids, p in KEEP]


def test_entry_probabilities_cap_head_entries_at_t_over_count():
    assert entry_probabilities(COUNTS, T).tolist() == [1.0, 1.0, 1.0, 10 / 11, 0.25, 0.1]


@pytest.mark.parametrize(("ids", "p"), KEEP)
def test_a_samples_keep_probability_is_one_minus_the_product_over_its_entries(ids, p):
    column = pa.array([ids], pa.list_(pa.int32()))
    got = keep_probabilities(
        column.offsets.to_numpy(), column.values.to_numpy(), entry_probabilities(COUNTS, T)
    )
    assert got.tolist() == [pytest.approx(p, rel=1e-12, abs=0)]


def test_keep_probabilities_of_a_sliced_column_and_of_many_rows_at_once():
    column = pa.array([ids for ids, _ in KEEP], pa.list_(pa.int32()))
    probs = entry_probabilities(COUNTS, T)
    whole = keep_probabilities(column.offsets.to_numpy(), column.values.to_numpy(), probs)
    assert whole.tolist() == pytest.approx([p for _, p in KEEP], rel=1e-12)
    part = column.slice(3, 4)  # its offsets start past 0, its values are the whole column's
    sliced = keep_probabilities(part.offsets.to_numpy(), part.values.to_numpy(), probs)
    assert sliced.tolist() == pytest.approx([p for _, p in KEEP[3:7]], rel=1e-12)


def test_draws_are_deterministic_uniform_and_independent_of_their_neighbours():
    uids = [f"{i:032x}" for i in range(100_000)]
    draws = uniform_draws(uids, seed=0)
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert np.array_equal(uniform_draws(uids[::-1], seed=0), draws[::-1])
    assert np.array_equal(uniform_draws(uids[5:9], seed=0), draws[5:9])
    assert not np.array_equal(uniform_draws(uids[:100], seed=1), draws[:100])
    # Uniform: mean 1/2 and a tenth of the draws under 0.1, each within 4 sigma.
    n = len(uids)
    assert abs(draws.mean() - 0.5) <= 4 * np.sqrt(1 / 12 / n)
    assert abs((draws < 0.1).mean() - 0.1) <= 4 * np.sqrt(0.1 * 0.9 / n)


def _uid_drawn(below: float, above: bool, seed: int = 0) -> str:
    """The first uid `u<i>` whose draw is >= `below` (above) or < `below`."""
    for i in range(10_000):
        uid = f"u{i}"
        draw = uniform_draws([uid], seed)[0]
        if (draw >= below) == above:
            return uid
    raise AssertionError("no such uid")


ENTRIES = ("zero", "five", "ten", "eleven", "forty", "hundred")
# (entry ids, draw relative to the keep probability, keep_unmatched, reason, detail, kind)
DECIDE = [
    ([1], "above", False, None, None, "tail_entry"),
    ([4], "below", False, None, None, "head_draw"),
    (
        [4],
        "above",
        False,
        "balance.head_entry",
        "keep probability 0.25 (t 10) over 1 head entries; most matched 'forty' (40)",
        "balance.head_entry",
    ),
    (
        [4, 5],
        "above",
        False,
        "balance.head_entry",
        "keep probability 0.325 (t 10) over 2 head entries; most matched 'hundred' (100)",
        "balance.head_entry",
    ),
    ([4, 5], "below", False, None, None, "head_draw"),
    ([], "above", False, "balance.no_entry_match", None, "balance.no_entry_match"),
    ([], "above", True, None, None, "unmatched"),
]


@pytest.mark.parametrize(("ids", "draw", "keep_unmatched", "reason", "detail", "kind"), DECIDE)
def test_one_batch_decided_with_its_reason_codes(ids, draw, keep_unmatched, reason, detail, kind):
    p = dict(KEEP_BY_IDS)[tuple(ids)]
    # A tail or unmatched sample is decided whatever its draw: any uid will do.
    uid = _uid_drawn(p if 0 < p < 1 else 0.5, above=draw == "above")
    batch = pa.record_batch(
        [
            pa.array([uid]),
            pa.array([0.3], pa.float32()),
            pa.array([ids], pa.list_(pa.int32())),
        ],
        names=["uid", "clip_score", "entry_ids"],
    )
    out = decide_batch(batch, COUNTS, T, 0, keep_unmatched, ENTRIES).to_pylist()
    assert out == [
        {
            "uid": uid,
            "clip_score": pytest.approx(0.3),
            "reason": reason,
            "detail": detail,
            "entry_ids": ids,
            "kind": kind,
        }
    ]


def test_the_distribution_before_and_after_is_compact_and_exact():
    before = np.array([0, 5, 10, 40, 3000])
    after = np.array([0, 5, 10, 9, 11])
    got = distribution(before, after, 10, ["a", "b", "c", "d", "e"], top=3)
    assert got["head"] == {"entries": 2, "matches_before": 3040, "matches_after": 20}
    assert got["tail"] == {"entries": 2, "matches_before": 15, "matches_after": 15}
    assert [(r["bucket"], r["entries_before"], r["entries_after"]) for r in got["histogram"]] == [
        (2, 1, 1),  # 4..7: b
        (3, 1, 3),  # 8..15: c before; c, d and e after
        (5, 1, 0),  # 32..63: d before
        (11, 1, 0),  # 2048..4095: e before
    ]
    assert got["rank_curve"] == [
        {"rank": 1, "before": 3000, "after": 11},
        {"rank": 2, "before": 40, "after": 10},
        {"rank": 4, "before": 5, "after": 5},
    ]
    assert got["top"] == [
        {"entry": "e", "before": 3000, "after": 11},
        {"entry": "d", "before": 40, "after": 9},
        {"entry": "c", "before": 10, "after": 10},
    ]
