"""Map img2dataset's per-row status and error message to our stable download reason codes."""

from __future__ import annotations

from pipeline.download.fetch_guard import BLOCKED, DEADLINE, TOO_LARGE, TOO_MANY_REDIRECTS
from pipeline.download.image_guard import DECODE_ERROR, TOO_MANY_PIXELS
from schemas.reasons import check

# (substring of the message, reason code), first match wins. Our own guards mark their messages
# with a [code]; the rest are the texts img2dataset and urllib produce.
_RULES: list[tuple[str, str]] = [
    (BLOCKED, "download.blocked_address"),
    ("unknown url type", "download.blocked_address"),
    ("Redirection to url", "download.blocked_address"),
    (TOO_LARGE, "download.too_large"),
    (TOO_MANY_PIXELS, "download.too_many_pixels"),
    ("image area too large", "download.too_many_pixels"),
    (TOO_MANY_REDIRECTS, "download.too_many_redirects"),
    (DEADLINE, "download.timeout"),
    ("X-Robots-Tag", "download.opted_out"),
    ("HTTP Error", "download.http_error"),
    ("timed out", "download.timeout"),
    ("image too small", "download.image_too_small"),
    ("aspect ratio too large", "download.aspect_ratio"),
    (DECODE_ERROR, "download.decode_error"),
    ("hash mismatch", "download.decode_error"),
    ("urlopen error", "download.network_error"),
    ("Remote end closed", "download.network_error"),
    ("IncompleteRead", "download.network_error"),
    ("Connection", "download.network_error"),
    ("Errno", "download.network_error"),
]
for _, _code in _RULES:
    check(_code)


def classify(status: str | None, message: str | None) -> str:
    """The reason code for one failed row."""
    text = message or ""
    for needle, code in _RULES:
        if needle in text:
            return code
    if status == "failed_to_resize":
        return check("download.resize_error")
    return check("download.failed")
