"""Row hygiene over an Arrow batch: normalise url and caption, assign uid, apply the URL policy
and the URL and domain blocklists (pipeline/ingest/blocklists.py).

The first failing rule gives the row its reason code; the row is kept in the batch (never mutated
or removed here) so the stage can account for it in the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa

from pipeline.ingest.blocklists import BlockIndex, blocked, load_pinned
from pipeline.ingest.json_safe import json_safe_schema, to_json_safe
from pipeline.ingest.normalize import (
    make_uid,
    normalize_caption,
    normalize_url,
    tokenize,
    unigrams_and_bigrams,
)
from pipeline.ingest.settings import IngestConfig
from schemas.reasons import check
from schemas.tables import CANDIDATE_CORE, INGEST_WORK

# Names of the mapped input columns inside the stage (the user's names are mapped to these).
RAW_URL = "_raw_url"
RAW_CAPTION = "_raw_caption"
RAW_UID = "_raw_uid"
SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"

_HEX128 = re.compile(r"^[0-9a-f]{32}$")
MISSING_URL = check("ingest.missing_url")
MISSING_CAPTION = check("ingest.missing_caption")
CAPTION_TOO_LONG = check("ingest.caption_too_long")
INVALID_UID = check("ingest.invalid_uid")


def hygiene_schema(extra: pa.Schema) -> pa.Schema:
    """Output schema of `apply_hygiene` for a given set of carried input columns (`extra`, as
    Spark hands them over), which are stored as JSON-safe types (pipeline.ingest.json_safe)."""
    return pa.schema(list(CANDIDATE_CORE) + list(json_safe_schema(extra)) + list(INGEST_WORK))


def apply_hygiene(
    batch: pa.RecordBatch,
    cfg: IngestConfig,
    extra: pa.Schema,
    with_tokens: bool = True,
    allowed_networks: tuple[str, ...] = (),
    lists: BlockIndex | None = None,
) -> pa.RecordBatch:
    """Normalise one batch; every input row comes out once, with `reason` null if it passed.
    `lists`: the merged `ingest.blocklists` (the detail of a drop never echoes its URL).

    `tokens` (unigrams and bigrams, for the rare-token rule) is filled only when `with_tokens`,
    and only for captions whose length passes ALIGN's 3-20 unigram rule.
    """
    urls = batch.column(RAW_URL).to_pylist()
    captions = batch.column(RAW_CAPTION).to_pylist()
    names = batch.schema.names
    uids_in = batch.column(RAW_UID).to_pylist() if RAW_UID in names else [None] * len(urls)

    out_uid, out_url, out_caption, pair_keys = [], [], [], []
    reasons, details, caption_keys, n_chars, n_words, tokens = [], [], [], [], [], []
    for raw_url, raw_caption, raw_uid in zip(urls, captions, uids_in, strict=True):
        verdict = normalize_url(raw_url, cfg.max_url_length, allowed_networks)
        reason, detail = verdict.reason, verdict.detail
        if reason is None and lists:
            reason, detail = blocked(verdict.url, lists) or (None, None)
        caption = ""
        if raw_caption is not None and len(raw_caption) > 4 * cfg.max_caption_chars:
            # Hostile sizes: do not spend normalisation work on a 100 kB caption.
            caption = raw_caption[: cfg.max_caption_chars]
            reason = reason or CAPTION_TOO_LONG
            detail = detail or f"{len(raw_caption)} characters"
        else:
            caption = normalize_caption(raw_caption)
        if reason is None and not caption:
            reason = MISSING_CAPTION
        if reason is None and len(caption) > cfg.max_caption_chars:
            reason, detail = CAPTION_TOO_LONG, f"{len(caption)} characters"
        pair_key = make_uid(verdict.url, caption)
        uid = pair_key
        if RAW_UID in names:
            candidate = (raw_uid or "").strip().lower()
            if _HEX128.match(candidate):
                uid = candidate
            elif reason is None:
                reason, detail = INVALID_UID, repr(raw_uid)[:100]
        words = tokenize(caption) if reason is None else []
        out_uid.append(uid)
        out_url.append(verdict.url)
        out_caption.append(caption)
        pair_keys.append(pair_key)
        reasons.append(reason)
        details.append(detail)
        caption_keys.append(caption.lower())
        n_chars.append(len(caption))
        # DataComp's basic filter counts str.split() words ("the | Walmart" is 3, "big's" 1);
        # ALIGN's rule counts unigrams, punctuation not a word (ingest.word_count).
        count = len(caption.split()) if cfg.word_count == "split" and reason is None else len(words)
        n_words.append(count)
        wanted = with_tokens and cfg.min_words <= count <= cfg.max_words
        tokens.append(unigrams_and_bigrams(words) if wanted else [])

    schema = hygiene_schema(extra)
    n = len(urls)
    columns = {
        "uid": out_uid,
        "url": out_url,
        "caption": out_caption,
        "lang": pa.nulls(n, pa.string()),
        "lang_score": pa.nulls(n, pa.float32()),
        "pair_key": pair_keys,
        "reason": reasons,
        "detail": details,
        "caption_key": caption_keys,
        "n_chars": n_chars,
        "n_words": n_words,
        "tokens": tokens,
        SOURCE_FILE: batch.column(SOURCE_FILE),
        SOURCE_ROW: batch.column(SOURCE_ROW),
    }
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], type=field.type))
        else:
            arrays.append(to_json_safe(batch.column(field.name)).cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def hygiene_batches(
    batches: Iterator[pa.RecordBatch],
    cfg: IngestConfig,
    extra: pa.Schema,
    with_tokens: bool,
    allowed_networks: tuple[str, ...] = (),
    pinned_lists: tuple[tuple[str, str], ...] = (),
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body for the hygiene pass (`allowed_networks`: network.allowed_networks;
    `pinned_lists`: the blocklists' (path, digest), parsed once per process)."""
    lists = load_pinned(pinned_lists)
    for batch in batches:
        yield apply_hygiene(batch, cfg, extra, with_tokens, allowed_networks, lists)
