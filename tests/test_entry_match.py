"""The whole-word, case-folded entry matcher shared by the text-based rule and balancing."""

from __future__ import annotations

import pytest

from pipeline.entry_match import (
    EntryMatcher,
    matcher_for,
    normalize,
    parse_entries,
    read_entry_list,
)

ENTRIES = ["red circle", "red", "circle", "cat", "new york", "über"]


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("a red circle", ["red circle", "red", "circle"]),
        ("A RED-Circle!", ["red circle", "red", "circle"]),
        ("redcircle", []),  # never inside a longer word
        ("the category of cats", []),  # "cat" is not in "category" nor "cats"
        ("cat", ["cat"]),
        ("I ♥ New   York", ["new york"]),
        ("Über alles", ["über"]),
        ("", []),
        (None, []),
        ("red red red", ["red"]),  # an entry counts once per caption
    ],
)
def test_matches_whole_words_case_folded(caption, expected):
    matcher = EntryMatcher(parse_entries(ENTRIES))
    assert [matcher.entries[i] for i in matcher.match(caption)] == sorted(
        expected, key=matcher.entries.index
    )


def test_entry_file_format(tmp_path):
    path = tmp_path / "entries.txt"
    path.write_text("# a comment\n\nRed  Circle\nred circle\n  cat \nNew-York\n")
    entries = read_entry_list(path)
    # Case-folded, whitespace and punctuation collapsed, the repeat dropped, file order kept.
    assert entries.entries == ("red circle", "cat", "new york")
    assert len(entries.digest) == 16
    assert matcher_for(str(path), entries.digest).match("a cat in New York") == [1, 2]


def test_worker_refuses_a_file_changed_since_planning(tmp_path):
    path = tmp_path / "entries.txt"
    path.write_text("cat\n")
    digest = read_entry_list(path).digest
    path.write_text("dog\n")
    with pytest.raises(RuntimeError, match="changed while the stage ran"):
        matcher_for(str(path), digest)


def test_normalize():
    assert normalize("  Hello,   World!! ") == " hello world "
    assert normalize("") == "  "


def test_empty_list_matches_nothing():
    assert EntryMatcher([]).match("anything") == []
