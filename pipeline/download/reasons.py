"""Map img2dataset's per-row status and error message to our stable download reason codes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.download.markers import (
    BAD_RESPONSE,
    BLOCKED,
    DEADLINE,
    DECODE_ERROR,
    ROBOTS_DISALLOWED,
    TOO_LARGE,
    TOO_MANY_PIXELS,
    TOO_MANY_REDIRECTS,
)
from schemas.reasons import check

# (substring of the message, reason code), first match wins. Our own guards mark their messages
# with a [code]; the rest are the texts img2dataset and urllib produce.
_RULES: list[tuple[str, str]] = [
    (ROBOTS_DISALLOWED, check("download.robots_disallowed")),
    (BLOCKED, check("download.blocked_address")),
    ("unknown url type", check("download.blocked_address")),
    ("Redirection to url", check("download.blocked_address")),
    (TOO_LARGE, check("download.too_large")),
    (TOO_MANY_PIXELS, check("download.too_many_pixels")),
    ("image area too large", check("download.too_many_pixels")),
    (TOO_MANY_REDIRECTS, check("download.too_many_redirects")),
    (DEADLINE, check("download.timeout")),
    (BAD_RESPONSE, check("download.bad_response")),
    ("X-Robots-Tag", check("download.opted_out")),
    ("HTTP Error", check("download.http_error")),
    ("timed out", check("download.timeout")),
    ("image too small", check("download.image_too_small")),
    ("aspect ratio too large", check("download.aspect_ratio")),
    (DECODE_ERROR, check("download.decode_error")),
    ("hash mismatch", check("download.decode_error")),
    ("urlopen error", check("download.network_error")),
    ("Remote end closed", check("download.network_error")),
    ("IncompleteRead", check("download.network_error")),
    ("Connection", check("download.network_error")),
    ("Errno", check("download.network_error")),
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
        return check(check("download.resize_error"))
    return check(check("download.failed"))


def classify_batch(status: pa.Array, message: pa.Array) -> pa.Array:
    """`classify` over whole Arrow columns: the same first-match-wins rules, one vectorised
    substring test per rule instead of a Python loop per row."""
    text = pc.fill_null(message, "")
    codes = pa.nulls(len(text), pa.string())
    for needle, code in _RULES:
        undecided = pc.is_null(codes)
        hit = pc.and_(undecided, pc.match_substring(text, needle))
        codes = pc.if_else(hit, code, codes)
    fallback = pc.if_else(
        pc.fill_null(pc.equal(status, "failed_to_resize"), False),
        check("download.resize_error"),
        check("download.failed"),
    )
    return pc.coalesce(codes, fallback)
