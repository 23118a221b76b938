"""HTML building blocks: crawled text is escaped everywhere it lands."""

from __future__ import annotations

import pytest

from pipeline.report.html_page import Sample, esc, fmt, grid, page, table

HOSTILE = '<script>alert("x")</script> & "quotes" \'single\''


def test_captions_are_escaped_in_cells_and_attributes():
    html = grid([Sample(uid="ab" * 16, caption=HOSTILE, thumbnail="data:image/jpeg;base64,AA==")])
    assert "<script>" not in html
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot; &#x27;single&#x27;"
        in html
    )


def test_table_escapes_text_and_formats_numbers():
    html = table(["reason", "rows"], [(HOSTILE, 1234567), ("x", 0.12345)])
    assert "<script>" not in html
    assert "<td>1,234,567</td>" in html and "<td>0.123</td>" in html


def test_page_escapes_title_and_headings():
    html = page(HOSTILE, [(HOSTILE, "<p>body</p>")])
    assert "<script>" not in html and "<p>body</p>" in html


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (True, "True"),
        (3, "3"),
        (12345, "12,345"),
        (0.5, "0.500"),
        ("<b>", "&lt;b&gt;"),
    ],
)
def test_fmt(value, text):
    assert fmt(value) == text


def test_sample_without_image_or_caption():
    html = grid([Sample(uid="0123456789abcdef" * 2, caption=None, thumbnail=None, note="404")])
    assert "no image" in html and "uid 0123456789ab" in html and "404" in html
    assert esc(None) == ""
