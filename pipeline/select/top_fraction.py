"""The top-fraction CLIP rule turned into a threshold, in DataComp's reference form or as an
interpolated percentile, as plain functions over numpy arrays (the Spark plan runs the same
kernels over the pool's batches; nothing proportional to the pool reaches the driver).

DataComp's `baselines/apply_filter.py::get_threshold` sorts every score of the pool
descending (null and NaN last), takes the value at 0-based rank `int(N * f)` with N all rows,
and keeps `score >= threshold`: `int(N * f) + 1` rows plus ties at the cut. The interpolated
rule is the exact percentile `1 - f` of the finite scores and keeps about `f` of them.

The exact rank is found without sorting the pool: a score's bits, flipped so that unsigned
order is float order, are read 16 bits at a time from the top, and each pass counts the rows
per next digit among those whose higher digits equal the rank's (a radix select: 2 passes for
float32 scores, 4 for float64, each returning at most 65,536 counts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

DIGIT_BITS = 16

# A pass of the radix select: (prefix, level) -> {digit: rows}, counting the rows whose key
# has `prefix` in its top `level * DIGIT_BITS` bits, by the digit that follows.
DigitCounter = Callable[[int, int], dict[int, int]]


def orderable_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned keys in the order of the (non-NaN) float values: a negative float has every bit
    flipped, a positive one its sign bit set, so -inf < ... < -0.0 < +0.0 < ... < +inf."""
    if values.dtype == np.float32:
        bits, sign = values.view(np.uint32), np.uint32(1 << 31)
    else:
        values = values.astype(np.float64, copy=False)
        bits, sign = values.view(np.uint64), np.uint64(1 << 63)
    return np.where(bits & sign, ~bits, bits | sign)


def key_value(key: int, float32: bool) -> float:
    """The float of an orderable key (the inverse of orderable_keys)."""
    width = 32 if float32 else 64
    sign = 1 << (width - 1)
    bits = (key ^ sign) if key & sign else (~key & ((1 << width) - 1))
    udtype, fdtype = (np.uint32, np.float32) if float32 else (np.uint64, np.float64)
    return float(np.array([bits], dtype=udtype).view(fdtype)[0])


def digit_counts(keys: np.ndarray, prefix: int, level: int, width: int) -> dict[int, int]:
    """Rows per next digit among `keys` whose top `level` digits equal `prefix`."""
    shift = width - (level + 1) * DIGIT_BITS
    keys = keys.astype(np.uint64, copy=False)
    if level:
        keys = keys[(keys >> np.uint64(shift + DIGIT_BITS)) == np.uint64(prefix)]
    digits = (keys >> np.uint64(shift)) & np.uint64((1 << DIGIT_BITS) - 1)
    found, counts = np.unique(digits, return_counts=True)
    return dict(zip(found.tolist(), counts.tolist(), strict=True))


def key_at_rank(count_digits: DigitCounter, ascending_index: int, width: int) -> int:
    """The key at 0-based `ascending_index` in the sorted keys, one counting pass per digit."""
    prefix, remaining = 0, ascending_index
    for level in range(width // DIGIT_BITS):
        counts = count_digits(prefix, level)
        for digit in sorted(counts):
            if remaining < counts[digit]:
                prefix = (prefix << DIGIT_BITS) | digit
                break
            remaining -= counts[digit]
        else:
            raise ValueError(f"rank {ascending_index} is past the {sum(counts.values())} keys")
    return prefix


@dataclass(frozen=True)
class Cut:
    """A top-fraction rule's threshold (keep score >= threshold; +inf keeps nothing) and what
    stats.json says of it."""

    threshold: float | None
    summary: dict[str, Any]


def reference_cut(
    fraction: float,
    denominator: str,
    rows: int,
    ranked: int,
    value_at_descending_rank: Callable[[int], float],
) -> Cut:
    """DataComp's rule: N = `rows` (denominator all) or `ranked` (the rows whose score is not
    null or NaN; denominator scored), k = int(N * f), threshold = the value at descending rank
    k among the ranked scores. A rank past them is the NaN that null scores sort to in the
    reference: nothing is kept. At f = 1 the reference's index is out of range; every ranked
    row is kept instead."""
    n = rows if denominator == "all" else ranked
    k = int(n * fraction)
    summary: dict[str, Any] = {"rule": "reference", "denominator": denominator, "n": n, "rank": k}
    if fraction >= 1.0 and ranked:
        k = ranked - 1
    if k >= ranked:
        summary["note"] = (
            f"rank {k} is past the {ranked} scored rows (null scores sort last): nothing is kept"
        )
        return Cut(float("inf"), {**summary, "threshold": None})
    threshold = value_at_descending_rank(k)
    return Cut(threshold, {**summary, "threshold": threshold})


def interpolated_quantile(fraction: float, denominator: str, rows: int, finite: int) -> float:
    """The percentile of the finite scores that keeps `fraction` of the denominator's rows
    (all rows, or the finite ones): 1 - f, or 1 - f * rows / finite, at least 0."""
    if denominator == "scored" or finite == 0:
        return 1.0 - fraction
    return max(0.0, 1.0 - fraction * rows / finite)


def float32_at_least(threshold: float) -> float:
    """The smallest float32 >= `threshold`: a float32 score passes `score >= it` exactly when it
    passes `score >= threshold`, so the comparison in float32 (as the rules make it) keeps the
    interpolated cut's rows, however close to a score the percentile falls."""
    value = np.float32(threshold)
    if float(value) < threshold:
        value = np.nextafter(value, np.float32(np.inf))
    return float(value)
