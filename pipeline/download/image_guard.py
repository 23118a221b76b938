"""Checks on downloaded bytes before OpenCV decodes them: declared pixel count (decompression
bombs) and truncation, which OpenCV's JPEG decoder silently pads with grey."""

from __future__ import annotations

import io
import os
import warnings

from img2dataset.resizer import Resizer
from PIL import Image, UnidentifiedImageError

from pipeline.download.markers import DECODE_ERROR, TOO_MANY_PIXELS

# A JPEG ends at its EOI marker; some encoders append a little padding or metadata after it.
_JPEG_EOI = b"\xff\xd9"
_JPEG_TAIL = 4096


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
    if kind == "JPEG" and _JPEG_EOI not in data[-_JPEG_TAIL:]:
        return f"{DECODE_ERROR}: truncated JPEG (no end-of-image marker)"
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
