"""The report's balance section: MetaCLIP's picture of balancing (Xu et al. 2023, figure of
entry counts), the entries' match counts by rank before and after on log axes with the cap t,
head and tail totals, the most matched entries and the samples kept per outcome. Drawn from the
balance stage's stats.json figures alone (compact: bounded by the entry list); nothing when
balancing did not apply."""

from __future__ import annotations

from typing import Any

from pipeline.report import plots
from pipeline.report.html_page import plot, table
from pipeline.report.run_tables import RunTables
from pipeline.report.thumbnails import png_uri
from schemas.reasons import check

Section = tuple[str, str]

# What each kept/dropped outcome of stats.json's rows_by_outcome means, for the table.
OUTCOMES = {
    "tail_entry": "kept: matches a tail entry (count <= t)",
    "head_draw": "kept by the draw: only head entries",
    "unmatched": "kept: matches no entry (balance.keep_unmatched)",
    check("balance.head_entry"): "dropped: only head entries, the draw said drop",
    check("balance.no_entry_match"): "dropped: matches no entry",
}


def _summary(entry: dict[str, Any]) -> str:
    dist = entry["distribution"]
    rows = [
        ("entries in the list", entry["entries"]),
        ("entries matched", entry["matched_entries"]),
        ("samples matching an entry", f"{entry['matched_share']:.1%}"),
        (f"t ({entry['t_rule']})", entry["t"]),
        ("head entries (more than t matches)", entry["head_entries"]),
        ("matches of head entries: before", dist["head"]["matches_before"]),
        ("matches of head entries: after", dist["head"]["matches_after"]),
        ("matches of tail entries (kept whole)", dist["tail"]["matches_before"]),
    ]
    return table(["", "value"], rows)


def balance_section(tables: RunTables) -> Section | None:
    """The balance section, or None when the stage has not run or had no entry list."""
    entry = tables.stats.get("stages", {}).get("balance")
    if not entry or not entry.get("applied"):
        return None
    dist = entry["distribution"]
    parts = [
        '<p class="note">MetaCLIP balancing (Xu et al. 2023, Algorithm 1): a sample is kept '
        "with probability 1 - prod(1 - t / count) over the head entries its caption matches; "
        "a sample matching a tail entry is always kept.</p>",
        _summary(entry),
    ]
    curve, buckets, t = dist["rank_curve"], dist["histogram"], entry["t"]
    if curve:
        chart = plots.entry_rank_chart(
            [p["rank"] for p in curve], [p["before"] for p in curve], [p["after"] for p in curve], t
        )
        parts.append(plot(png_uri(chart), "matches per entry by rank, before and after"))
    if buckets:
        chart = plots.entry_bucket_chart(
            [b["lo"] for b in buckets],
            [b["entries_before"] for b in buckets],
            [b["entries_after"] for b in buckets],
            t,
        )
        parts.append(plot(png_uri(chart), "entries per log2 bucket of matches, before and after"))
    outcomes = [
        (OUTCOMES.get(kind, kind), n) for kind, n in entry.get("rows_by_outcome", {}).items()
    ]
    parts.append("<h3>Samples per outcome</h3>" + table(["outcome", "samples"], outcomes))
    top = [(r["entry"], r["before"], r["after"]) for r in dist["top"]]
    parts.append("<h3>Most matched entries</h3>" + table(["entry", "before", "after"], top))
    return "Balance", "".join(parts)
