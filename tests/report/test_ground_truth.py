"""Filters scored against a planted truth: exact precision, recall and fates on a hand-made run."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.report.ground_truth import (
    KEPT,
    fate_columns,
    score_against_truth,
    score_heads_against_truth,
)

# gt_id: (noise, duplicate_of, where it ended: a reason code or KEPT)
ROWS = {
    0: ("clean", None, KEPT),
    1: ("mismatched_caption", None, "select.clip_score"),
    2: ("boilerplate_caption", None, "ingest.caption_repeated"),
    3: ("non_english", None, KEPT),  # missed by language ID
    4: ("fault_404", None, "download.http_error"),
    5: ("exact_duplicate", 0, "dedup.exact_duplicate"),
    6: ("clean", None, "select.clip_score"),  # a false positive of the CLIP rule
    7: ("mismatched_caption", None, KEPT),  # missed by the CLIP rule
    8: ("near_duplicate_resize", 9, KEPT),
    9: ("clean", None, "dedup.near_duplicate"),  # the original dropped, its copy kept: correct
}


@pytest.fixture(scope="module")
def report():
    truth = pa.table(
        {
            "gt_id": list(ROWS),
            "noise": [r[0] for r in ROWS.values()],
            "duplicate_of": pa.array([r[1] for r in ROWS.values()], pa.int64()),
        }
    )
    pairs = pa.table({"uid": [f"u{g}" for g in ROWS], "gt_id": list(ROWS)})
    dropped = {g: r[2] for g, r in ROWS.items() if r[2] != KEPT}
    ledger = pa.table(
        {
            "uid": [f"u{g}" for g in dropped],
            "stage": [code.split(".")[0] for code in dropped.values()],
            "reason": list(dropped.values()),
            "detail": [None] * len(dropped),
        }
    )
    kept = {f"u{g}" for g, r in ROWS.items() if r[2] == KEPT}
    return score_against_truth(truth, pairs, ledger, kept)


@pytest.mark.parametrize(
    ("name", "dropped", "correct", "expected", "precision", "recall"),
    [
        ("alt-text rules (ALIGN, DataComp)", 1, 1, 1, 1.0, 1.0),
        ("language ID (fastText lid.176)", 0, 0, 1, None, 0.0),
        ("download checks (img2dataset + guards)", 1, 1, 1, 1.0, 1.0),
        ("dedup (exact, pHash, semantic)", 2, 2, 2, 1.0, 1.0),
        ("CLIP score", 2, 1, 2, 0.5, 0.5),
    ],
)
def test_filter_scores(report, name, dropped, correct, expected, precision, recall):
    score = next(s for s in report.scores if s.name == name)
    assert (score.dropped, score.correct, score.expected) == (dropped, correct, expected)
    assert (score.precision, score.recall) == (precision, recall)


def test_fates_per_noise_kind(report):
    assert report.matched == 10
    assert {k: {w: n for w, n in v.items() if n} for k, v in report.fates.items()} == {
        "clean": {KEPT: 1, "dedup": 1, "select": 1},
        "mismatched_caption": {KEPT: 1, "select": 1},
        "boilerplate_caption": {"ingest": 1},
        "non_english": {KEPT: 1},
        "fault_404": {"download": 1},
        "exact_duplicate": {"dedup": 1},
        "near_duplicate_resize": {KEPT: 1},
    }
    assert fate_columns(report) == [KEPT, "ingest", "download", "dedup", "select"]


def _score(rows: dict) -> list:
    truth = pa.table(
        {
            "gt_id": list(rows),
            "noise": [r[0] for r in rows.values()],
            "duplicate_of": pa.array([None] * len(rows), pa.int64()),
        }
    )
    pairs = pa.table({"uid": [f"u{g}" for g in rows], "gt_id": list(rows)})
    dropped = {g: r[1] for g, r in rows.items() if r[1] != KEPT}
    ledger = pa.table(
        {
            "uid": [f"u{g}" for g in dropped],
            "stage": [code.split(".")[0] for code in dropped.values()],
            "reason": list(dropped.values()),
            "detail": [None] * len(dropped),
        }
    )
    kept = {f"u{g}" for g, r in rows.items() if r[1] == KEPT}
    return score_against_truth(truth, pairs, ledger, kept).scores


def test_image_and_text_rules_are_scored_on_off_target_pictures_when_they_ran():
    rows = {
        0: ("clean", KEPT),
        1: ("off_target", "select.off_target_cluster"),
        2: ("off_target", KEPT),  # missed
        3: ("clean", "select.off_target_cluster"),  # a false positive
        4: ("off_target", "select.clip_score"),  # the CLIP rule caught it first
    }
    scores = {s.name: s for s in _score(rows)}
    image = scores["image-based (DataComp)"]
    # Reached select: all five; dropped by the rule: 1 and 3; off-target among them: 1.
    assert (image.dropped, image.correct, image.expected) == (2, 1, 3)
    # The text-based rule dropped nothing here: it did not run, so it is not scored.
    assert "text-based (DataComp)" not in scores


def test_blocklists_and_robots_are_scored_on_their_planted_kinds():
    rows = {
        0: ("clean", KEPT),
        1: ("blocklisted_url", "ingest.blocked_url"),
        2: ("blocklisted_url", "ingest.caption_repeated"),  # another ingest rule: a miss
        3: ("clean", "ingest.blocked_domain"),  # a false positive of a domain list
        4: ("blocklisted_image", "dedup.blocked_image"),
        5: ("blocklisted_image", KEPT),  # missed
        6: ("robots_disallowed", "download.robots_disallowed"),
        7: ("exact_duplicate", KEPT),
    }
    scores = {s.name: s for s in _score(rows)}
    got = {
        name: (scores[name].dropped, scores[name].correct, scores[name].expected)
        for name in (
            "URL blocklists",
            "image hash blocklists",
            "download checks (img2dataset + guards)",
        )
    }
    assert got == {
        # The URL lists run with the alt-text rules, on every input row.
        "URL blocklists": (2, 1, 2),
        "image hash blocklists": (1, 1, 2),
        "download checks (img2dataset + guards)": (1, 1, 1),
    }
    # The image list's drop is not a duplicate merge: dedup's own score leaves it out.
    assert scores["dedup (exact, pHash, semantic)"].dropped == 0


@pytest.mark.parametrize(
    ("values", "flagged", "correct", "targeted", "precision", "recall"),
    [
        # off_target rows are u0, u1; u2, u3 are clean; u9 is not in the truth (not scored).
        ([0.9, 0.2, 0.7, 0.1, 0.99], 2, 1, 2, 0.5, 0.5),
        ([0.5, 0.6, 0.4, 0.3, 0.0], 1, 1, 2, 1.0, 0.5),  # 0.5 is not over the threshold
        ([0.1, 0.1, 0.1, 0.1, 0.9], 0, 0, 2, None, 0.0),
    ],
)
def test_a_head_named_after_a_kind_is_scored_against_it(
    values, flagged, correct, targeted, precision, recall
):
    truth = pa.table(
        {
            "gt_id": [0, 1, 2, 3],
            "noise": ["off_target", "off_target", "clean", "clean"],
            "duplicate_of": pa.array([None] * 4, pa.int64()),
        }
    )
    pairs = pa.table({"uid": ["u0", "u1", "u2", "u3"], "gt_id": [0, 1, 2, 3]})
    scores = pa.table(
        {
            "uid": ["u0", "u1", "u2", "u3", "u9"],
            "score_off_target": pa.array(values, pa.float32()),
            "score_aesthetic": pa.array([5.0] * 5, pa.float32()),  # no planted kind: not scored
        }
    )
    (head,) = score_heads_against_truth(truth, pairs, scores)
    assert (head.name, head.scored, head.flagged, head.correct, head.targeted) == (
        "off_target",
        4,
        flagged,
        correct,
        targeted,
    )
    assert (head.precision, head.recall) == (precision, recall)
