"""Checks on downloaded bytes before img2dataset's resizer uses them: declared pixel count
(decompression bombs) and truncation, which OpenCV's JPEG decoder silently pads with grey.

A JPEG cut short and given an end-of-image marker again (a proxy or a cache that closes what it
truncated) passes a check of its last bytes; libjpeg then meets the marker inside the scan data,
warns "premature end of data segment" and fills the rest with grey, and OpenCV keeps the image. So
every JPEG is decoded by libjpeg-turbo through simplejpeg, strict about exactly that warning (and
"premature end of JPEG file"); other recoverable warnings, such as extraneous bytes before a
marker, which many cameras write into images that decode whole, are left to OpenCV.

That decode is the one the resizer uses: its `cv2.imdecode` is handed the array already decoded
on this thread (pixel-identical to OpenCV's own decode with IMREAD_UNCHANGED: the same
libjpeg-turbo, the same default DCT and upsampling, no EXIF rotation; tests/download/
test_image_guard.py compares them), so the check costs no second decode.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from typing import Any

import cv2
import img2dataset.resizer
import numpy as np
import simplejpeg
from img2dataset.resizer import Resizer
from PIL import Image, UnidentifiedImageError

from pipeline.download.markers import DECODE_ERROR, TOO_MANY_PIXELS

# A JPEG ends at its EOI marker; some encoders append a little padding or metadata after it.
_JPEG_EOI = b"\xff\xd9"
_JPEG_TAIL = 4096
# libjpeg's warnings for a decode that ran out of scan data (JWRN_HIT_MARKER, JWRN_JPEG_EOF).
_JPEG_ENDED_EARLY = ("premature end of data segment", "premature end of jpeg file")
# JPEG colour spaces OpenCV decodes to BGR (or to one grey channel); CMYK and YCCK files are
# converted by OpenCV its own way, so those are only checked here and decoded by OpenCV.
_AS_OPENCV = {"Gray": "GRAY", "YCbCr": "BGR", "RGB": "BGR"}


def decode_jpeg(data: bytes) -> tuple[np.ndarray | None, str | None]:
    """(the image as OpenCV's IMREAD_UNCHANGED decodes it, or None; libjpeg's warning when the
    scan data ends before the last pixel, else None).

    The image is None when the file is truncated, when libjpeg warns about anything else (OpenCV
    then decodes it as before) or when its colour space is one OpenCV converts its own way.
    """
    try:
        _, _, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        target = _AS_OPENCV.get(colorspace)
        # A colour space OpenCV converts itself is still decoded, to grey, for the check.
        image = simplejpeg.decode_jpeg(data, colorspace=target or "GRAY", strict=True)
    except ValueError as exc:
        message = str(exc)
        if any(marker in message.lower() for marker in _JPEG_ENDED_EARLY):
            return None, message
        return None, None
    if target is None:
        return None, None
    return (image[:, :, 0] if target == "GRAY" else image), None


def _header_problem(data: bytes, max_pixels: int) -> tuple[str | None, str | None]:
    """(error text or None, Pillow's format name): the checks that read no pixel."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            kind = image.format
    except Image.DecompressionBombError as exc:
        return f"{TOO_MANY_PIXELS} {exc}", None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return f"{DECODE_ERROR}: not a recognised image ({type(exc).__name__})", None
    if width * height > max_pixels:
        return f"{TOO_MANY_PIXELS} {width}x{height} declared, limit {max_pixels} pixels", kind
    if kind == "JPEG" and _JPEG_EOI not in data[-_JPEG_TAIL:]:
        return f"{DECODE_ERROR}: truncated JPEG (no end-of-image marker)", kind
    if kind == "PNG" and b"IEND" not in data[-64:]:
        return f"{DECODE_ERROR}: truncated PNG (no IEND chunk)", kind
    return None, kind


def _inspect(data: bytes, max_pixels: int) -> tuple[str | None, np.ndarray | None]:
    error, kind = _header_problem(data, max_pixels)
    if error is not None or kind != "JPEG":
        return error, None
    image, ended = decode_jpeg(data)
    if ended is not None:
        return f"{DECODE_ERROR}: truncated JPEG ({ended})", None
    return None, image


def inspect_image(data: bytes, max_pixels: int) -> str | None:
    """None if the bytes look like a complete image within the pixel limit, else the error text.

    The pixel bound is read from the header (Pillow's lazy open), so a 24 kB PNG declaring
    14000x14000 pixels is refused without allocating its 196 megapixels; a JPEG is decoded only
    within that bound.
    """
    return _inspect(data, max_pixels)[0]


_decoded = threading.local()  # the image SafeResizer decoded on this thread, for its imdecode


class _Cv2WithDecoded:
    """img2dataset.resizer's `cv2`: OpenCV, except that `imdecode` returns the image this thread's
    SafeResizer decoded already (once; OpenCV decodes anything else)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(cv2, name)

    @staticmethod
    def imdecode(buf: np.ndarray, flags: int) -> np.ndarray | None:
        image = getattr(_decoded, "image", None)
        if image is not None:
            _decoded.image = None
            return image
        return cv2.imdecode(buf, flags)


class SafeResizer(Resizer):
    """img2dataset's Resizer with `inspect_image` run first, reusing its JPEG decode."""

    def __init__(self, *args, max_pixels: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_pixels = max_pixels

    def __call__(self, img_stream, blurring_bbox_list=None):  # type: ignore[no-untyped-def]
        # The resizer module's only use of OpenCV's decoder is its one imdecode call. Installed
        # here, in the process that decodes: img2dataset builds the resizer on the driver and
        # pickles it to spawned workers and executors, whose resizer module is fresh (installed in
        # __init__ only, every worker decoded each JPEG twice).
        if not isinstance(img2dataset.resizer.cv2, _Cv2WithDecoded):
            img2dataset.resizer.cv2 = _Cv2WithDecoded()
        img_stream.seek(0)
        error, image = _inspect(img_stream.read(), self.max_pixels)
        if error is not None:
            return None, None, None, None, None, error
        # OpenCV reads its decode bound once, at the first decode of the process: set it here so
        # that Spark executors (pyspark distributor), which never ran the driver's setup, get it.
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(self.max_pixels)
        img_stream.seek(0)
        _decoded.image = image
        try:
            return super().__call__(img_stream, blurring_bbox_list)
        finally:
            _decoded.image = None
