"""The rules of the select stage, declared in one place: each has a name, the reason codes it
drops with, the pool columns it needs, how its parameters come from the config and the pool (a
top fraction's threshold, k-means centroids), and an Arrow function that returns the reason and
detail of every row (null = passes). `select.rules` lists the ones to apply: all must pass.

The rules (DataComp, Gadre et al. 2023, section 3.4 and its baselines):
- clip_score: LAION-5B's absolute CLIP threshold or DataComp's top fraction of the pool.
- text_based: the caption names a concept of a term list, or (mode datacomp) DataComp's rule: a
  caption word whose first WordNet sense is an ImageNet-21k synset.
- image_based: the image's nearest k-means centroid is the nearest centroid of a reference image
  (DataComp: ImageNet-1k training images); [clip_score, image_based] is DataComp's intersection.
- score_bounds: select.min and select.max on any score column (an aesthetic or NSFW score, a
  pool's punsafe): scores stay columns, thresholds come here (NeMo Curator's and LAION's way).

Adding a filter of another kind is one `Rule` here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Config
from pipeline.dedup.semantic.kernels import (
    nearest_centroids,
    normalise,
    spherical_kmeans,
    to_matrix,
)
from pipeline.entry_match import entry_match_mode, matcher_for, read_entry_list
from pipeline.errors import ConfigError
from pipeline.preselect.rules import check_bounds, scores_in_own_precision
from pipeline.select.reference import reference_clusters
from pipeline.select.settings import SCORE_BOUNDS, top_fraction_rule
from pipeline.select.top_fraction import Cut
from pipeline.select.wordnet_senses import TABLE, load_table, synset_matcher
from schemas.reasons import check


class Pool(Protocol):
    """What a rule may ask of the whole pool while it sets its parameters (the plan answers
    with Spark jobs; nothing proportional to the pool comes back)."""

    def top_fraction(self, column: str, fraction: float, rule: str, denominator: str) -> Cut:
        """The threshold that keeps the top `fraction` of the pool by `column`
        (pipeline/select/top_fraction.py)."""

    def count(self) -> int:
        """Samples of the pool with an image embedding (the ones k-means can place)."""

    def embedding_sample(self, wanted: int, seed: int) -> np.ndarray:
        """A seeded, partition-independent sample of about `wanted` unit image embeddings."""


@dataclass(frozen=True)
class RuleParams:
    """A rule's resolved parameters (None: it does not apply) and what stats.json says of it."""

    values: dict[str, Any] | None
    summary: dict[str, Any]


@dataclass(frozen=True)
class Rule:
    name: str
    # Reason codes it can write (checked against schemas/reasons.py at import).
    reasons: tuple[str, ...]
    # Pool columns it reads (from annotations); a missing column is null.
    columns: tuple[str, ...]
    params: Callable[[Config, set[str], Pool], RuleParams]
    decide: Callable[[pa.RecordBatch, dict[str, Any]], tuple[pa.Array, pa.Array]]
    # Columns named by the config rather than by the rule (score_bounds: its bounded columns).
    columns_of: Callable[[Config], tuple[str, ...]] | None = None

    def needed(self, config: Config) -> tuple[str, ...]:
        """The pool columns this rule reads under `config`."""
        return (*self.columns, *(self.columns_of(config) if self.columns_of else ()))


CLIP_SCORE = check("select.clip_score")
NO_CLIP_SCORE = check("select.no_clip_score")


def _clip_params(config: Config, columns: set[str], pool: Pool) -> RuleParams:
    """LAION-5B's absolute threshold, or DataComp's top fraction of the pool turned into one."""
    cfg = config.clip
    if not cfg.enabled:
        return RuleParams(
            None, {"applied": False, "why": "clip.enabled is false: no CLIP rule ran"}
        )
    if "clip_score" not in columns:
        return RuleParams(
            None,
            {"applied": False, "why": "annotations have no clip_score (annotate ran without CLIP)"},
        )
    if cfg.top_fraction > 0:
        # DataComp's rank rule or the exact percentile (select.top_fraction_rule); keeping
        # score >= threshold keeps ties at the cut.
        rule, denominator = top_fraction_rule(config)
        cut = pool.top_fraction("clip_score", cfg.top_fraction, rule, denominator)
        summary = {"applied": True, "top_fraction": cfg.top_fraction, **cut.summary}
        values = None if cut.threshold is None else {"threshold": cut.threshold}
        return RuleParams(values, summary)
    return RuleParams({"threshold": cfg.threshold}, {"applied": True, "threshold": cfg.threshold})


def _clip_decide(batch: pa.RecordBatch, params: dict[str, Any]) -> tuple[pa.Array, pa.Array]:
    """select.no_clip_score when unscored (null, NaN or infinite), select.clip_score below the
    threshold, compared in the score's own precision (float32 scores against the threshold as
    float32, as DataComp's apply_filter compares)."""
    scores, threshold = scores_in_own_precision(batch.column("clip_score"), params["threshold"])
    unscored = ~np.isfinite(scores)
    with np.errstate(invalid="ignore"):
        below = ~unscored & ~(scores >= threshold)
    reasons: list[str | None] = [None] * batch.num_rows
    details: list[str | None] = [None] * batch.num_rows
    for row in np.flatnonzero(unscored).tolist():
        reasons[row] = NO_CLIP_SCORE
    for row in np.flatnonzero(below).tolist():
        reasons[row] = CLIP_SCORE
        details[row] = f"{scores[row]:.4f} < {threshold:.4f}"
    return pa.array(reasons, pa.string()), pa.array(details, pa.string())


NO_CONCEPT = check("select.no_concept_match")


def _text_params(config: Config, columns: set[str], pool: Pool) -> RuleParams:
    """The term list (its digest pins the file the workers read), or DataComp's WordNet
    first-sense rule over the shipped ImageNet-21k table (mode datacomp)."""
    cfg = config.select.text_based
    if cfg.mode == "datacomp":
        table = load_table()
        summary = {
            "applied": True,
            "mode": "datacomp",
            "table": TABLE,
            "digest": table.digest,
            "lemmas_in_imagenet21k": sum(sum(d.values()) for d in table.lemmas.values()),
        }
        return RuleParams({"mode": "datacomp", "digest": table.digest}, summary)
    # Executors read the list by path (shared storage on a cluster), as the driver did.
    path = str(Path(cfg.terms).resolve())
    mode = entry_match_mode(config, "select")
    terms = read_entry_list(path, mode)
    summary = {
        "applied": True,
        "mode": "terms",
        "terms": path,
        "term_count": len(terms),
        "digest": terms.digest,
        "matching": mode,
    }
    return RuleParams({"path": path, "digest": terms.digest, "mode": mode}, summary)


def _text_decide(batch: pa.RecordBatch, params: dict[str, Any]) -> tuple[pa.Array, pa.Array]:
    """select.no_concept_match when no term occurs in the caption as whole words (terms), or
    when no caption word's first WordNet sense is an ImageNet-21k synset (datacomp)."""
    captions = batch.column("caption").to_pylist()
    if params["mode"] == "datacomp":
        matcher = synset_matcher()
        hits = [matcher.names_a_synset(c) for c in captions]
    else:
        entries = matcher_for(params["path"], params["digest"], params["mode"])
        hits = [bool(found) for found in entries.match_many(captions)]
    reasons = [None if hit else NO_CONCEPT for hit in hits]
    return pa.array(reasons, pa.string()), pa.nulls(batch.num_rows, pa.string())


OFF_TARGET = check("select.off_target_cluster")
NO_EMBEDDING = check("select.no_embedding")


def image_cluster_count(n: int, clusters: int, pool_per_cluster: int) -> int:
    """k: select.image_based.clusters, or one centroid per pool_per_cluster samples."""
    k = clusters or math.ceil(n / pool_per_cluster)
    return max(1, min(k, n))


def _image_params(config: Config, columns: set[str], pool: Pool) -> RuleParams:
    """Centroids over a sample of the pool; the targets are the reference images' nearest ones.

    The sample is centred on its mean before clustering (as semantic dedup does): CLIP
    embeddings share one strong direction, and k-means on them as they are puts much of the pool
    in a few central clusters (docs/semantic_dedup.md), which a reference image then marks
    on-target wholesale.
    """
    cfg = config.select.image_based
    if "image_embedding" not in columns:
        return RuleParams(
            None,
            {
                "applied": False,
                "why": "annotations have no image_embedding (annotate ran without CLIP)",
            },
        )
    n = pool.count()
    if n == 0:
        return RuleParams(None, {"applied": False, "why": "the pool is empty"})
    k = image_cluster_count(n, cfg.clusters, cfg.pool_per_cluster)
    points = pool.embedding_sample(min(n, cfg.max_sample, cfg.sample_per_cluster * k), cfg.seed)
    centre = points.mean(axis=0).astype(np.float32)
    centroids, rounds = spherical_kmeans(normalise(points - centre), k, cfg.iterations, cfg.seed)
    targets, references = reference_clusters(
        cfg.reference, config.clip, lambda e: assign_clusters(e, centre, centroids)
    )
    sample_clusters = assign_clusters(points, centre, centroids)
    summary = {
        "applied": True,
        "reference": cfg.reference,
        "reference_images": references,
        "clusters": len(centroids),
        "target_clusters": len(targets),
        "kmeans_sample": len(points),
        "kmeans_iterations": rounds,
        # The share of the k-means sample in target clusters: about the share the rule keeps.
        "sample_on_target": round(float(np.isin(sample_clusters, targets).mean()), 4),
    }
    values = {"centre": centre, "centroids": centroids, "targets": np.asarray(targets, np.int64)}
    return RuleParams(values, summary)


def assign_clusters(
    embeddings: np.ndarray, centre: np.ndarray, centroids: np.ndarray
) -> np.ndarray:
    """The nearest centroid of each embedding, in the centred space the centroids live in."""
    return nearest_centroids(normalise(normalise(embeddings) - centre), centroids)[:, 0]


def _image_decide(batch: pa.RecordBatch, params: dict[str, Any]) -> tuple[pa.Array, pa.Array]:
    """select.off_target_cluster when the nearest centroid is no reference image's nearest;
    select.no_embedding without an embedding."""
    column = batch.column("image_embedding")
    valid = pc.is_valid(column).to_numpy(zero_copy_only=False)
    reasons: list[str | None] = [NO_EMBEDDING] * batch.num_rows
    details: list[str | None] = [None] * batch.num_rows
    rows = np.flatnonzero(valid)
    if len(rows):
        embeddings = to_matrix(column.take(pa.array(rows)))
        nearest = assign_clusters(embeddings, params["centre"], params["centroids"])
        on_target = np.isin(nearest, params["targets"])
        for row, cluster, keep in zip(
            rows.tolist(), nearest.tolist(), on_target.tolist(), strict=True
        ):
            reasons[row] = None if keep else OFF_TARGET
            details[row] = None if keep else f"cluster {cluster}"
    return pa.array(reasons, pa.string()), pa.array(details, pa.string())


SCORE_BELOW = check("select.score_below")
SCORE_ABOVE = check("select.score_above")
NO_SCORE = check("select.no_score")


def _bounded_columns(config: Config) -> tuple[str, ...]:
    return tuple(sorted({*config.select.min, *config.select.max}))


def _bounds_params(config: Config, columns: set[str], pool: Pool) -> RuleParams:
    """select.min and select.max as (column, bound, kind, code) checks; a bounded column that
    is neither an annotation nor a candidate column is a config error."""
    lower, upper = config.select.bounds()
    if not lower and not upper:
        return RuleParams(None, {"applied": False, "why": "select.min and select.max are empty"})
    missing = [c for c in _bounded_columns(config) if c not in columns]
    if missing:
        raise ConfigError(
            f"config select.min/max: no column {missing[0]!r} in the annotations or candidates"
            f" (score columns: {', '.join(sorted(c for c in columns if 'score' in c)) or 'none'})"
        )
    checks = [(c, v, "min", SCORE_BELOW) for c, v in sorted(lower.items())]
    checks += [(c, v, "max", SCORE_ABOVE) for c, v in sorted(upper.items())]
    return RuleParams({"checks": checks}, {"applied": True, "min": lower, "max": upper})


def _bounds_decide(batch: pa.RecordBatch, params: dict[str, Any]) -> tuple[pa.Array, pa.Array]:
    return check_bounds(batch, params["checks"], NO_SCORE)


RULES: tuple[Rule, ...] = (
    Rule(
        name="clip_score",
        reasons=(CLIP_SCORE, NO_CLIP_SCORE),
        columns=("clip_score",),
        params=_clip_params,
        decide=_clip_decide,
    ),
    Rule(
        name="text_based",
        reasons=(NO_CONCEPT,),
        columns=("caption",),
        params=_text_params,
        decide=_text_decide,
    ),
    Rule(
        name="image_based",
        reasons=(OFF_TARGET, NO_EMBEDDING),
        columns=("image_embedding",),
        params=_image_params,
        decide=_image_decide,
    ),
    Rule(
        name=SCORE_BOUNDS,
        reasons=(SCORE_BELOW, SCORE_ABOVE, NO_SCORE),
        columns=(),
        params=_bounds_params,
        decide=_bounds_decide,
        columns_of=_bounded_columns,
    ),
)
RULE_NAMES: tuple[str, ...] = tuple(r.name for r in RULES)
_BY_NAME = {r.name: r for r in RULES}


def get_rule(name: str) -> Rule:
    return _BY_NAME[name]


def apply_rules(
    batch: pa.RecordBatch, rules: list[tuple[Rule, dict[str, Any]]]
) -> tuple[pa.Array, pa.Array]:
    """Reason and detail per row: the first rule (in list order) that drops it, else null."""
    n = batch.num_rows
    reason = pa.nulls(n, pa.string())
    detail = pa.nulls(n, pa.string())
    for rule, values in rules:
        r, d = rule.decide(batch, values)
        undecided = pc.is_null(reason)
        reason = pc.if_else(undecided, r, reason)
        detail = pc.if_else(undecided, d, detail)
    return reason, detail
