"""The report's sections, each a function from the run's tables to (heading, HTML)."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.report import plots
from pipeline.report.ground_truth import (
    DROP_HEADERS,
    HEAD_THRESHOLD,
    KIND_HEADERS,
    drop_rows,
    fate_columns,
    head_columns,
    kind_rows,
    score_against_truth,
    score_dedup_against_truth,
    score_heads_against_truth,
)
from pipeline.report.html_page import Sample, esc, grid, plot, table
from pipeline.report.run_tables import RunTables
from pipeline.report.thumbnails import png_uri, read_image_bytes, thumbnail_uri
from pipeline.storage import arrow_filesystem
from schemas.reasons import COUNTS_ONLY, REASONS, check

log = logging.getLogger(__name__)

KEPT_SAMPLES = 24
SAMPLES_PER_REASON = 8
DUPLICATE_CLUSTERS = 8
DUPLICATES_PER_CLUSTER = 5
SEMANTIC_GROUPS = 6
SEMANTIC_PER_GROUP = 5

Section = tuple[str, str]


@dataclass
class Lookup:
    """uid -> caption/URL (candidates, then recovered input rows) and uid -> image location."""

    text: dict[str, tuple[str, str]] = field(default_factory=dict)
    image: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    phash: dict[str, int] = field(default_factory=dict)
    clip: dict[str, float] = field(default_factory=dict)


def build_lookup(tables: RunTables, pairs: pa.Table | None) -> Lookup:
    look = Lookup()
    for source in (pairs, tables.candidates):  # candidates last: they win
        if source is not None:
            look.text.update(
                zip(
                    source.column("uid").to_pylist(),
                    zip(
                        source.column("caption").to_pylist(),
                        source.column("url").to_pylist(),
                        strict=True,
                    ),
                    strict=True,
                )
            )
    ann = tables.annotations
    if ann is not None:
        uids = ann.column("uid").to_pylist()
        look.image = dict(
            zip(
                uids,
                zip(
                    ann.column("shard").to_pylist(),
                    ann.column("offset").to_pylist(),
                    ann.column("image_bytes").to_pylist(),
                    strict=True,
                ),
                strict=True,
            )
        )
        look.phash = dict(zip(uids, ann.column("phash").to_pylist(), strict=True))
        if "clip_score" in ann.schema.names:
            look.clip = {
                u: s
                for u, s in zip(uids, ann.column("clip_score").to_pylist(), strict=True)
                if s is not None
            }
    return look


def _sample(tables: RunTables, look: Lookup, uid: str, note: str = "") -> Sample:
    caption = look.text.get(uid, (None, None))[0]
    thumb = None
    where = look.image.get(uid)
    if where is not None and where[1] is not None:
        try:
            thumb = thumbnail_uri(read_image_bytes(tables.run.downloads, *where))
        except OSError as exc:
            log.debug("report: no thumbnail for %s (%s)", uid, exc)
    score = look.clip.get(uid)
    if score is not None:
        note = f"{note} · clip {score:.3f}" if note else f"clip {score:.3f}"
    return Sample(uid=uid, caption=caption, thumbnail=thumb, note=note)


def funnel_section(tables: RunTables) -> Section:
    stages = tables.stats.get("stages", {})
    rows = [
        (name, e["rows_in"], e["rows_kept"], e["rows_dropped"], e.get("seconds"))
        for name, e in stages.items()
    ]
    body = table(["stage", "rows in", "kept", "dropped", "seconds"], rows)
    if rows:
        chart = plots.funnel_chart([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        body += plot(png_uri(chart), "funnel: rows in and kept per stage")
    reasons = [
        (code, REASONS[code].description if code in REASONS else "", n)
        for entry in stages.values()
        for code, n in entry["dropped_by_reason"].items()
    ]
    body += "<h3>Drops per reason</h3>" + table(["reason", "meaning", "rows"], reasons, text_cols=2)
    if stages:
        first = next(iter(stages.values()))["rows_in"]
        last = list(stages.values())[-1]["rows_kept"]
        total = sum(n for _, _, n in reasons)
        body += (
            f'<p class="note">Accounting: {first:,} input rows = {last:,} kept + '
            f"{total:,} ledger rows ({'holds' if first == last + total else 'DOES NOT HOLD'}).</p>"
        )
        if last == 0:
            # An empty result is a result: say so, and where the rows went (the table above).
            body += (
                f'<p class="note"><b>No pair is left after the pipeline</b>: all {first:,} input'
                " rows were dropped; the drops per reason above say why.</p>"
            )
    return "Funnel", body


def comparison_section(tables: RunTables) -> Section | None:
    comp = tables.comparison
    if not comp:
        return None
    runs = comp["runs"]
    rows = [
        (
            name,
            r.get("selection", ""),
            r.get("training_samples"),
            r.get("tail_caption_share"),
            r.get("steps"),
            r.get("zeroshot_top1"),
            r.get("zeroshot_top1_tail"),
            r.get("zeroshot_top5"),
            r.get("eval_i2t_r1"),
            r.get("eval_t2i_r1"),
            r.get("final_loss"),
        )
        for name, r in runs.items()
    ]
    tail = comp.get("tail_classes") or []
    dropped = [
        (name, ", ".join(f"{code} {n:,}" for code, n in sorted(r.get("dropped", {}).items())))
        for name, r in runs.items()
        if r.get("dropped")
    ]
    body = (
        f"<p>The same model ({esc(comp.get('model'))}) and budget ({esc(comp.get('steps'))} steps"
        f" of {esc(comp.get('batch_size'))} pairs, {_seeds_text(comp)}) trained on each"
        f" selection (DataComp's protocol), then evaluated zero-shot on"
        f" {esc(comp.get('eval_images'))} clean held-out images over"
        f" {esc(comp.get('eval_classes'))} classes. Tail: the {len(tail)} classes "
        f"named by the fewest captions of the pool ({esc(', '.join(tail))}). Retrieval: "
        "recall@1 between those images and their own captions, each ranked among the pairs "
        "of its gallery (one picture a class; empty where the eval set has no captions).</p>"
    )
    body += table(
        [
            "trained on",
            "selection",
            "pairs available",
            "captions naming a tail class",
            "steps",
            "zero-shot top-1",
            "top-1, tail classes",
            "zero-shot top-5",
            "image->text R@1",
            "text->image R@1",
            "final loss",
        ],
        rows,
        text_cols=2,
    )
    body += _differences_html(comp)
    if dropped:
        body += "<p>What each selection's select and balance stages dropped:</p>"
        body += table(["trained on", "dropped (reason code, rows)"], dropped, text_cols=2)
    curves = {}
    for name, r in runs.items():
        log_path = Path(r.get("train_dir", "")) / "train_log.jsonl"
        if log_path.is_file():
            lines = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
            curves[name] = ([x["step"] for x in lines], [x["loss"] for x in lines])
    if curves:
        body += plot(png_uri(plots.loss_curves(curves, "Training loss")), "training loss curves")
    return "Training comparison: the same model on each selection", body


def _seeds_text(comp: dict) -> str:
    """ "seed 0", or "3 seeds from 0" when each selection was trained once per seed."""
    seeds = comp.get("seeds") or 1
    first = esc(comp.get("seed"))
    return f"seed {first}" if seeds == 1 else f"{esc(seeds)} seeds from {first}"


def _differences_html(comp: dict) -> str:
    """Each selection against the baseline: the paired difference and its interval, a table
    and a plot with error bars, and the conclusions the intervals support."""
    differences = comp.get("differences") or {}
    if not differences:
        return ""
    rows, labels, means, lows, highs = [], [], [], [], []
    for name, entry in differences.items():
        for key, d in entry.items():
            metric = d.get("label", key)
            rows.append(
                (
                    name,
                    metric,
                    round(d["mean"] * 100, 1),
                    f"[{d['low'] * 100:+.1f}, {d['high'] * 100:+.1f}]",
                    "yes" if d["significant"] else "no difference detected",
                )
            )
            labels.append(f"{name}, {metric}")
            means.append(d["mean"])
            lows.append(d["low"])
            highs.append(d["high"])
    first = next(iter(differences.values()))["top1"]
    body = (
        f"<h3>Against the baseline ({esc(comp.get('baseline'))})</h3><p>Paired by training seed "
        f"and by evaluation image ({first['seeds']} seed(s), {first['images']} images); "
        f"{first['confidence']:.0%} intervals from a two-stage bootstrap (seeds, then "
        "images). A difference is significant when its interval excludes zero.</p>"
    )
    body += table(
        ["selection", "metric", "difference (points)", "interval", "significant"],
        rows,
        text_cols=2,
    )
    body += plot(
        png_uri(plots.difference_chart(labels, means, lows, highs, "Differences to the baseline")),
        "differences to the baseline with their intervals",
    )
    return body


def truth_section(tables: RunTables, pairs: pa.Table | None) -> Section | None:
    path = tables.ground_truth_path
    if pairs is None or "gt_id" not in pairs.schema.names or not path.is_file():
        return None
    fs, inner = arrow_filesystem(path)
    truth = pq.read_table(inner, columns=["gt_id", "noise", "duplicate_of"], filesystem=fs)
    kept = (
        set(tables.selection.column("uid").to_pylist()) if tables.selection is not None else set()
    )
    if not tables.run.is_complete("shard"):
        kept = set()
    report = score_against_truth(truth, pairs, tables.ledger, kept)
    body = (
        f"<p>{report.matched:,} input rows matched the planted ground truth ({esc(path.name)}). "
        "Precision: the share of a filter's drops that carry the noise it targets. Recall: the "
        "share of targeted rows reaching the filter that it dropped (for dedup: drops against "
        "group members minus one kept copy per group).</p>"
    )
    body += table(
        ["filter", "stage", "dropped", "correct", "targeted", "precision", "recall"],
        [
            (s.name, s.stage, s.dropped, s.correct, s.expected, s.precision, s.recall)
            for s in report.scores
        ],
        text_cols=2,
    )
    columns = fate_columns(report)
    body += "<h3>Where each kind of planted noise ended</h3>" + table(
        ["noise kind", *columns],
        [(kind, *(row.get(c, 0) for c in columns)) for kind, row in report.fates.items()],
    )
    body += _heads_truth_html(truth, pairs, tables)
    if tables.dedup is not None and tables.run.is_complete("dedup"):
        body += _dedup_truth_html(truth, pairs, tables)
    return "Filters against the planted ground truth", body


def _heads_truth_html(truth: pa.Table, pairs: pa.Table, tables: RunTables) -> str:
    """The classifier heads named after a planted kind (annotate.heads), scored against it."""
    scores = tables.annotations  # read with the heads' columns, where the run has them
    if scores is None or not head_columns(scores.schema.names):
        return ""
    heads = score_heads_against_truth(truth, pairs, scores)
    body = (
        "<h3>Classifier heads against the planted truth</h3><p>A head named after a planted "
        f"noise kind (annotate.heads) flags a sample whose score is over {HEAD_THRESHOLD}; "
        "precision: flagged samples of that kind / flagged; recall: flagged / samples of that "
        "kind, over every annotated sample. A score is a column, not a drop: select.max applies "
        "it.</p>"
    )
    return body + table(
        ["head", "scored", "flagged", "correct", "planted", "precision", "recall"],
        [
            (f"score_{h.name}", h.scored, h.flagged, h.correct, h.targeted, h.precision, h.recall)
            for h in heads
        ],
        text_cols=1,
    )


def _dedup_truth_html(truth: pa.Table, pairs: pa.Table, tables: RunTables) -> str:
    assert tables.dedup is not None
    dedup = score_dedup_against_truth(
        truth,
        pairs,
        tables.ledger.filter(pc.equal(tables.ledger.column("stage"), "dedup")),
        tables.dedup,
    )
    body = (
        "<h3>Dedup per kind of planted copy</h3><p>Paired: copies that reached dedup together "
        "with their original. Merged: of those, copies that dedup put in one cluster with their "
        "original (one of the two dropped naming the other, or both naming a third member), "
        "whichever survived. Recall: merged / paired.</p>"
    )
    body += table(KIND_HEADERS, kind_rows(dedup))
    body += (
        "<p>Every dedup drop (but the evaluation overlap) names the kept sample it duplicates. "
        "Same picture: that sample is a copy of the same original (or the original itself); "
        "distinct pictures: two different pictures merged. Precision: same picture / drops.</p>"
    )
    body += table(DROP_HEADERS, drop_rows(dedup))
    if dedup.unlinked:
        body += (
            f'<p class="note">Dedup drops not linked to the ground truth: {dedup.unlinked:,}.</p>'
        )
    return body


def _scorer_name(tables: RunTables) -> str:
    clip = tables.stats.get("stages", {}).get("annotate", {}).get("clip") or {}
    if not clip.get("enabled"):
        return ""
    return f" ({clip['model']}, {Path(str(clip['pretrained'])).name})"


def distributions_section(tables: RunTables) -> Section:
    parts = []
    ann = tables.annotations
    if ann is not None and "clip_score" in ann.schema.names:
        scores = pc.drop_null(ann.column("clip_score")).to_numpy()
        rule = tables.stats.get("stages", {}).get("select", {}).get("clip_rule", {})
        threshold = rule.get("threshold") if rule.get("applied") else None
        if len(scores):
            parts.append(
                plot(
                    png_uri(
                        plots.histogram(
                            scores,
                            f"CLIP score{_scorer_name(tables)}",
                            "clip_score: image-caption cosine similarity",
                            threshold=threshold,
                            threshold_label=f"select threshold {threshold:.3f}"
                            if threshold is not None
                            else "",
                        )
                    ),
                    "CLIP score histogram",
                )
            )
    cands = tables.candidates
    if cands is not None and cands.num_rows:
        lengths = pc.utf8_length(cands.column("caption")).to_numpy()
        parts.append(
            plot(
                png_uri(plots.histogram(lengths, "Caption length (kept by ingest)", "characters")),
                "caption lengths",
            )
        )
    langs: Counter[str] = Counter()
    if cands is not None:
        langs.update(x for x in cands.column("lang").to_pylist() if x)
    dropped_lang = tables.ledger.filter(
        pc.equal(tables.ledger.column("reason"), check("ingest.language"))
    )
    langs.update(str(d).split(" ", 1)[0] for d in dropped_lang.column("detail").to_pylist() if d)
    if langs:
        top = langs.most_common(15)
        parts.append(
            plot(
                png_uri(
                    plots.bar_chart(
                        [k for k, _ in top], [v for _, v in top], "Languages (fastText)", "rows"
                    )
                ),
                "languages",
            )
        )
    if ann is not None and ann.num_rows:
        parts.append(
            plot(
                png_uri(
                    plots.size_scatter(
                        ann.column("original_width").to_pylist(),
                        ann.column("original_height").to_pylist(),
                        "Downloaded image sizes",
                    )
                ),
                "image sizes",
            )
        )
    return "Distributions", "".join(parts) or "<p>No data yet.</p>"


def kept_section(tables: RunTables, look: Lookup) -> Section | None:
    if tables.selection is None:
        return None
    # uids are hashes: the smallest ones are a fair, reproducible sample.
    uids = sorted(tables.selection.column("uid").to_pylist())[:KEPT_SAMPLES]
    return "Kept samples", grid([_sample(tables, look, u) for u in uids])


def dropped_section(tables: RunTables, look: Lookup) -> Section:
    by_reason: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    ledger = tables.ledger.sort_by("uid")
    for uid, reason, detail in zip(
        ledger.column("uid").to_pylist(),
        ledger.column("reason").to_pylist(),
        ledger.column("detail").to_pylist(),
        strict=True,
    ):
        if len(by_reason[reason]) < SAMPLES_PER_REASON:
            by_reason[reason].append((uid, detail))
    parts = []
    counts = Counter(ledger.column("reason").to_pylist())
    for reason in sorted(by_reason):
        meaning = REASONS[reason].description if reason in REASONS else ""
        if reason in COUNTS_ONLY:  # a blocklist's drops: never a URL, caption or picture
            parts.append(
                f"<h3>{esc(reason)}</h3><p class='note'>{esc(meaning)}</p>"
                f"<p>{counts[reason]:,} pairs (counts only: blocklisted pairs are not shown)</p>"
            )
            continue
        cells = [
            _sample(tables, look, uid, str(detail) if detail else "")
            for uid, detail in by_reason[reason]
        ]
        parts.append(f"<h3>{esc(reason)}</h3><p class='note'>{esc(meaning)}</p>{grid(cells)}")
    return "Dropped samples per reason", "".join(parts) or "<p>Nothing was dropped.</p>"


def duplicates_section(tables: RunTables, look: Lookup) -> Section | None:
    dups = tables.ledger.filter(
        pc.is_in(
            tables.ledger.column("reason"),
            pa.array([check("dedup.exact_duplicate"), check("dedup.near_duplicate")]),
        )
    )
    if dups.num_rows == 0:
        return None
    clusters: dict[str, list[str]] = defaultdict(list)
    for uid, kept in zip(
        dups.column("uid").to_pylist(), dups.column("detail").to_pylist(), strict=True
    ):
        clusters[kept].append(uid)
    # Largest clusters first, ties by uid: the most instructive, reproducibly.
    chosen = sorted(clusters.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:DUPLICATE_CLUSTERS]
    parts = []
    for kept, members in chosen:
        cells = [_sample(tables, look, kept, "kept")]
        for uid in sorted(members)[:DUPLICATES_PER_CLUSTER]:
            a, b = look.phash.get(kept), look.phash.get(uid)
            bits = (
                bin((a ^ b) & (2**64 - 1)).count("1") if a is not None and b is not None else None
            )
            cells.append(
                _sample(
                    tables, look, uid, f"dropped, {bits} bits" if bits is not None else "dropped"
                )
            )
        parts.append(
            '<div class="cluster">' + "".join(f"<div>{grid([c])}</div>" for c in cells) + "</div>"
        )
    return (
        "Duplicate clusters",
        f"<p>{len(clusters):,} clusters; the {len(chosen)} largest, the kept sample first, each "
        "dropped copy with its pHash distance to it.</p>" + "".join(parts),
    )


def parse_semantic_detail(detail: str | None) -> tuple[str, float | None]:
    """(kept uid, cosine) of a dedup.semantic_duplicate detail, "<kept uid> cosine <c>"."""
    kept, _, cosine = (detail or "").partition(" cosine ")
    try:
        return kept.strip(), float(cosine)
    except ValueError:
        return kept.strip(), None


def semantic_section(tables: RunTables, look: Lookup) -> Section | None:
    """Groups of the semantic pass: the kept sample, then its dropped copies with their cosine to
    it. None when the semantic pass dropped nothing."""
    drops = tables.ledger.filter(
        pc.equal(tables.ledger.column("reason"), check("dedup.semantic_duplicate"))
    )
    if drops.num_rows == 0:
        return None
    groups: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for uid, detail in zip(
        drops.column("uid").to_pylist(), drops.column("detail").to_pylist(), strict=True
    ):
        kept, cosine = parse_semantic_detail(detail)
        groups[kept].append((uid, cosine))
    # Largest groups first, ties by uid; in a group the copies least alike first, the ones
    # that show how far the threshold reaches.
    chosen = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:SEMANTIC_GROUPS]
    parts = []
    for kept, members in chosen:
        cells = [_sample(tables, look, kept, "kept")]
        ordered = sorted(members, key=lambda m: (m[1] if m[1] is not None else 2.0, m[0]))
        for uid, cosine in ordered[:SEMANTIC_PER_GROUP]:
            note = f"dropped, cosine {cosine:.4f}" if cosine is not None else "dropped"
            cells.append(_sample(tables, look, uid, note))
        parts.append(
            '<div class="cluster">' + "".join(f"<div>{grid([c])}</div>" for c in cells) + "</div>"
        )
    cosines = [c for members in groups.values() for _, c in members if c is not None]
    lowest = f"; the lowest cosine to a kept sample is {min(cosines):.4f}" if cosines else ""
    return (
        "Semantic duplicates",
        f"<p>{drops.num_rows:,} samples dropped as semantic duplicates (CLIP image embeddings) in "
        f"{len(groups):,} groups{lowest}. The {len(chosen)} largest groups: the kept sample "
        "first, then its dropped copies, least alike first, with their cosine to it.</p>"
        + "".join(parts),
    )
