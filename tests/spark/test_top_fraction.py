"""The top-fraction threshold over a Spark DataFrame: the radix select gives DataComp's exact
threshold (float32 and float64 columns, ties, nulls, NaN, infinities), and the interpolated rule
Spark's exact percentile of the finite scores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.spark.top_fraction import top_fraction_cut
from tests.select.test_top_fraction import REFERENCE, TABLE, UIDS, reference_threshold


def _frame(spark, tmp_path, scores: np.ndarray, arrow_type: pa.DataType, nulls=()):
    mask = np.zeros(len(scores), dtype=bool)
    mask[list(nulls)] = True
    column = pa.array(scores, arrow_type, mask=mask)
    path = tmp_path / f"scores-{arrow_type}.parquet"
    uids = [str(i) for i in range(len(scores))]
    pq.write_table(pa.table({"uid": uids, "score": column}), path)
    # Several partitions, so the digit counts are summed across tasks.
    return spark.read.parquet(str(path)).repartition(3)


@pytest.mark.parametrize(("fraction", "denominator", "rank", "kept"), REFERENCE)
def test_reference_table_through_spark(spark, tmp_path, fraction, denominator, rank, kept):
    # g is a null, h a NaN: both sort last in the reference and count in N under `all`.
    frame = _frame(spark, tmp_path, TABLE, pa.float32(), nulls=[6])
    cut = top_fraction_cut(frame, "score", fraction, "reference", denominator)
    with np.errstate(invalid="ignore"):
        keep = np.asarray(TABLE) >= np.float32(cut.threshold)
    assert "".join(u for u, k in zip(UIDS, keep, strict=True) if k) == kept
    assert cut.summary["rank"] == rank


@pytest.mark.parametrize("arrow_type", [pa.float32(), pa.float64()])
def test_reference_threshold_is_exact_on_random_ties(spark, tmp_path, arrow_type):
    rng = np.random.default_rng(3)
    dtype = np.float32 if arrow_type == pa.float32() else np.float64
    scores = np.round(rng.uniform(0.05, 0.45, 3_000), 3).astype(dtype)
    scores[::97] = np.nan
    scores[5], scores[9] = np.inf, -np.inf
    frame = _frame(spark, tmp_path, scores, arrow_type, nulls=range(1, 3_000, 101))
    with_nulls = scores.copy()
    with_nulls[1::101] = np.nan
    for fraction in (0.1, 0.3, 0.5):
        for denominator in ("all", "scored"):
            cut = top_fraction_cut(frame, "score", fraction, "reference", denominator)
            expected = reference_threshold(with_nulls, fraction, denominator)
            assert cut.threshold == expected and np.dtype(dtype).type(expected) == expected


def test_interpolated_is_the_percentile_of_finite_scores(spark, tmp_path):
    frame = _frame(spark, tmp_path, TABLE, pa.float32(), nulls=[6])
    finite = TABLE[np.isfinite(TABLE)].astype(np.float64)
    cut = top_fraction_cut(frame, "score", 0.5, "interpolated", "scored")
    assert cut.threshold == pytest.approx(float(np.quantile(finite, 0.5)))
    assert "".join(u for u, s in zip(UIDS, TABLE, strict=True) if s >= cut.threshold) == "abcd"
    cut = top_fraction_cut(frame, "score", 0.5, "interpolated", "all")
    assert cut.summary["quantile"] == 0.375
    assert cut.threshold == pytest.approx(float(np.quantile(finite, 0.375)))
