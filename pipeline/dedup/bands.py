"""Band layout of the near-duplicate index: split the 64 pHash bits into max_distance + 1 bands.

Pigeonhole: if two hashes differ in at most d bits, those d bits fall into at most d of the d + 1
bands, so at least one band is identical. Joining on (band, value) therefore finds every pair
within the radius, and verifying the full distance removes the rest; no pair is ever compared
unless it shares a band.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    """Bits [shift, shift + width) of the hash."""

    index: int
    shift: int
    width: int

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1

    def value(self, unsigned_hash: int) -> int:
        return (unsigned_hash >> self.shift) & self.mask


def band_layout(max_distance: int, bits: int = 64) -> list[Band]:
    """max_distance + 1 contiguous bands covering all bits, widths differing by at most one."""
    n = max_distance + 1
    if not 1 <= n <= bits:
        raise ValueError(f"max_distance must be in [0, {bits - 1}], got {max_distance}")
    base, extra = divmod(bits, n)
    bands, shift = [], 0
    for i in range(n):
        width = base + (1 if i < extra else 0)
        bands.append(Band(i, shift, width))
        shift += width
    return bands
