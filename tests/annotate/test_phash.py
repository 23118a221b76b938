"""pHash helpers: signed storage, exact agreement with imagehash, draft decoding stays close."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image

from pipeline.annotate.phash import hamming, phash_bytes, to_signed, to_unsigned


@pytest.mark.parametrize(
    ("unsigned", "signed"),
    [(0, 0), (1, 1), ((1 << 63) - 1, (1 << 63) - 1), (1 << 63, -(1 << 63)), ((1 << 64) - 1, -1)],
)
def test_signed_round_trip(unsigned, signed):
    assert to_signed(unsigned) == signed
    assert to_unsigned(signed) == unsigned


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        (0, 0, 0),
        (0, 1, 1),
        (-1, 0, 64),
        (to_signed(0xF0F0), to_signed(0x0F0F), 16),
        (-1, to_signed(0xFFFF_FFFF_FFFF_FFFE), 1),
    ],
)
def test_hamming(a, b, distance):
    assert hamming(a, b) == distance


def _picture(seed: int, size=(512, 384)) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def test_png_hash_is_exactly_imagehash():
    data = _encode(_picture(1), "PNG")
    ours, width, height = phash_bytes(data)
    assert (width, height) == (512, 384)
    assert to_unsigned(ours) == int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)


def test_jpeg_draft_hash_stays_near_the_full_decode():
    distances = []
    for seed in range(20):
        data = _encode(_picture(seed), "JPEG")
        full = int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)
        distances.append(hamming(phash_bytes(data)[0], to_signed(full)))
    assert max(distances) <= 4
    assert sum(distances) / len(distances) <= 2
