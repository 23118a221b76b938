"""Word counting of the hygiene pass: ALIGN's unigrams or DataComp's str.split() words
(ingest.word_count), read by min_words and max_words."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from pipeline.ingest.hygiene import RAW_CAPTION, RAW_URL, SOURCE_FILE, SOURCE_ROW, apply_hygiene
from pipeline.ingest.settings import IngestConfig


@pytest.mark.parametrize(
    ("caption", "tokens", "split"),
    [
        ("the | Walmart", 2, 3),  # "|" is a str.split() word, no \w token
        ("big's of", 3, 2),  # "big's" is two tokens, one word
        ("a red-star flag", 4, 3),
        ("three plain words", 3, 3),
        ("  spaced   out  ", 2, 2),  # whitespace collapsed first
    ],
)
def test_word_count(caption, tokens, split):
    batch = pa.record_batch(
        [
            pa.array(["http://127.0.0.1/a.jpg"]),
            pa.array([caption]),
            pa.array(["in.parquet"]),
            pa.array([0], pa.int64()),
        ],
        names=[RAW_URL, RAW_CAPTION, SOURCE_FILE, SOURCE_ROW],
    )
    for mode, expected in (("tokens", tokens), ("split", split)):
        cfg = dataclasses.replace(IngestConfig(), word_count=mode)
        out = apply_hygiene(batch, cfg, pa.schema([]), allowed_networks=("127.0.0.0/8",))
        assert out.column("n_words").to_pylist() == [expected], mode
        # The rare-token rule's tokens are gathered only for captions the count keeps.
        assert bool(out.column("tokens").to_pylist()[0]) is (expected >= 3), mode
