"""The top-fraction kernels: orderable float keys, the radix select against a full sort, and
DataComp's rank rule worked out by hand (pipeline/select/top_fraction.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.select.top_fraction import (
    digit_counts,
    float32_at_least,
    interpolated_quantile,
    key_at_rank,
    key_value,
    orderable_keys,
    reference_cut,
)


def reference_threshold(scores: np.ndarray, fraction: float, denominator: str = "all") -> float:
    """DataComp's threshold computed as its reference does (apply_filter's get_threshold), by a
    full sort: the oracle the radix select is held to. NaN stands for null, as in pandas."""
    values = np.asarray(scores)
    ranked = values[~np.isnan(values)]
    n = len(values) if denominator == "all" else len(ranked)
    k = int(n * fraction)
    ordered = -np.sort(-values if denominator == "all" else -ranked)
    return float(ordered[k]) if k < len(ordered) else float("nan")


EDGES = [-np.inf, -1e30, -1.0, -1e-30, -0.0, 0.0, 1e-30, 0.22, 1.0, 1e30, np.inf]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_orderable_keys_follow_float_order_and_invert(dtype):
    values = np.array(EDGES, dtype=dtype)
    keys = orderable_keys(values)
    assert keys.dtype == (np.uint32 if dtype is np.float32 else np.uint64)
    assert np.all(keys[1:] > keys[:-1])  # strictly increasing, -0.0 < +0.0
    back = [key_value(int(k), dtype is np.float32) for k in keys]
    assert np.array_equal(np.array(back, dtype=dtype), values)
    assert str(back[4]) == "-0.0"


def _counter(keys: np.ndarray, width: int):
    return lambda prefix, level: digit_counts(keys, prefix, level, width)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_radix_select_equals_a_full_sort(dtype):
    rng = np.random.default_rng(7)
    # Three-decimal scores (many ties, like DataComp's), plus the edges.
    values = np.concatenate([np.round(rng.uniform(-0.1, 0.5, 5_000), 3), EDGES]).astype(dtype)
    keys = orderable_keys(values)
    width = 32 if dtype is np.float32 else 64
    ordered = np.sort(values)
    for index in [0, 1, 17, 2_500, len(values) - 2, len(values) - 1]:
        key = key_at_rank(_counter(keys, width), index, width)
        assert key_value(key, dtype is np.float32) == ordered[index]
    with pytest.raises(ValueError, match="past the"):
        key_at_rank(_counter(keys, width), len(values), width)


# a..j: the scores of the conformance table (g null and h NaN, both NaN here, as in pandas).
TABLE = np.array([0.9, 0.8, 0.7, 0.7, 0.6, 0.5, np.nan, np.nan, 0.22, 0.1], dtype=np.float32)
UIDS = "abcdefghij"

# (fraction, denominator) -> rank k and the uids DataComp's apply_filter keeps, by hand:
# all: N = 10 rows; scored: N = 8 rows with a score; k = int(N * f); keep >= the k-th score.
REFERENCE = [
    (0.2, "all", 2, "abcd"),  # k = 2 lands on 0.7, its tie d is kept too: k + 2 rows
    (0.2, "scored", 1, "ab"),  # int(1.6) = 1
    (0.5, "all", 5, "abcdef"),
    (0.5, "scored", 4, "abcde"),
    (0.75, "all", 7, "abcdefij"),
    (0.85, "scored", 6, "abcdefi"),
    (0.85, "all", 8, ""),  # rank 8 is a null: the reference's threshold is NaN, nothing kept
]


def _kept(threshold: float) -> str:
    with np.errstate(invalid="ignore"):
        keep = np.asarray(TABLE) >= np.float32(threshold)
    return "".join(u for u, k in zip(UIDS, keep, strict=True) if k)


@pytest.mark.parametrize(("fraction", "denominator", "rank", "kept"), REFERENCE)
def test_reference_cut_table(fraction, denominator, rank, kept):
    ranked = TABLE[~np.isnan(TABLE)]
    descending = -np.sort(-ranked)
    cut = reference_cut(fraction, denominator, 10, 8, lambda k: float(descending[k]))
    assert cut.summary["rank"] == rank
    assert _kept(cut.threshold) == kept
    # The same set as the reference's own formula, sort included.
    assert _kept(reference_threshold(TABLE, fraction, denominator)) == kept
    if kept:
        assert cut.threshold == float(descending[rank])
    else:
        assert cut.threshold == float("inf") and cut.summary["threshold"] is None
        assert "nothing is kept" in cut.summary["note"]


def test_reference_cut_at_fraction_one_keeps_every_scored_row():
    cut = reference_cut(1.0, "all", 10, 8, lambda k: [0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.22, 0.1][k])
    assert _kept(cut.threshold) == "abcdefij"


@pytest.mark.parametrize(
    ("fraction", "denominator", "rows", "finite", "q"),
    [(0.3, "scored", 10, 8, 0.7), (0.5, "all", 10, 8, 0.375), (0.9, "all", 10, 8, 0.0)],
)
def test_interpolated_quantile(fraction, denominator, rows, finite, q):
    assert interpolated_quantile(fraction, denominator, rows, finite) == pytest.approx(q)


@pytest.mark.parametrize("threshold", [0.2455, 0.22, 0.1 + 1e-12, -0.3, 1e-40])
def test_float32_at_least_keeps_the_same_float32_scores(threshold):
    value = float32_at_least(threshold)
    assert np.float32(value) == value and value >= threshold
    below = np.nextafter(np.float32(value), np.float32(-np.inf))
    assert float(below) < threshold  # the smallest such float32
    scores = np.array(
        [below, value, np.nextafter(np.float32(value), np.float32(np.inf))], np.float32
    )
    assert list(scores >= np.float32(value)) == [s >= threshold for s in scores.astype(np.float64)]
