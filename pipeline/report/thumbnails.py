"""Small JPEG thumbnails of downloaded images, read at their recorded byte offsets in the
download tars (never by unpacking a tar), as data: URIs so the page is self-contained."""

from __future__ import annotations

import base64
import io
import logging

from PIL import Image

from pipeline.storage import StoragePath, read_range

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 128
# Lower than a download's quality: thumbnails are only looked at, and the page stays small.
THUMBNAIL_QUALITY = 80


def read_image_bytes(downloads: StoragePath, shard: str, offset: int, size: int) -> bytes:
    """The stored image of one sample: `size` bytes at `offset` in downloads/<shard>.tar (a
    byte-range request when the run is on object storage)."""
    return read_range(downloads / f"{shard}.tar", offset, size)


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
