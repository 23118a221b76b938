"""`curate compare --selections NAME=SPEC`: parsing and each selection's settings."""

from __future__ import annotations

import pytest

from pipeline.compare.selections import (
    Selection,
    parse_selection,
    parse_selections,
    selection_config,
)
from pipeline.compare.tail_classes import tail_classes
from pipeline.config import load_config
from pipeline.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("raw=raw", Selection("raw", "raw")),
        ("curated=run", Selection("curated", "run")),
        ("clip=clip_score", Selection("clip", "clip_score", ("clip_score",))),
        (
            "both=clip_score+image_based",
            Selection("both", "clip_score+image_based", ("clip_score", "image_based")),
        ),
        ("bal=clip_score+balance", Selection("bal", "clip_score+balance", ("clip_score",), True)),
        ("text-only = text_based", Selection("text-only", "text_based", ("text_based",))),
    ],
)
def test_parse_selection(text, expected):
    assert parse_selection(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clip_score", "expected NAME=SPEC"),
        ("a=", "expected NAME=SPEC"),
        ("a b=raw", "NAME may hold"),
        ("x=clip_score+aesthetic", "SPEC is raw, run"),
        ("x=clip_score+clip_score", "SPEC is raw, run"),
    ],
)
def test_parse_selection_refuses(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_selection(text)


def test_names_are_unique():
    with pytest.raises(ConfigError, match="used twice"):
        parse_selections(["a=raw", "a=run"])


def test_selection_config_sets_rules_and_balance(tmp_path):
    config = load_config(None, [f"balance.entries={tmp_path / 'e.txt'}", "balance.t=7"])
    plain = selection_config(config, parse_selection("c=clip_score+image_based"))
    assert plain.select.rules == ("clip_score", "image_based")
    assert plain.balance.entries == ""  # no balance unless named
    balanced = selection_config(config, parse_selection("b=clip_score+balance"))
    assert balanced.select.rules == ("clip_score",)
    assert balanced.balance.entries == str(tmp_path / "e.txt") and balanced.balance.t == 7
    with pytest.raises(ConfigError, match=r"balance needs balance\.entries"):
        selection_config(load_config(), parse_selection("b=balance"))


def test_tail_is_the_rarer_half():
    counts = {"a": 50, "b": 3, "c": 10, "d": 3, "e": 0}
    # Ranked e(0), b(3), d(3), c(10), a(50): the rarer half of 5 is 2 classes.
    assert tail_classes(counts) == ["b", "e"]
