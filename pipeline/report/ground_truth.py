"""How well each filter removed the noise it targets, scored against a planted ground truth (the
demo's synthetic web labels every pair with its noise kind); and dedup's recall per kind of planted
copy with the precision of its drops (`score_dedup_against_truth`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

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
    # Scored only when it dropped something: a rule that runs only when listed (select.rules),
    # or a list only some runs have (ingest.blocklists, dedup.blocklists).
    optional: bool = False
    # Scored per planted group of copies (dedup): drops against members - 1 per group.
    groups: bool = False


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
        "URL blocklists",
        "ingest",
        frozenset({check("ingest.blocked_url"), check("ingest.blocked_domain")}),
        frozenset({"blocklisted_url"}),
        optional=True,
    ),
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
            (
                PICTURELESS_FAULTS
                | FILE_BACKED_FAULTS
                | {"small_image", "extreme_aspect", "robots_disallowed"}
            )
            - {"fault_redirect"}
        ),
    ),
    FilterTarget(
        "image hash blocklists",
        "dedup",
        frozenset({check("dedup.blocked_image")}),
        frozenset({"blocklisted_image"}),
        optional=True,
    ),
    # Targets of dedup are every member of a planted duplicate group: which copy survives is the
    # keep rule's choice, so recall counts drops against (members - 1) per group.
    FilterTarget(
        "dedup (exact, pHash, semantic)",
        "dedup",
        frozenset(reasons_for_stage("dedup"))
        - {check("dedup.eval_overlap"), check("dedup.blocked_image")},
        frozenset(DUPLICATE_KINDS),
        groups=True,
    ),
    FilterTarget(
        "CLIP score",
        "select",
        frozenset({check("select.clip_score"), check("select.no_clip_score")}),
        frozenset({"mismatched_caption"}),
    ),
    FilterTarget(
        "text-based (DataComp)",
        "select",
        frozenset({check("select.no_concept_match")}),
        frozenset({"off_target"}),
        optional=True,
    ),
    FilterTarget(
        "image-based (DataComp)",
        "select",
        frozenset({check("select.off_target_cluster"), check("select.no_embedding")}),
        frozenset({"off_target"}),
        optional=True,
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


def _noise_of(truth: pa.Table) -> dict[int, str]:
    """gt_id -> its planted noise kind."""
    return dict(
        zip(truth.column("gt_id").to_pylist(), truth.column("noise").to_pylist(), strict=True)
    )


def _root_of(truth: pa.Table) -> dict[int, int]:
    """gt_id -> its root picture: `duplicate_of` followed until a row that copies no other."""
    parent = dict(
        zip(
            truth.column("gt_id").to_pylist(),
            truth.column("duplicate_of").to_pylist(),
            strict=True,
        )
    )
    root: dict[int, int] = {}
    for gt in parent:
        seen = [gt]
        while parent.get(seen[-1]) is not None and parent[seen[-1]] not in seen:
            seen.append(parent[seen[-1]])
        root[gt] = seen[-1]
    return root


def _gt_of_uid(pairs: pa.Table) -> dict[str, int]:
    """uid -> gt_id of the input rows linked to the truth (the first row of a repeated uid)."""
    out: dict[str, int] = {}
    for uid, gt in zip(
        pairs.column("uid").to_pylist(), pairs.column("gt_id").to_pylist(), strict=True
    ):
        if gt is not None and uid is not None:
            out.setdefault(uid, gt)
    return out


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
    noise = _noise_of(truth)
    group = _root_of(truth)
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
        if f.optional and not dropped:
            continue
        if f.groups:
            members = Counter(group[gt] for gt in reached)
            in_group = {gt for gt in reached if members[group[gt]] > 1}
            correct = sum(1 for gt in dropped if gt in in_group)
            expected = sum(n - 1 for n in members.values() if n > 1)
        else:
            correct = sum(1 for gt in dropped if noise[gt] in f.targets)
            expected = sum(1 for gt in reached if noise[gt] in f.targets)
        scores.append(FilterScore(f.name, f.stage, len(dropped), correct, expected))
    return TruthReport(fates=fates, scores=scores, matched=len(fate))


# A head named after a planted noise kind is a classifier of that kind: its score (a
# probability, as pipeline.clip.head_training makes them) above this flags a row.
HEAD_THRESHOLD = 0.5
# The columns such heads write.
HEAD_COLUMNS = tuple(f"score_{kind}" for kind in NOISE_KINDS)


@dataclass(frozen=True)
class HeadScore:
    """A classifier head's flags (score > HEAD_THRESHOLD) over the annotated rows, against the
    planted kind it is named after."""

    name: str
    scored: int
    flagged: int
    correct: int
    targeted: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.targeted if self.targeted else None


def head_columns(names: Iterable[str]) -> list[str]:
    """The `score_<kind>` columns among `names` whose kind is a planted noise kind."""
    return [n for n in names if n in HEAD_COLUMNS]


def score_heads_against_truth(
    truth: pa.Table, pairs: pa.Table, scores: pa.Table
) -> list[HeadScore]:
    """Each `score_<kind>` column of `scores` (uid and the heads' columns, one row per annotated
    sample) against the planted `kind`, over the rows linked to the truth."""
    noise = _noise_of(truth)
    gt_of = _gt_of_uid(pairs)
    kinds = [noise.get(gt_of.get(uid, -1)) for uid in scores.column("uid").to_pylist()]
    out = []
    for column in head_columns(scores.schema.names):
        kind = column.removeprefix("score_")
        flagged = correct = targeted = scored = 0
        for planted, value in zip(kinds, scores.column(column).to_pylist(), strict=True):
            if planted is None or value is None:
                continue
            scored += 1
            hit = value > HEAD_THRESHOLD
            flagged += hit
            targeted += planted == kind
            correct += hit and planted == kind
        out.append(HeadScore(kind, scored, flagged, correct, targeted))
    return out


def fate_columns(report: TruthReport) -> list[str]:
    """Columns of the fate table that have any row: kept, then the stages in order."""
    totals: dict[str, int] = defaultdict(int)
    for row in report.fates.values():
        for where, n in row.items():
            totals[where] += n
    return [c for c in [KEPT, *STAGES, "unaccounted"] if totals.get(c)]


# Dedup's drops that name the kept sample of their cluster first in `detail` ("<kept uid>" or
# "<kept uid> cosine <c>"): every dedup reason but the evaluation overlap, whose detail names an
# evaluation image, and the image blocklists', whose detail names a list.
MERGE_REASONS = frozenset(reasons_for_stage("dedup")) - {
    check("dedup.eval_overlap"),
    check("dedup.blocked_image"),
}
ALL = "all"


@dataclass(frozen=True)
class KindRecall:
    """Dedup's recall on one kind of planted copy (or ALL of them)."""

    kind: str
    planted: int  # rows of the kind in the truth
    paired: int  # of them, copies that reached dedup together with their root original
    merged: int  # of those, copies that dedup put in one cluster with their root original

    @property
    def missed(self) -> int:
        return self.paired - self.merged

    @property
    def recall(self) -> float | None:
        return self.merged / self.paired if self.paired else None


@dataclass(frozen=True)
class DropPrecision:
    """Dedup's merge drops of one reason (or ALL), judged by the picture of the sample they name."""

    reason: str
    drops: int  # drops whose sample and named kept sample both link to the truth
    same_picture: int  # ... whose kept sample has the same root picture: correct

    @property
    def distinct_pictures(self) -> int:
        """Drops that merged two different pictures: the errors."""
        return self.drops - self.same_picture

    @property
    def precision(self) -> float | None:
        return self.same_picture / self.drops if self.drops else None


@dataclass(frozen=True)
class DedupTruth:
    """Dedup scored against the planted copies: recall per kind, precision per reason."""

    kinds: list[KindRecall]  # each duplicate kind planted, in NOISE_KINDS order, then ALL
    drops: list[DropPrecision]  # each merge reason that dropped a row, then ALL
    unlinked: int  # merge drops whose sample or named kept sample has no ground-truth row


def _uids(kept: pa.Table | Iterable[str]) -> set[str]:
    return set(kept.column("uid").to_pylist()) if isinstance(kept, pa.Table) else set(kept)


def score_dedup_against_truth(
    truth: pa.Table,
    pairs: pa.Table,
    dedup_ledger: pa.Table,
    dedup_kept: pa.Table | Iterable[str],
) -> DedupTruth:
    """Dedup's recall per kind of planted copy and the precision of its drops.

    `truth` has gt_id, noise, duplicate_of; `pairs` links uids to gt_id (input_pairs.py);
    `dedup_ledger` is ledger/dedup (uid, reason, detail; rows of other stages, when a whole ledger
    is given, are left out by its `stage` column); `dedup_kept` is dedup's output (its `uid`
    column) or its uids. A copy's root original follows `duplicate_of` to a row that copies none.

    - paired: copies of the kind that reached dedup (kept or dropped there) whose root original
      reached it too. A copy or an original lost earlier (a failed download) is out of reach.
    - merged: paired copies in one dedup cluster with their root original: following each merge
      drop's named kept sample (the first word of `detail`) from the copy and from the original
      arrives at the same sample. So either one names the other, or both name a third member (a
      further copy of the picture, or, wrongly, another picture: that shows as distinct pictures
      below). Which of the two survives is the keep rule's choice and does not matter.
    - recall: merged / paired.
    - precision of the drops: a merge drop (MERGE_REASONS: every dedup reason but eval_overlap
      and blocked_image) is correct when the kept sample its detail names has the same root
      picture as the dropped one;
      distinct pictures merged: those whose named sample is a different root picture. Drops with
      either end not linked to the truth are counted as `unlinked` only.
    """
    if "stage" in dedup_ledger.schema.names:
        dedup_ledger = dedup_ledger.filter(pc.equal(dedup_ledger.column("stage"), "dedup"))
    kept = _uids(dedup_kept)
    root = _root_of(truth)
    noise = _noise_of(truth)
    gt_of = _gt_of_uid(pairs)
    reached = set(kept)
    named: dict[str, str] = {}  # merge drop -> the kept sample its detail names
    reason_of: dict[str, str] = {}
    for uid, reason, detail in zip(
        dedup_ledger.column("uid").to_pylist(),
        dedup_ledger.column("reason").to_pylist(),
        dedup_ledger.column("detail").to_pylist(),
        strict=True,
    ):
        reached.add(uid)
        if reason in MERGE_REASONS and detail:
            named[uid] = str(detail).split(" ", 1)[0]
            reason_of[uid] = reason

    def cluster(uid: str) -> str:
        seen = {uid}
        while uid in named and named[uid] not in seen:
            uid = named[uid]
            seen.add(uid)
        return uid

    uid_of: dict[int, str] = {}
    for uid in sorted(reached):
        gt = gt_of.get(uid)
        if gt is not None:
            uid_of.setdefault(gt, uid)
    planted: Counter[str] = Counter()
    paired: Counter[str] = Counter()
    merged: Counter[str] = Counter()
    for gt, kind in noise.items():
        if kind not in DUPLICATE_KINDS or root[gt] == gt:
            continue
        planted[kind] += 1
        copy, original = uid_of.get(gt), uid_of.get(root[gt])
        if copy is None or original is None:
            continue
        paired[kind] += 1
        merged[kind] += cluster(copy) == cluster(original)
    kinds = [
        KindRecall(k, planted[k], paired[k], merged[k])
        for k in NOISE_KINDS
        if k in DUPLICATE_KINDS and planted[k]
    ]
    kinds.append(KindRecall(ALL, sum(planted.values()), sum(paired.values()), sum(merged.values())))

    drops: Counter[str] = Counter()
    same: Counter[str] = Counter()
    unlinked = 0
    for uid, kept_uid in named.items():
        a, b = gt_of.get(uid), gt_of.get(kept_uid)
        if a is None or b is None:
            unlinked += 1
            continue
        drops[reason_of[uid]] += 1
        same[reason_of[uid]] += root[a] == root[b]
    order = reasons_for_stage("dedup")
    by_reason = [DropPrecision(r, drops[r], same[r]) for r in sorted(drops, key=order.index)]
    by_reason.append(DropPrecision(ALL, sum(drops.values()), sum(same.values())))
    return DedupTruth(kinds=kinds, drops=by_reason, unlinked=unlinked)


KIND_HEADERS = ("copy kind", "planted", "paired", "merged", "missed", "recall")
DROP_HEADERS = ("dedup reason", "drops", "same picture", "distinct pictures", "precision")


def kind_rows(result: DedupTruth) -> list[tuple[object, ...]]:
    return [(k.kind, k.planted, k.paired, k.merged, k.missed, k.recall) for k in result.kinds]


def drop_rows(result: DedupTruth) -> list[tuple[object, ...]]:
    return [
        (d.reason, d.drops, d.same_picture, d.distinct_pictures, d.precision) for d in result.drops
    ]


def format_dedup_truth(result: DedupTruth) -> str:
    """The two tables of `result` as plain text (for a script comparing dedup settings)."""

    def text(value: object) -> str:
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = []
    for headers, rows in ((KIND_HEADERS, kind_rows(result)), (DROP_HEADERS, drop_rows(result))):
        cells = [list(headers), *[[text(v) for v in row] for row in rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            first = row[0].ljust(widths[0])
            rest = [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join([first, *rest]))
        lines.append("")
    if result.unlinked:
        lines.append(f"merge drops not linked to the ground truth: {result.unlinked}")
    return "\n".join(lines).rstrip() + "\n"
