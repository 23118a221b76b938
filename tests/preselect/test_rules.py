"""The pool-score rules over Arrow batches: exact reasons and details, in check order."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.config import load_config
from pipeline.preselect.rules import decide, resolve


def _batch(**columns) -> pa.RecordBatch:
    return pa.record_batch([pa.array(v) for v in columns.values()], names=list(columns))


@pytest.mark.parametrize(
    ("overrides", "threshold", "expected"),
    [
        (
            # LAION-5B's cut on LAION's own similarity column.
            ["select.pool.clip_column=similarity", "select.pool.clip_threshold=0.28"],
            None,
            [
                (None, None),
                ("select.clip_score", "similarity 0.2 < 0.28"),
                ("select.no_pool_score", "similarity is null or NaN"),
                (None, None),
            ],
        ),
        (
            # A top fraction's threshold, computed by the plan, wins over clip_threshold.
            ["select.pool.clip_column=similarity", "select.pool.clip_top_fraction=0.3"],
            0.35,
            [
                ("select.clip_score", "similarity 0.3 < 0.35"),
                ("select.clip_score", "similarity 0.2 < 0.35"),
                ("select.no_pool_score", "similarity is null or NaN"),
                (None, None),
            ],
        ),
        (
            # LAION's safety and watermark bounds: kept when <= the bound.
            ["select.pool.max={punsafe: 0.5, pwatermark: 0.8}"],
            None,
            [
                (None, None),
                ("select.pool_score_above", "punsafe 0.9 > 0.5"),
                ("select.pool_score_above", "pwatermark 0.95 > 0.8"),
                (None, None),
            ],
        ),
        (
            # The CLIP cut is checked first, then lower bounds, then upper bounds.
            [
                "select.pool.clip_column=similarity",
                "select.pool.clip_threshold=0.25",
                "select.pool.min={similarity: 0.31}",
                "select.pool.max={punsafe: 0.5}",
            ],
            None,
            [
                ("select.pool_score_below", "similarity 0.3 < 0.31"),
                ("select.clip_score", "similarity 0.2 < 0.25"),
                ("select.no_pool_score", "similarity is null or NaN"),
                (None, None),
            ],
        ),
    ],
)
def test_pool_rules(overrides, threshold, expected):
    cfg = load_config(None, overrides).select.pool
    batch = _batch(
        similarity=[0.3, 0.2, None, 0.4],
        punsafe=[0.1, 0.9, 0.2, 0.5],
        pwatermark=[0.2, 0.3, 0.95, 0.8],
    )
    reasons, details = decide(batch, resolve(cfg, threshold))
    assert list(zip(reasons.to_pylist(), details.to_pylist(), strict=True)) == expected


def test_bounds_must_be_numbers():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"select\.pool\.max\.punsafe: expected a number"):
        load_config(None, ["select.pool.max={punsafe: high}"])


@pytest.mark.parametrize(
    ("scores", "dtype", "expected"),
    [
        # NaN and infinite scores are no score (DataComp drops NaN rows; `<` would keep them).
        (
            [float("nan"), float("inf"), float("-inf"), 0.3],
            pa.float64(),
            [
                ("select.no_pool_score", "similarity is null or NaN"),
                ("select.no_pool_score", "similarity is infinite"),
                ("select.no_pool_score", "similarity is infinite"),
                (None, None),
            ],
        ),
        # float32 scores are compared with 0.22 as float32 (0.2199999988), as the reference
        # does: a score stored as 0.22 is kept, the next float32 below it is not.
        (
            [0.22, 0.21999998, 0.221],
            pa.float32(),
            [(None, None), ("select.clip_score", "similarity 0.22 < 0.22"), (None, None)],
        ),
        # float64 scores keep float64 precision: 0.22 in float64 passes, 0.2199999988 does not.
        (
            [0.22, 0.2199999988],
            pa.float64(),
            [(None, None), ("select.clip_score", "similarity 0.22 < 0.22")],
        ),
    ],
)
def test_non_finite_scores_and_float32_bounds(scores, dtype, expected):
    cfg = load_config(
        None, ["select.pool.clip_column=similarity", "select.pool.clip_threshold=0.22"]
    ).select.pool
    batch = pa.record_batch([pa.array(scores, dtype)], names=["similarity"])
    reasons, details = decide(batch, resolve(cfg, None))
    assert list(zip(reasons.to_pylist(), details.to_pylist(), strict=True)) == expected
