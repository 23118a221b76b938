"""The rules of the select stage, declared in one place: each has a name, the reason code it
drops with, the pool columns it needs, how its parameters come from the config (and, for a top
fraction, from the pool's score distribution), and an Arrow function that returns the reason and
detail of every row (null = passes). `select.rules` lists the ones to apply: all must pass.

Adding a filter (aesthetic, NSFW, text-based, image-based) is one `Rule` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Config
from schemas.reasons import check

# A percentile of a pool column, computed by the plan over the whole pool: (column, q) -> value.
Quantile = Callable[[str, float], float | None]


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
    params: Callable[[Config, set[str], Quantile], RuleParams]
    decide: Callable[[pa.RecordBatch, dict[str, Any]], tuple[pa.Array, pa.Array]]


CLIP_SCORE = check("select.clip_score")
NO_CLIP_SCORE = check("select.no_clip_score")


def _clip_params(config: Config, columns: set[str], quantile: Quantile) -> RuleParams:
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
        # Exact percentile: keeping score >= threshold keeps that fraction (ties included).
        threshold = quantile("clip_score", 1.0 - cfg.top_fraction)
        summary = {"applied": True, "top_fraction": cfg.top_fraction, "threshold": threshold}
        return RuleParams(None if threshold is None else {"threshold": threshold}, summary)
    return RuleParams({"threshold": cfg.threshold}, {"applied": True, "threshold": cfg.threshold})


def _clip_decide(batch: pa.RecordBatch, params: dict[str, Any]) -> tuple[pa.Array, pa.Array]:
    """select.no_clip_score when unscored, select.clip_score below the threshold."""
    scores = batch.column("clip_score")
    threshold = params["threshold"]
    reasons, details = [], []
    for score in scores.to_pylist():
        if score is None:
            reasons.append(NO_CLIP_SCORE)
            details.append(None)
        elif score < threshold:
            reasons.append(CLIP_SCORE)
            details.append(f"{score:.4f} < {threshold:.4f}")
        else:
            reasons.append(None)
            details.append(None)
    return pa.array(reasons, pa.string()), pa.array(details, pa.string())


RULES: tuple[Rule, ...] = (
    Rule(
        name="clip_score",
        reasons=(CLIP_SCORE, NO_CLIP_SCORE),
        columns=("clip_score",),
        params=_clip_params,
        decide=_clip_decide,
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
