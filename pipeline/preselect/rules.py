"""The pool-score rules as plain functions over Arrow batches: a CLIP cut on the pool's own CLIP
similarity column (DataComp CommonPool's clip_l14_similarity_score, LAION's similarity) and lower
and upper bounds on other score columns (LAION's punsafe, pwatermark).

Their codes are select's (schemas.reasons.WRITES_CODES_OF): a CLIP cut before the download drops
with select.clip_score, as the same cut after it does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.preselect.settings import PoolScoresConfig
from schemas.reasons import check

CLIP_SCORE = check("select.clip_score")
NO_POOL_SCORE = check("select.no_pool_score")
BELOW = check("select.pool_score_below")
ABOVE = check("select.pool_score_above")


@dataclass(frozen=True)
class PoolBounds:
    """Resolved pool rules: (column, lower bound) and (column, upper bound) checks, in order (a
    CLIP threshold is a lower bound on the CLIP column, dropping with select.clip_score)."""

    clip: tuple[str, float] | None
    lower: tuple[tuple[str, float], ...]
    upper: tuple[tuple[str, float], ...]

    @property
    def columns(self) -> list[str]:
        named = [c for c, _ in (*self.lower, *self.upper)]
        return sorted({*named, *([self.clip[0]] if self.clip else [])})


def resolve(cfg: PoolScoresConfig, clip_threshold: float | None) -> PoolBounds:
    """The bounds of `cfg`, with the CLIP threshold the plan computed (from the top fraction
    over every candidate) or cfg.clip_threshold."""
    lower, upper = cfg.bounds()
    clip = None
    if cfg.clip_column:
        threshold = cfg.clip_threshold if clip_threshold is None else clip_threshold
        clip = (cfg.clip_column, float(threshold))
    return PoolBounds(clip, tuple(sorted(lower.items())), tuple(sorted(upper.items())))


def scores_in_own_precision(column: pa.Array, bound: float) -> tuple[np.ndarray, np.generic]:
    """(scores as numpy with null as NaN, bound) in the column's own precision: float32 for a
    float32 column (half floats widen to it), float64 for every other numeric type."""
    dtype = np.float32 if column.type in (pa.float16(), pa.float32()) else np.float64
    values = pc.cast(column, pa.float32() if dtype is np.float32 else pa.float64())
    filled = values.fill_null(np.nan).to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return filled, dtype(bound)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def decide(batch: pa.RecordBatch, bounds: PoolBounds) -> tuple[pa.Array, pa.Array]:
    """Reason and detail of every row (null = kept): the first failed check names it, in the
    order CLIP cut, lower bounds, upper bounds; a null, NaN or infinite score fails its check
    (no_pool_score: DataComp's apply_filter drops NaN rows, which `score < bound` would keep)."""
    checks = (
        ([(bounds.clip[0], bounds.clip[1], "min", CLIP_SCORE)] if bounds.clip else [])
        + [(c, v, "min", BELOW) for c, v in bounds.lower]
        + [(c, v, "max", ABOVE) for c, v in bounds.upper]
    )
    return check_bounds(batch, checks, NO_POOL_SCORE)


def check_bounds(
    batch: pa.RecordBatch, checks: list[tuple[str, float, str, str]], missing_code: str
) -> tuple[pa.Array, pa.Array]:
    """Reason and detail of every row (null = kept) under `checks`, (column, bound, "min" or
    "max", reason code) in order: the first failed check names it, a null, NaN or infinite
    score being `missing_code` ("COL is null or NaN" / "COL is infinite").

    A float32 column is compared with the bound cast to float32, as DataComp's reference does
    (numpy compares a float32 array with a Python float in float32): 0.22 as float32 is
    0.2199999988, and a score stored as 0.22 passes `>= 0.22`."""
    n = batch.num_rows
    reasons: list[str | None] = [None] * n
    details: list[str | None] = [None] * n
    for column, bound, kind, code in checks:
        filled, limit = scores_in_own_precision(batch.column(column), bound)
        missing = ~np.isfinite(filled)
        with np.errstate(invalid="ignore"):
            fails = filled < limit if kind == "min" else filled > limit
        sign = "<" if kind == "min" else ">"
        for row in np.flatnonzero(missing | fails).tolist():
            if reasons[row] is not None:
                continue
            if missing[row]:
                what = "null or NaN" if np.isnan(filled[row]) else "infinite"
                reasons[row], details[row] = missing_code, f"{column} is {what}"
            else:
                reasons[row] = code
                details[row] = f"{column} {_fmt(filled[row])} {sign} {_fmt(bound)}"
    return pa.array(reasons, pa.string()), pa.array(details, pa.string())
