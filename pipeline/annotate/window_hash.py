"""Crop-robust perceptual hashing: pHashes of a few fixed sub-windows of each image.

A crop of a few percent moves a photograph's 64-bit pHash by 8-24 bits, far past the dedup radius.
Cropping does not move the picture's content, though: the full frame of a copy cropped by 5 % from
each side is the original's central 90 % window. So besides the full-frame pHash (annotate's
`phash` column) each image gets the pHashes of the windows in `WINDOWS`, and two images are near
duplicates when ANY hash of one is within the radius of ANY hash of the other (full frame or
window, either side). The mirrored full frame catches horizontal flips the same way.

Every hash is imagehash's pHash of that window (grayscale, 32x32 Lanczos resize, 2-D DCT, 8x8 low
frequencies against their median), so window hashes compare bit for bit with full-frame pHashes;
the windows share one decode and one grayscale conversion, and the DCT of all of them is one
batched matrix product that computes only the 8x8 frequencies kept.
Measured on real photographs in benchmarks/bench_crop_hash.py, written up in
docs/crop_robust_hashing.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image

from pipeline.annotate.phash import open_for_hash, phash_image, to_signed

_HASH_SIZE = 8
_IMG_SIZE = 32  # imagehash.phash: hash_size 8 * highfreq_factor 4
_BIT_WEIGHTS = 1 << np.arange(_HASH_SIZE * _HASH_SIZE - 1, -1, -1, dtype=np.uint64)


class Window(NamedTuple):
    """A sub-window of the frame: the fraction of the width or height cut from each side."""

    name: str
    left: float
    top: float
    right: float
    bottom: float
    mirror: bool = False


def _central(scale: float) -> Window:
    margin = round((1 - scale) / 2, 4)
    return Window(f"center{scale:g}", margin, margin, margin, margin)


def _across(scale: float) -> Window:
    margin = round((1 - scale) / 2, 4)
    return Window(f"width{scale:g}", margin, 0.0, margin, 0.0)


def _down(scale: float) -> Window:
    margin = round((1 - scale) / 2, 4)
    return Window(f"height{scale:g}", 0.0, margin, 0.0, margin)


# Why these (benchmarks/bench_crop_hash.py on 21 real photographs, docs/crop_robust_hashing.md):
# - central 0.9 and 0.8 of each side: a copy cropped 2, 5 or 10 % from every side is the
#   original's central 0.96, 0.9 or 0.8 window, and 0.96 lands within the radius of the full frame
#   or of the 0.9 window (window-to-window pairs count), so symmetric crops match at >= 0.95;
# - 0.9 and 0.8 of the width only and of the height only: crops to another aspect ratio (square
#   thumbnails, letterbox) cut one axis alone, which the central windows miss at 5-10 %;
# - the mirrored full frame: horizontal flips.
# One-sided crops of 5-10 % need windows anchored at each side (`SIDE_WINDOWS`): 4 more hashes.
WINDOWS: tuple[Window, ...] = (
    _central(0.9),
    _central(0.8),
    _across(0.9),
    _down(0.9),
    _across(0.8),
    _down(0.8),
    Window("mirror", 0.0, 0.0, 0.0, 0.0, mirror=True),
)

# Optional: 10 % cut from one side only, for one-sided crops of 5-10 % (pass
# `WINDOWS + SIDE_WINDOWS`, 12 hashes an image instead of 8): measured in the benchmark, where it
# lifts one-sided 5 and 10 % crops from 0.88 and 0.12 to >= 0.95 at radius 6.
SIDE_WINDOWS: tuple[Window, ...] = tuple(
    Window(f"{side}0.9", *(0.1 if i == k else 0.0 for i in range(4)))
    for k, side in enumerate(("left", "top", "right", "bottom"))
)


def window_box(window: Window, width: int, height: int) -> tuple[int, int, int, int]:
    """The pixel box (left, upper, right, lower) of a window in a width x height frame."""
    left = round(window.left * width)
    top = round(window.top * height)
    right = width - round(window.right * width)
    bottom = height - round(window.bottom * height)
    return left, top, max(right, left + 1), max(bottom, top + 1)


# The 8 lowest rows of scipy's unnormalised DCT-II matrix for 32 points: imagehash's
# dct(dct(pixels, axis=0), axis=1)[:8, :8] is _DCT8 @ pixels @ _DCT8.T, without the 24 high
# frequencies it throws away (a tenth of the time; equal to 1e-11, the same bits on every window
# of the benchmark's 504 JPEGs and in tests/annotate/test_window_hash.py).
_DCT8 = 2.0 * np.cos(
    np.pi * np.outer(np.arange(_HASH_SIZE), 2 * np.arange(_IMG_SIZE) + 1) / (2 * _IMG_SIZE)
)


def _phash_rows(pixels: np.ndarray) -> list[int]:
    """imagehash.phash of each 32x32 grayscale array in pixels (n, 32, 32), as signed int64."""
    low = (_DCT8 @ pixels.astype(np.float64) @ _DCT8.T).reshape(len(pixels), -1)
    ordered = np.sort(low, axis=1)
    middle = _HASH_SIZE * _HASH_SIZE // 2
    median = (ordered[:, middle - 1 : middle] + ordered[:, middle : middle + 1]) / 2  # np.median
    bits = low > median
    values = (bits.astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)
    return [to_signed(int(v)) for v in values]


# A window whose 32x32 thumbnail varies by less than this (standard deviation, grey levels) is
# left out: every flat window (a white background's centre, a blank placeholder) hashes to the
# same value, which would link unrelated images that merely share a blank region.
FLAT_STD = 2.0


def window_hashes(image: Image.Image, windows: tuple[Window, ...] = WINDOWS) -> list[int]:
    """pHashes (signed int64) of `windows` of an image, in the order of `windows`, leaving out
    near-flat windows (FLAT_STD).

    Takes the image as `open_for_hash` returns it (a JPEG in draft mode); the full-frame pHash is
    not included (annotate stores it as `phash`). Each equals `phash_image(window crop)`.
    """
    gray = image.convert("L")
    width, height = gray.size
    size = (_IMG_SIZE, _IMG_SIZE)
    rows = []
    for window in windows:
        box = window_box(window, width, height)
        # crop, then resize, as imagehash does: resize(box=) would filter in pixels past the box.
        small = gray.crop(box).resize(size, Image.Resampling.LANCZOS)
        pixels = np.asarray(small)
        if pixels.std() < FLAT_STD:
            continue
        rows.append(pixels[:, ::-1] if window.mirror else pixels)
    if not rows:
        return []
    return _phash_rows(np.stack(rows))


def window_hashes_bytes(
    data: bytes, draft_size: int = 64, windows: tuple[Window, ...] = WINDOWS
) -> list[int]:
    """`window_hashes` of encoded image bytes, decoded as `open_for_hash` does."""
    image, _, _ = open_for_hash(data, draft_size)
    with image:
        return window_hashes(image, windows)


def hashes_bytes(data: bytes, draft_size: int = 64) -> tuple[int, list[int], int, int]:
    """(full-frame pHash, `window_hashes` of WINDOWS, width, height) of encoded image bytes, from
    one decode: what annotate stores as `phash` and `window_phashes`."""
    image, width, height = open_for_hash(data, draft_size)
    with image:
        return phash_image(image), window_hashes(image), width, height
