"""Final per-row decision of the ingest stage over an Arrow batch: ALIGN/DataComp text rules in a
fixed order, then language ID on the rows still kept.

Aggregates over the whole dataset (caption repeats, captions per URL, rare tokens) are computed
by Spark beforehand and arrive as columns; this module only compares them with the thresholds.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from pipeline.faults import kill_point
from pipeline.ingest import langid
from pipeline.ingest.settings import IngestConfig
from schemas.reasons import check

CAPTION_REPEATS = "caption_repeats"
URL_CAPTIONS = "url_captions"
RARE_TOKEN = "rare_token"

# Precedence: the first rule that fails names the reason (one ledger row per dropped pair).
TOO_SHORT = check("ingest.caption_too_short")
TOO_FEW_WORDS = check("ingest.too_few_words")
TOO_MANY_WORDS = check("ingest.too_many_words")
REPEATED = check("ingest.caption_repeated")
URL_TOO_MANY = check("ingest.url_too_many_captions")
RARE = check("ingest.rare_token")
LANGUAGE = check("ingest.language")
LANGUAGE_SCORE = check("ingest.language_score")


def _ints(batch: pa.RecordBatch, name: str) -> np.ndarray:
    return batch.column(name).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def text_rule_reasons(batch: pa.RecordBatch, cfg: IngestConfig) -> tuple[list, list]:
    """Reason and detail per row after the text rules, keeping any reason the row already had."""
    reasons = batch.column("reason").to_pylist()
    details = batch.column("detail").to_pylist()
    n_chars = _ints(batch, "n_chars")
    n_words = _ints(batch, "n_words")
    repeats = _ints(batch, CAPTION_REPEATS)
    per_url = _ints(batch, URL_CAPTIONS)
    rare = batch.column(RARE_TOKEN).to_pylist()
    for i in range(len(reasons)):
        if reasons[i] is not None:
            continue
        if n_chars[i] < cfg.min_chars:
            reasons[i], details[i] = TOO_SHORT, f"{n_chars[i]} characters"
        elif n_words[i] < cfg.min_words:
            reasons[i], details[i] = TOO_FEW_WORDS, f"{n_words[i]} words"
        elif n_words[i] > cfg.max_words:
            reasons[i], details[i] = TOO_MANY_WORDS, f"{n_words[i]} words"
        elif repeats[i] > cfg.max_caption_repeats:
            reasons[i], details[i] = REPEATED, f"shared by {repeats[i]} images"
        elif per_url[i] > cfg.max_captions_per_url:
            reasons[i], details[i] = URL_TOO_MANY, f"{per_url[i]} alt-texts"
        elif rare[i] is not None:
            reasons[i], details[i] = RARE, rare[i]
    return reasons, details


def decide_batch(batch: pa.RecordBatch, cfg: IngestConfig, model_path: str) -> pa.RecordBatch:
    """Apply the text rules, then language ID to the survivors; same schema out as in."""
    reasons, details = text_rule_reasons(batch, cfg)
    langs: list[str | None] = [None] * len(reasons)
    scores = np.full(len(reasons), np.nan, dtype=np.float32)
    todo = [i for i, r in enumerate(reasons) if r is None]
    if todo:
        captions = batch.column("caption").to_pylist()
        found, probs = langid.identify([captions[i] for i in todo], langid.load_model(model_path))
        keep_all = "all" in cfg.languages
        for i, lang, score in zip(todo, found, probs, strict=True):
            langs[i], scores[i] = lang, score
            if not keep_all and lang not in cfg.languages:
                reasons[i], details[i] = LANGUAGE, f"{lang} ({score:.3f})"
            elif score < cfg.min_lang_score:
                reasons[i], details[i] = LANGUAGE_SCORE, f"{lang} ({score:.3f})"
    replaced = {
        "reason": pa.array(reasons, pa.string()),
        "detail": pa.array(details, pa.string()),
        "lang": pa.array(langs, pa.string()),
        "lang_score": pa.array(scores, pa.float32(), mask=np.isnan(scores)),
    }
    arrays = [
        replaced[f.name].cast(f.type) if f.name in replaced else batch.column(i)
        for i, f in enumerate(batch.schema)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def decide_batches(
    batches: Iterator[pa.RecordBatch], cfg: IngestConfig, model_path: str
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body for the decision pass."""
    for batch in batches:
        yield decide_batch(batch, cfg, model_path)
        kill_point("ingest", "batch")  # a batch of this task written, the rest not
