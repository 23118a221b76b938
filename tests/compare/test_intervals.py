"""Paired differences with a two-stage bootstrap (seeds, then evaluation images): exact means,
deterministic intervals, significance only when the interval excludes zero."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.compare.intervals import Difference, describe, paired_difference


def test_identical_selections_differ_by_nothing():
    hits = np.random.default_rng(0).integers(0, 2, size=(3, 200))
    d = paired_difference(hits, hits.copy())
    assert (d.mean, d.low, d.high, d.significant) == (0.0, 0.0, 0.0, False)
    assert (d.seeds, d.images) == (3, 200)


def test_a_selection_better_on_every_seed_and_image_is_significant():
    base = np.zeros((3, 100))
    better = base.copy()
    better[:, :20] = 1  # 20 points better on every seed, the same 20 images
    d = paired_difference(better, base, resamples=1000)
    assert d.mean == pytest.approx(0.20)
    assert d.significant and 0.10 < d.low < 0.20 < d.high < 0.30


def test_a_difference_that_one_seed_makes_is_not_significant():
    """+30 points on one seed, -30 on another, 0 on the third: the seeds disagree, and the
    interval over seeds says so."""
    base = np.zeros((3, 100))
    other = base.copy()
    other[0, :30] = 1
    base[1, :30] = 1
    d = paired_difference(other, base, resamples=2000)
    assert d.mean == pytest.approx(0.0)
    assert not d.significant and d.low < -0.1 and d.high > 0.1


def test_the_same_inputs_give_the_same_interval_and_a_new_seed_another():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 2, size=(2, 300)), rng.integers(0, 2, size=(2, 300))
    first, again = paired_difference(a, b, seed=0), paired_difference(a, b, seed=0)
    assert first == again
    assert paired_difference(a, b, seed=1) != first


def test_one_seed_holds_the_evaluation_images_noise_alone():
    """One seed, 720 images, 4 points apart on 29 images: the interval is the images' own
    sampling error, about +-2.6 points at 95 %."""
    base = np.zeros((1, 720))
    other = base.copy()
    other[0, :29] = 1
    d = paired_difference(other, base, resamples=4000)
    assert d.mean == pytest.approx(29 / 720)
    assert d.high - d.low == pytest.approx(2 * 1.96 * np.sqrt(0.04 * 0.96 / 720), rel=0.15)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (((2, 10), (3, 10)), "one shape"),
        (((10,), (10,)), "one shape"),
        (((0, 5), (0, 5)), "one shape"),
    ],
)
def test_mismatched_arrays_are_refused(shapes, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(np.zeros(shapes[0]), np.zeros(shapes[1]))


@pytest.mark.parametrize(
    ("difference", "line"),
    [
        (
            Difference(0.052, 0.021, 0.083, 0.95, 3, 720),
            "balance vs clip, tail top-1: +5.2 points, 95% interval [+2.1, +8.3] (3 seeds, 720 images)",
        ),
        (
            Difference(0.004, -0.021, 0.029, 0.95, 1, 720),
            "balance vs clip, tail top-1: no difference detected (+0.4 points, 95% interval"
            " [-2.1, +2.9]; 1 seed, 720 images)",
        ),
    ],
)
def test_conclusions_say_only_what_the_interval_supports(difference, line):
    assert describe("balance", "clip", "tail top-1", difference) == line


def test_a_hand_worked_table_gives_the_hand_worked_interval():
    """Two seeds, each the same difference on every image (+20 points on seed 0, +40 on seed
    1), so resampling images changes nothing and resampling the two seeds gives three means:
    +20 (both draws seed 0, probability 1/4), +30 (1/2) and +40 (1/4). The mean is +30 and the
    95 % percentile interval is [+20, +40]: it excludes zero. With -10 instead of +40 on seed
    1 the draws are +20, +5 and -10, the interval [-10, +20]: no difference detected."""
    base = np.zeros((2, 50))
    better = np.vstack([np.full(50, 0.2), np.full(50, 0.4)])
    d = paired_difference(better, base)
    assert (d.mean, d.low, d.high) == pytest.approx((0.3, 0.2, 0.4))
    assert d.significant
    mixed = np.vstack([np.full(50, 0.2), np.full(50, -0.1)])
    d = paired_difference(mixed, base)
    assert (d.mean, d.low, d.high) == pytest.approx((0.05, -0.1, 0.2))
    assert not d.significant
    assert describe("clip", "raw", "top-1", d) == (
        "clip vs raw, top-1: no difference detected (+5.0 points, 95% interval [-10.0, +20.0]; "
        "2 seeds, 50 images)"
    )
