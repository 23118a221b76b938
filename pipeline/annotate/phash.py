"""Perceptual hashing with imagehash's pHash, decoding no more of a JPEG than the hash needs."""

from __future__ import annotations

import io

import imagehash
from PIL import Image

_TWO_63 = 1 << 63
_TWO_64 = 1 << 64


def to_signed(value: int) -> int:
    """An unsigned 64-bit hash as a signed 64-bit integer (Spark and parquet have no uint64)."""
    return value - _TWO_64 if value >= _TWO_63 else value


def to_unsigned(value: int) -> int:
    """Inverse of `to_signed`."""
    return value + _TWO_64 if value < 0 else value


def phash_image(image: Image.Image) -> int:
    """imagehash's 64-bit pHash of a decoded image, as a signed int64."""
    return to_signed(int(str(imagehash.phash(image)), 16))


def open_for_hash(data: bytes, draft_size: int) -> tuple[Image.Image, int, int]:
    """Open image bytes for hashing; returns (image, full width, full height).

    For JPEG, draft mode lets libjpeg scale by 1/2, 1/4 or 1/8 inside the DCT, so a 512 px image
    decodes as 64 px: pHash resizes to 32x32 anyway, and near duplicates keep their hashes
    within a bit or two of the full decode (measured in tests/annotate and benchmarks/).
    """
    image = Image.open(io.BytesIO(data))
    width, height = image.size
    if image.format == "JPEG":
        image.draft("L", (draft_size, draft_size))
    return image, width, height


def phash_bytes(data: bytes, draft_size: int = 64) -> tuple[int, int, int]:
    """(pHash as signed int64, width, height) of encoded image bytes."""
    image, width, height = open_for_hash(data, draft_size)
    with image:
        return phash_image(image), width, height


def hamming(a: int, b: int) -> int:
    """Bits that differ between two 64-bit hashes (signed or unsigned)."""
    return ((a ^ b) & (_TWO_64 - 1)).bit_count()
