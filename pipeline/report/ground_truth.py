"""How well each filter removed the noise it targets, scored against a planted ground truth (the
demo's synthetic web labels every pair with its noise kind)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import pyarrow as pa

from pipeline.stages import STAGE_NAMES as STAGES
from schemas.ground_truth import (
    DUPLICATE_KINDS,
    FILE_BACKED_FAULTS,
    NOISE_KINDS,
    PICTURELESS_FAULTS,
)
from schemas.reasons import check, reasons_for_stage

KEPT = "kept"


@dataclass(frozen=True)
class FilterTarget:
    """A filter (a set of reason codes of one stage) and the noise kinds it is meant to remove."""

    name: str
    stage: str
    reasons: frozenset[str]
    targets: frozenset[str]


_TEXT_RULES = frozenset(
    {
        check("ingest.caption_too_short"),
        check("ingest.too_few_words"),
        check("ingest.too_many_words"),
        check("ingest.caption_repeated"),
        check("ingest.url_too_many_captions"),
        check("ingest.rare_token"),
    }
)
FILTERS: tuple[FilterTarget, ...] = (
    FilterTarget(
        "alt-text rules (ALIGN, DataComp)",
        "ingest",
        _TEXT_RULES,
        frozenset({"boilerplate_caption"}),
    ),
    FilterTarget(
        "language ID (fastText lid.176)",
        "ingest",
        frozenset({check("ingest.language"), check("ingest.language_score")}),
        frozenset({"non_english"}),
    ),
    FilterTarget(
        "download checks (img2dataset + guards)",
        "download",
        frozenset(reasons_for_stage("download")),
        # A redirect to an allowed host is followed and its picture kept: not noise to drop.
        frozenset(
            (PICTURELESS_FAULTS | FILE_BACKED_FAULTS | {"small_image", "extreme_aspect"})
            - {"fault_redirect"}
        ),
    ),
    # Targets of dedup are every member of a planted duplicate group: which copy survives is the
    # keep rule's choice, so recall counts drops against (members - 1) per group.
    FilterTarget(
        "pHash dedup",
        "dedup",
        frozenset({check("dedup.exact_duplicate"), check("dedup.near_duplicate")}),
        frozenset(DUPLICATE_KINDS),
    ),
    FilterTarget(
        "CLIP score",
        "select",
        frozenset({check("select.clip_score"), check("select.no_clip_score")}),
        frozenset({"mismatched_caption"}),
    ),
)


@dataclass(frozen=True)
class FilterScore:
    """One filter's drops scored against the truth."""

    name: str
    stage: str
    dropped: int
    correct: int
    expected: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.dropped if self.dropped else None

    @property
    def recall(self) -> float | None:
        return min(self.correct, self.expected) / self.expected if self.expected else None


@dataclass(frozen=True)
class TruthReport:
    """Fate of every noise kind, and each filter's precision/recall."""

    fates: dict[str, dict[str, int]]  # noise kind -> {"kept" | stage: rows}
    scores: list[FilterScore]
    matched: int  # input rows linked to a ground-truth row


def _fate_by_gt(pairs: pa.Table, ledger: pa.Table, kept_uids: set[str]) -> dict[int, str]:
    stage_of = dict(
        zip(ledger.column("uid").to_pylist(), ledger.column("stage").to_pylist(), strict=True)
    )
    fate: dict[int, str] = {}
    for uid, gt_id in zip(
        pairs.column("uid").to_pylist(), pairs.column("gt_id").to_pylist(), strict=True
    ):
        if gt_id is None or gt_id in fate:
            continue
        fate[gt_id] = KEPT if uid in kept_uids else stage_of.get(uid, "unaccounted")
    return fate


def score_against_truth(
    truth: pa.Table, pairs: pa.Table, ledger: pa.Table, kept_uids: set[str]
) -> TruthReport:
    """Score the run's drops against `truth` (gt_id, noise, duplicate_of), linked by `gt_id`.

    `pairs` maps input rows to uids (see input_pairs.py); `kept_uids` are the samples in shards.
    """
    noise = dict(
        zip(truth.column("gt_id").to_pylist(), truth.column("noise").to_pylist(), strict=True)
    )
    group = {
        g: (d if d is not None else g)
        for g, d in zip(
            truth.column("gt_id").to_pylist(), truth.column("duplicate_of").to_pylist(), strict=True
        )
    }
    fate = _fate_by_gt(pairs, ledger, kept_uids)
    reason_of = dict(
        zip(ledger.column("uid").to_pylist(), ledger.column("reason").to_pylist(), strict=True)
    )
    gt_reason = {
        gt: reason_of.get(uid)
        for uid, gt in zip(
            pairs.column("uid").to_pylist(), pairs.column("gt_id").to_pylist(), strict=True
        )
        if gt is not None
    }

    fates: dict[str, dict[str, int]] = {k: dict.fromkeys([KEPT, *STAGES], 0) for k in NOISE_KINDS}
    for gt, where in fate.items():
        fates.setdefault(noise[gt], dict.fromkeys([KEPT, *STAGES], 0))
        fates[noise[gt]][where] = fates[noise[gt]].get(where, 0) + 1
    fates = {k: v for k, v in fates.items() if sum(v.values())}

    order = {stage: i for i, stage in enumerate(STAGES)}
    scores = []
    for f in FILTERS:
        # Rows that reached the filter's stage: kept, or dropped at that stage or later.
        reached = [
            gt
            for gt, where in fate.items()
            if where == KEPT or order.get(where, -1) >= order[f.stage]
        ]
        dropped = [gt for gt in reached if gt_reason.get(gt) in f.reasons]
        if f.stage == "dedup":
            members = Counter(group[gt] for gt in reached)
            in_group = {gt for gt in reached if members[group[gt]] > 1}
            correct = sum(1 for gt in dropped if gt in in_group)
            expected = sum(n - 1 for n in members.values() if n > 1)
        else:
            correct = sum(1 for gt in dropped if noise[gt] in f.targets)
            expected = sum(1 for gt in reached if noise[gt] in f.targets)
        scores.append(FilterScore(f.name, f.stage, len(dropped), correct, expected))
    return TruthReport(fates=fates, scores=scores, matched=len(fate))


def fate_columns(report: TruthReport) -> list[str]:
    """Columns of the fate table that have any row: kept, then the stages in order."""
    totals: dict[str, int] = defaultdict(int)
    for row in report.fates.values():
        for where, n in row.items():
            totals[where] += n
    return [c for c in [KEPT, *STAGES, "unaccounted"] if totals.get(c)]
