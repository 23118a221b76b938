"""Checks on downloaded bytes before OpenCV decodes them: declared pixel count (decompression
bombs) and truncation, which OpenCV's JPEG decoder silently pads with grey.

A JPEG cut short and given an end-of-image marker again (a proxy or a cache that closes what it
truncated) passes a check of its last bytes; libjpeg then meets the marker inside the scan data,
warns "premature end of data segment" and fills the rest with grey, and OpenCV keeps the image. So
every JPEG is also entropy-decoded by libjpeg-turbo through simplejpeg, strict about exactly that
warning (and "premature end of JPEG file"); other recoverable warnings, such as extraneous bytes
before a marker, which many cameras write into images that decode whole, are left to OpenCV.
"""

from __future__ import annotations

import io
import os
import warnings

import simplejpeg
from img2dataset.resizer import Resizer
from PIL import Image, UnidentifiedImageError

from pipeline.download.markers import DECODE_ERROR, TOO_MANY_PIXELS

# A JPEG ends at its EOI marker; some encoders append a little padding or metadata after it.
_JPEG_EOI = b"\xff\xd9"
_JPEG_TAIL = 4096
# libjpeg's warnings for a decode that ran out of scan data (JWRN_HIT_MARKER, JWRN_JPEG_EOF).
_JPEG_ENDED_EARLY = ("premature end of data segment", "premature end of jpeg file")


def jpeg_ended_early(data: bytes) -> str | None:
    """libjpeg's warning when the scan data ends before the last pixel, else None.

    A full decode to grey (the cheapest output that still decodes every scan): about a third of
    OpenCV's own decode for a baseline JPEG, two thirds for a progressive one (see the note on
    the image guard in README.md).
    """
    try:
        simplejpeg.decode_jpeg(data, colorspace="GRAY", fastdct=True, strict=True)
    except ValueError as exc:
        message = str(exc)
        if any(marker in message.lower() for marker in _JPEG_ENDED_EARLY):
            return message
    return None


def inspect_image(data: bytes, max_pixels: int) -> str | None:
    """None if the bytes look like a complete image within the pixel limit, else the error text.

    Reads only the header (Pillow's lazy open), so a 24 kB PNG declaring 14000x14000 pixels is
    refused without allocating its 196 megapixels.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            kind = image.format
    except Image.DecompressionBombError as exc:
        return f"{TOO_MANY_PIXELS} {exc}"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return f"{DECODE_ERROR}: not a recognised image ({type(exc).__name__})"
    if width * height > max_pixels:
        return f"{TOO_MANY_PIXELS} {width}x{height} declared, limit {max_pixels} pixels"
    if kind == "JPEG":
        if _JPEG_EOI not in data[-_JPEG_TAIL:]:
            return f"{DECODE_ERROR}: truncated JPEG (no end-of-image marker)"
        ended = jpeg_ended_early(data)
        if ended is not None:
            return f"{DECODE_ERROR}: truncated JPEG ({ended})"
    if kind == "PNG" and b"IEND" not in data[-64:]:
        return f"{DECODE_ERROR}: truncated PNG (no IEND chunk)"
    return None


class SafeResizer(Resizer):
    """img2dataset's Resizer with `inspect_image` run first."""

    def __init__(self, *args, max_pixels: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_pixels = max_pixels

    def __call__(self, img_stream, blurring_bbox_list=None):  # type: ignore[no-untyped-def]
        img_stream.seek(0)
        error = inspect_image(img_stream.read(), self.max_pixels)
        if error is not None:
            return None, None, None, None, None, error
        # OpenCV reads its decode bound once, at the first decode of the process: set it here so
        # that Spark executors (pyspark distributor), which never ran the driver's setup, get it.
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(self.max_pixels)
        img_stream.seek(0)
        return super().__call__(img_stream, blurring_bbox_list)
