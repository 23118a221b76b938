"""Dedup scored against the planted copies: recall per kind of copy and precision per reason, exact
on a hand-made run, and the same tables in the report's ground-truth section."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.report.ground_truth import (
    ALL,
    DropPrecision,
    KindRecall,
    format_dedup_truth,
    score_dedup_against_truth,
)
from pipeline.report.run_tables import GROUND_TRUTH, RunTables
from pipeline.report.sections import truth_section
from pipeline.run_dir import RunDir
from schemas.reasons import check

EXACT = check("dedup.exact_duplicate")
NEAR = check("dedup.near_duplicate")
SEMANTIC = check("dedup.semantic_duplicate")
EVAL = check("dedup.eval_overlap")
BLOCKED = check("dedup.blocked_image")
HTTP = check("download.http_error")
KEPT = "kept"
LOST = "lost"  # dropped before dedup (a failed download): never reached it

# gt_id: (noise, duplicate_of, fate: KEPT, LOST or (reason, detail))
ROWS: dict[int, tuple[str, int | None, object]] = {
    0: ("clean", None, KEPT),
    1: ("exact_duplicate", 0, (EXACT, "u0")),  # merged: names its original
    2: ("near_duplicate_crop", 0, (NEAR, "u0")),  # merged
    3: ("clean", None, KEPT),
    4: ("variant_flip", 3, KEPT),  # missed
    5: ("variant_crop", 3, (SEMANTIC, "u3 cosine 0.9712")),  # merged
    6: ("clean", None, (NEAR, "u7")),  # the original names its copy: merged
    7: ("variant_colour", 6, KEPT),
    8: ("clean", None, (SEMANTIC, "u12 cosine 0.9600")),  # names a further copy of itself
    9: ("variant_overlay", 8, (SEMANTIC, "u12 cosine 0.9500")),  # merged through the third
    10: ("clean", None, KEPT),
    11: ("variant_overlay", 10, LOST),  # planted, never paired
    12: ("variant_flip", 8, KEPT),  # its original names it: merged
    13: ("clean", None, (SEMANTIC, "u14 cosine 0.9123")),  # two pictures merged: an error
    14: ("clean", None, KEPT),
    15: ("variant_crop", 16, KEPT),  # its original was lost: not paired
    16: ("clean", None, LOST),
    17: ("clean", None, (EVAL, "eval pHash 00ff00ff00ff00ff")),  # not a merge drop
    18: ("near_duplicate_resize", 17, KEPT),  # paired (its original reached dedup), not merged
    19: ("blocklisted_image", None, (BLOCKED, "list images.txt (sha256)")),  # not a merge drop
}
# A dedup drop of a sample without a ground-truth row.
UNLINKED = ("x1", NEAR, "u14")


def _tables() -> tuple[pa.Table, pa.Table, pa.Table, set[str]]:
    truth = pa.table(
        {
            "gt_id": list(ROWS),
            "noise": [r[0] for r in ROWS.values()],
            "duplicate_of": pa.array([r[1] for r in ROWS.values()], pa.int64()),
        }
    )
    pairs = pa.table({"uid": [f"u{g}" for g in ROWS] + ["x1"], "gt_id": [*ROWS, None]})
    ledger = [
        (f"u{g}", "dedup", *fate) for g, (_, _, fate) in ROWS.items() if isinstance(fate, tuple)
    ]
    ledger += [(f"u{g}", "download", HTTP, "404") for g, r in ROWS.items() if r[2] == LOST]
    ledger.append((UNLINKED[0], "dedup", UNLINKED[1], UNLINKED[2]))
    ledger_table = pa.table(
        {
            name: [row[i] for row in ledger]
            for i, name in enumerate(["uid", "stage", "reason", "detail"])
        }
    )
    kept = {f"u{g}" for g, r in ROWS.items() if r[2] == KEPT}
    return truth, pairs, ledger_table, kept


@pytest.fixture(scope="module")
def result():
    truth, pairs, ledger, kept = _tables()
    # The whole ledger: rows of other stages are left out by their `stage`.
    return score_dedup_against_truth(truth, pairs, ledger, kept)


def test_recall_per_kind_of_copy(result):
    assert result.kinds == [
        KindRecall("exact_duplicate", planted=1, paired=1, merged=1),
        KindRecall("near_duplicate_resize", planted=1, paired=1, merged=0),
        KindRecall("near_duplicate_crop", planted=1, paired=1, merged=1),
        KindRecall("variant_crop", planted=2, paired=1, merged=1),
        KindRecall("variant_flip", planted=2, paired=2, merged=1),
        KindRecall("variant_colour", planted=1, paired=1, merged=1),
        KindRecall("variant_overlay", planted=2, paired=1, merged=1),
        KindRecall(ALL, planted=10, paired=8, merged=6),
    ]
    recalls = {k.kind: (k.missed, k.recall) for k in result.kinds}
    assert recalls["variant_flip"] == (1, 0.5)
    assert recalls["near_duplicate_resize"] == (1, 0.0)
    assert recalls[ALL] == (2, 0.75)


def test_precision_per_reason(result):
    assert result.drops == [
        DropPrecision(EXACT, drops=1, same_picture=1),
        DropPrecision(NEAR, drops=2, same_picture=2),
        DropPrecision(SEMANTIC, drops=4, same_picture=3),
        DropPrecision(ALL, drops=7, same_picture=6),
    ]
    assert [(d.distinct_pictures, d.precision) for d in result.drops] == [
        (0, 1.0),
        (0, 1.0),
        (1, 0.75),
        (1, 6 / 7),
    ]
    assert result.unlinked == 1


def test_dedup_ledger_alone_and_kept_as_a_table_give_the_same(result):
    truth, pairs, ledger, kept = _tables()
    dedup_only = ledger.filter(pc.equal(ledger.column("stage"), "dedup")).drop(["stage"])
    kept_table = pa.table({"uid": sorted(kept)})
    assert score_dedup_against_truth(truth, pairs, dedup_only, kept_table) == result


_LEDGER = pa.schema([("uid", pa.string()), ("reason", pa.string()), ("detail", pa.string())])


@pytest.mark.parametrize(
    ("case", "kinds", "drops"),
    [
        # Nothing dropped: every paired copy missed, no drops to judge.
        (
            "nothing dropped",
            [KindRecall("exact_duplicate", 1, 1, 0), KindRecall(ALL, 1, 1, 0)],
            [DropPrecision(ALL, 0, 0)],
        ),
        # The copy kept and the original dropped against it: merged, and a correct drop.
        (
            "original dropped",
            [KindRecall("exact_duplicate", 1, 1, 1), KindRecall(ALL, 1, 1, 1)],
            [DropPrecision(EXACT, 1, 1), DropPrecision(ALL, 1, 1)],
        ),
    ],
)
def test_small_cases(case, kinds, drops):
    truth = pa.table(
        {
            "gt_id": [0, 1],
            "noise": ["clean", "exact_duplicate"],
            "duplicate_of": pa.array([None, 0], pa.int64()),
        }
    )
    pairs = pa.table({"uid": ["a", "b"], "gt_id": [0, 1]})
    if case == "nothing dropped":
        ledger = pa.table({"uid": [], "reason": [], "detail": []}, schema=_LEDGER)
        kept = {"a", "b"}
    else:
        ledger = pa.table({"uid": ["a"], "reason": [EXACT], "detail": ["b"]}, schema=_LEDGER)
        kept = {"b"}
    result = score_dedup_against_truth(truth, pairs, ledger, kept)
    assert (result.kinds, result.drops, result.unlinked) == (kinds, drops, 0)
    assert result.drops[-1].precision == (None if case == "nothing dropped" else 1.0)


def test_format_dedup_truth(result):
    text = format_dedup_truth(result)
    lines = text.splitlines()
    assert lines[0].split() == ["copy", "kind", "planted", "paired", "merged", "missed", "recall"]
    assert lines[5].split() == ["variant_flip", "2", "2", "1", "1", "0.500"]
    assert lines[8].split() == ["all", "10", "8", "6", "2", "0.750"]
    assert lines[10].split()[:2] == ["dedup", "reason"]
    assert lines[13].split() == [SEMANTIC, "4", "3", "1", "0.750"]
    assert lines[14].split() == ["all", "7", "6", "1", "0.857"]
    assert lines[-1] == "merge drops not linked to the ground truth: 1"
    # Columns line up: every row of a table is as wide as its header.
    assert len({len(line) for line in lines[:9]}) == 1


def test_truth_section_shows_the_dedup_tables(tmp_path):
    truth, pairs, ledger, kept = _tables()
    run = RunDir(tmp_path)
    (tmp_path / GROUND_TRUTH).parent.mkdir(parents=True)
    pq.write_table(truth, tmp_path / GROUND_TRUTH)
    run.stats_file.write_text(json.dumps({"stages": {"dedup": {}}}))
    tables = RunTables(
        run=run,
        stats=run.stats(),
        ledger=ledger,
        candidates=None,
        annotations=None,
        selection=None,
        dedup=pa.table({"uid": sorted(kept)}),
        comparison=None,
    )
    heading, body = truth_section(tables, pairs)
    assert heading == "Filters against the planted ground truth"
    assert "<h3>Dedup per kind of planted copy</h3>" in body
    assert (
        '<tr><td class="text">variant_flip</td><td>2</td><td>2</td><td>1</td><td>1</td>'
        "<td>0.500</td></tr>"
    ) in body
    assert (
        f'<tr><td class="text">{SEMANTIC}</td><td>4</td><td>3</td><td>1</td><td>0.750</td></tr>'
    ) in body
    assert "Dedup drops not linked to the ground truth: 1." in body

    # Without a complete dedup stage the section has no dedup tables.
    run.stats_file.write_text(json.dumps({"stages": {}}))
    _, body = truth_section(tables, pairs)
    assert "Dedup per kind" not in body
