"""The report's semantic-duplicates section: groups from dedup.semantic_duplicate ledger rows, the
cosine read from their detail, and no section when the semantic pass dropped nothing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.report.run_tables import RunTables
from pipeline.report.sections import Lookup, parse_semantic_detail, semantic_section
from pipeline.run_dir import RunDir
from schemas.reasons import check

SEMANTIC = check("dedup.semantic_duplicate")
NEAR = check("dedup.near_duplicate")
K1, K2 = "a1" * 16, "b2" * 16
D1, D2, D3 = "c3" * 16, "d4" * 16, "e5" * 16


def _tables(tmp_path, rows: list[tuple[str, str, str, str | None]]) -> RunTables:
    ledger = pa.table(
        {name: [r[i] for r in rows] for i, name in enumerate(["uid", "stage", "reason", "detail"])},
        schema=pa.schema([(n, pa.string()) for n in ["uid", "stage", "reason", "detail"]]),
    )
    return RunTables(
        run=RunDir(tmp_path),
        stats={"stages": {}},
        ledger=ledger,
        candidates=None,
        annotations=None,
        selection=None,
        dedup=None,
        comparison=None,
    )


@pytest.mark.parametrize(
    ("detail", "parsed"),
    [
        (f"{K1} cosine 0.9934", (K1, 0.9934)),
        (f"{K1} cosine 1.0000", (K1, 1.0)),
        (K1, (K1, None)),
        (f"{K1} cosine n/a", (K1, None)),
        (None, ("", None)),
    ],
)
def test_parse_semantic_detail(detail, parsed):
    assert parse_semantic_detail(detail) == parsed


def test_groups_with_kept_first_and_cosines(tmp_path):
    tables = _tables(
        tmp_path,
        [
            (D1, "dedup", SEMANTIC, f"{K1} cosine 0.9934"),
            (D2, "dedup", SEMANTIC, f"{K1} cosine 0.9712"),
            (D3, "dedup", SEMANTIC, f"{K2} cosine 0.9800"),
            ("f6" * 16, "dedup", NEAR, K2),  # a pHash drop: not in this section
        ],
    )
    heading, body = semantic_section(tables, Lookup())
    assert heading == "Semantic duplicates"
    assert "3 samples dropped as semantic duplicates" in body and "in 2 groups" in body
    assert "the lowest cosine to a kept sample is 0.9712" in body
    # Groups: the larger first (K1, 2 copies), then K2; in each the kept sample, then its copies
    # least alike first. Samples without a caption show their uid's first 12 characters.
    order = [
        (K1, "kept"),
        (D2, "dropped, cosine 0.9712"),
        (D1, "dropped, cosine 0.9934"),
        (K2, "kept"),
        (D3, "dropped, cosine 0.9800"),
    ]
    positions = [body.index(f"uid {uid[:12]}<br><i>{note}</i>") for uid, note in order]
    assert positions == sorted(positions)
    assert body.count('<div class="cluster">') == 2
    assert "f6f6f6f6" not in body


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [(D1, "dedup", NEAR, K1), (D2, "download", check("download.http_error"), "404")],
    ],
    ids=["empty ledger", "no semantic drops"],
)
def test_no_section_without_semantic_drops(tmp_path, rows):
    assert semantic_section(_tables(tmp_path, rows), Lookup()) is None
