"""Per-row decisions of the ingest stage, without Spark: rule precedence and language ID."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from pipeline.ingest import decide, langid
from pipeline.ingest.plan import vocabulary_floor
from pipeline.ingest.settings import IngestConfig

CFG = IngestConfig(max_captions_per_url=3)
MODEL = langid.default_model_path()


def _batch(rows: list[dict]) -> pa.RecordBatch:
    defaults = {
        "caption": "a red car parked on a quiet street",
        "reason": None,
        "detail": None,
        "lang": None,
        "lang_score": None,
        "n_chars": 34,
        "n_words": 7,
        decide.CAPTION_REPEATS: 1,
        decide.URL_CAPTIONS: 1,
        decide.RARE_TOKEN: None,
    }
    full = [{**defaults, **r} for r in rows]
    schema = pa.schema(
        [
            ("caption", pa.string()),
            ("reason", pa.string()),
            ("detail", pa.string()),
            ("lang", pa.string()),
            ("lang_score", pa.float32()),
            ("n_chars", pa.int32()),
            ("n_words", pa.int32()),
            (decide.CAPTION_REPEATS, pa.int64()),
            (decide.URL_CAPTIONS, pa.int64()),
            (decide.RARE_TOKEN, pa.string()),
        ]
    )
    return pa.RecordBatch.from_pylist(full, schema=schema)


RULE_CASES = [
    # (row overrides, expected reason, expected detail)
    ({}, None, None),
    ({"reason": "ingest.private_host", "detail": "x"}, "ingest.private_host", "x"),
    ({"n_chars": 4, "n_words": 1}, "ingest.caption_too_short", "4 characters"),
    ({"n_chars": 5, "n_words": 2}, "ingest.too_few_words", "2 words"),
    ({"n_words": 3}, None, None),
    ({"n_words": 20}, None, None),
    ({"n_words": 21}, "ingest.too_many_words", "21 words"),
    ({decide.CAPTION_REPEATS: 10}, None, None),
    ({decide.CAPTION_REPEATS: 11}, "ingest.caption_repeated", "shared by 11 images"),
    ({decide.URL_CAPTIONS: 3}, None, None),
    ({decide.URL_CAPTIONS: 4}, "ingest.url_too_many_captions", "4 alt-texts"),
    ({decide.RARE_TOKEN: "zzqx"}, "ingest.rare_token", "zzqx"),
    # Precedence: the first failing rule names the reason.
    ({"n_words": 2, decide.CAPTION_REPEATS: 50}, "ingest.too_few_words", "2 words"),
    (
        {decide.CAPTION_REPEATS: 50, decide.RARE_TOKEN: "zzqx"},
        "ingest.caption_repeated",
        "shared by 50 images",
    ),
]


@pytest.mark.parametrize(("row", "reason", "detail"), RULE_CASES)
def test_text_rules(row, reason, detail):
    reasons, details = decide.text_rule_reasons(_batch([row]), CFG)
    assert (reasons[0], details[0]) == (reason, detail)


LANG_CASES = [
    ("a red car parked on a quiet street in the city", "en", None),
    ("ein rotes Auto parkt auf einer ruhigen Straße in der Stadt", "de", "ingest.language"),
    ("une voiture rouge garée dans une rue calme de la ville", "fr", "ingest.language"),
    ("un coche rojo aparcado en una calle tranquila de la ciudad", "es", "ingest.language"),
]


@pytest.mark.parametrize(("caption", "lang", "reason"), LANG_CASES)
def test_language_id_with_real_lid176(caption, lang, reason):
    out = decide.decide_batch(_batch([{"caption": caption}]), CFG, MODEL)
    row = out.to_pylist()[0]
    assert row["lang"] == lang
    assert row["lang_score"] > 0.5
    assert row["reason"] == reason


def test_language_all_keeps_every_language_and_min_score_applies():
    captions = [c for c, _, _ in LANG_CASES]
    batch = _batch([{"caption": c} for c in captions])
    keep_all = decide.decide_batch(batch, dataclasses.replace(CFG, languages=("all",)), MODEL)
    assert keep_all.column("reason").to_pylist() == [None] * 4
    strict = decide.decide_batch(
        batch, dataclasses.replace(CFG, languages=("all",), min_lang_score=1.0), MODEL
    )
    assert set(strict.column("reason").to_pylist()) == {"ingest.language_score"}
    several = decide.decide_batch(batch, dataclasses.replace(CFG, languages=("en", "de")), MODEL)
    assert several.column("reason").to_pylist() == [
        None,
        None,
        "ingest.language",
        "ingest.language",
    ]


def test_rows_already_dropped_get_no_language():
    out = decide.decide_batch(_batch([{"reason": "ingest.missing_url"}]), CFG, MODEL)
    row = out.to_pylist()[0]
    assert (row["lang"], row["lang_score"], row["reason"]) == (None, None, "ingest.missing_url")


def test_input_batch_is_not_mutated():
    batch = _batch([{"n_words": 1}])
    decide.decide_batch(batch, CFG, MODEL)
    assert batch.column("reason").to_pylist() == [None]


def test_model_loads_once_per_process():
    langid.load_model.cache_clear()
    first = langid.load_model(MODEL)
    assert langid.load_model(MODEL) is first
    assert langid.load_model.cache_info().misses == 1


@pytest.mark.parametrize(
    ("histogram", "vocab_size", "floor"),
    [
        ([(5, 2), (3, 4), (1, 10)], 100, 1),  # everything fits: no floor
        ([(5, 2), (3, 4), (1, 10)], 6, 3),  # the 6 most frequent tokens have counts >= 3
        ([(5, 2), (3, 4), (1, 10)], 5, 5),  # ties at 3 are not split: keep only count 5
        ([(5, 2), (3, 4), (1, 10)], 1, 6),  # even the top count ties: nothing is in
        ([], 10, 1),
    ],
)
def test_vocabulary_floor(histogram, vocab_size, floor):
    assert vocabulary_floor(histogram, vocab_size) == floor
