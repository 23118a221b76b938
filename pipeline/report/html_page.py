"""HTML building blocks of the report. Every text that comes from data (captions, URLs, details)
goes through `esc`: captions are crawled text and may contain markup."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; max-width: 36rem; }
.grid { display: flex; flex-wrap: wrap; gap: .6rem; }
figure.sample { width: 140px; margin: 0; font-size: .72rem; }
figure.sample img { width: 128px; height: 128px; object-fit: contain; background: #f3f3f3; }
figure.sample .none { width: 128px; height: 128px; background: #f3f3f3; display: flex;
  align-items: center; justify-content: center; color: #888; }
.cluster { display: flex; gap: .6rem; padding: .4rem; border: 1px solid #eee; margin: .4rem 0; }
.note { color: #555; font-size: .9rem; }
img.plot { max-width: 100%; }
"""


def esc(value: object) -> str:
    """Text for HTML content and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: object) -> str:
    """Numbers for tables: ints with thousands separators, floats to 3 decimals."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return esc(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], text_cols: int = 1) -> str:
    """A table; the first `text_cols` columns are left-aligned text, the rest formatted values."""
    head = "".join(
        f'<th class="text">{esc(h)}</th>' if i < text_cols else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = [
            f'<td class="text">{esc(v)}</td>' if i < text_cols else f"<td>{fmt(v)}</td>"
            for i, v in enumerate(row)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def plot(uri: str, alt: str) -> str:
    return f'<img class="plot" src="{uri}" alt="{esc(alt)}">'


@dataclass(frozen=True)
class Sample:
    """One sample as a grid cell: a thumbnail (data URI) when the image was downloaded."""

    uid: str
    caption: str | None
    thumbnail: str | None
    note: str = ""


def sample_cell(sample: Sample) -> str:
    picture = (
        f'<img src="{sample.thumbnail}" alt="{esc(sample.caption)}">'
        if sample.thumbnail
        else '<div class="none">no image</div>'
    )
    note = f"<br><i>{esc(sample.note)}</i>" if sample.note else ""
    caption = esc(sample.caption) if sample.caption is not None else f"uid {esc(sample.uid[:12])}"
    return f'<figure class="sample">{picture}<figcaption>{caption}{note}</figcaption></figure>'


def grid(samples: Sequence[Sample]) -> str:
    return '<div class="grid">' + "".join(sample_cell(s) for s in samples) + "</div>"


def page(title: str, sections: Sequence[tuple[str, str]]) -> str:
    """The whole document: a table of contents, then each (heading, body) section."""
    toc = "".join(
        f'<li><a href="#s{i}">{esc(heading)}</a></li>' for i, (heading, _) in enumerate(sections)
    )
    body = "".join(
        f'<section id="s{i}"><h2>{esc(heading)}</h2>{content}</section>'
        for i, (heading, content) in enumerate(sections)
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{esc(title)}</h1><ul>{toc}</ul>{body}</body></html>\n"
    )
