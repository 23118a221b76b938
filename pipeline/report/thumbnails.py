"""Small JPEG thumbnails of downloaded images, read at their recorded byte offsets in the
download tars (never by unpacking a tar), as data: URIs so the page is self-contained."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 128
# Lower than a download's quality: thumbnails are only looked at, and the page stays small.
THUMBNAIL_QUALITY = 80


def read_image_bytes(downloads: Path, shard: str, offset: int, size: int) -> bytes:
    """The stored image of one sample: `size` bytes at `offset` in downloads/<shard>.tar."""
    with open(downloads / f"{shard}.tar", "rb") as tar:
        tar.seek(offset)
        return tar.read(size)


def thumbnail_uri(data: bytes, side: int = THUMBNAIL_SIDE) -> str | None:
    """A data:image/jpeg URI of the image scaled to fit `side`, or None if it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            picture = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.debug("report: undecodable thumbnail (%s)", exc)
        return None
    picture.thumbnail((side, side))
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def png_uri(data: bytes) -> str:
    """A data:image/png URI of PNG bytes (the plots)."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
