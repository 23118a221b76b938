"""img2dataset statuses and messages map to exact download reason codes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.download.reasons import classify, classify_batch

CASES = [
    (
        "failed_to_download",
        "[robots_disallowed] robots.txt of http://127.0.0.1:8000 disallows this path",
        "download.robots_disallowed",
    ),
    (
        # Wins over the deadline marker its reason quotes.
        "failed_to_download",
        "[robots_disallowed] robots.txt of http://127.0.0.1:8000 is unreachable"
        " (FetchRefused: [deadline] timed out: request not complete within 1.0 s)",
        "download.robots_disallowed",
    ),
    ("failed_to_download", "HTTP Error 404: Not Found", "download.http_error"),
    ("failed_to_download", "HTTP Error 500: Internal Server Error", "download.http_error"),
    ("failed_to_download", "timed out", "download.timeout"),
    ("failed_to_download", "The read operation timed out", "download.timeout"),
    (
        "failed_to_download",
        "[deadline] timed out: body not complete within 60 s",
        "download.timeout",
    ),
    (
        "failed_to_download",
        "<urlopen error [Errno 111] Connection refused>",
        "download.network_error",
    ),
    (
        "failed_to_download",
        "<urlopen error [Errno -2] Name or service not known>",
        "download.network_error",
    ),
    (
        "failed_to_download",
        "Remote end closed connection without response",
        "download.network_error",
    ),
    (
        "failed_to_download",
        "Use of image disallowed by X-Robots-Tag directive",
        "download.opted_out",
    ),
    (
        "failed_to_download",
        "<urlopen error [blocked_address] address 127.0.0.1 is not globally routable>",
        "download.blocked_address",
    ),
    ("failed_to_download", "<urlopen error unknown url type: file>", "download.blocked_address"),
    (
        "failed_to_download",
        "HTTP Error 302: Found - Redirection to url 'file:///etc/passwd' is not allowed",
        "download.blocked_address",
    ),
    ("failed_to_download", "[too_large] body over 100 bytes", "download.too_large"),
    (
        "failed_to_download",
        "HTTP Error 302: [too_many_redirects] more than 5 redirects or a loop: Found",
        "download.too_many_redirects",
    ),
    (
        "failed_to_resize",
        "[too_many_pixels] 14000x14000 declared, limit 89478485 pixels",
        "download.too_many_pixels",
    ),
    ("failed_to_resize", "image area too large", "download.too_many_pixels"),
    ("failed_to_resize", "image too small", "download.image_too_small"),
    ("failed_to_resize", "aspect ratio too large", "download.aspect_ratio"),
    ("failed_to_resize", "Image decoding error", "download.decode_error"),
    (
        "failed_to_resize",
        "Image decoding error: truncated JPEG (no end-of-image marker)",
        "download.decode_error",
    ),
    (
        "failed_to_resize",
        "OpenCV(4.14.0) error: (-215:Assertion failed) in function 'resize'",
        "download.resize_error",
    ),
    (
        "failed_to_download",
        "[bad_response] HTTPException: got more than 100 headers",
        "download.bad_response",
    ),
    ("failed_to_download", "something nobody anticipated", "download.failed"),
    ("failed_to_download", None, "download.failed"),
]


@pytest.mark.parametrize(("status", "message", "code"), CASES)
def test_classify(status, message, code):
    assert classify(status, message) == code


def test_classify_batch_gives_every_case_its_code_in_one_pass():
    status = pa.array([s for s, _, _ in CASES] + [None], pa.string())
    message = pa.array([m for _, m, _ in CASES] + [None], pa.string())
    codes = classify_batch(status, message).to_pylist()
    assert codes == [c for _, _, c in CASES] + ["download.failed"]
