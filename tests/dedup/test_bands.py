"""The band layout and its pigeonhole guarantee: any two hashes within d bits share a band."""

from __future__ import annotations

import random

import pytest

from pipeline.dedup.bands import band_layout


@pytest.mark.parametrize(
    ("d", "widths"),
    [
        (0, [64]),
        (1, [32, 32]),
        (3, [16, 16, 16, 16]),
        (6, [10, 9, 9, 9, 9, 9, 9]),
        (8, [8, 7, 7, 7, 7, 7, 7, 7, 7]),
    ],
)
def test_layout_covers_all_bits(d, widths):
    bands = band_layout(d)
    assert [b.width for b in bands] == widths
    assert [b.shift for b in bands] == [sum(widths[:i]) for i in range(len(widths))]


def test_layout_rejects_impossible_radius():
    with pytest.raises(ValueError):
        band_layout(64)


@pytest.mark.parametrize("d", [0, 2, 6, 10])
def test_pigeonhole_every_pair_within_radius_shares_a_band(d):
    rng = random.Random(d)
    bands = band_layout(d)
    for _ in range(2000):
        a = rng.getrandbits(64)
        flips = rng.sample(range(64), rng.randint(0, d))
        b = a
        for bit in flips:
            b ^= 1 << bit
        assert any(band.value(a) == band.value(b) for band in bands)
