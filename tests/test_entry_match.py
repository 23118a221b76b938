"""The whole-word entry matcher shared by the text-based rule, balancing and compare, in
casefold mode and in metaclip mode (MetaCLIP's reference matcher, exactly)."""

from __future__ import annotations

import pytest

from pipeline.entry_match import (
    EntryMatcher,
    matcher_for,
    metaclip_spacing,
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


# MetaCLIP's matcher (metaclip/substr_matching.py): case-sensitive, only , . ; : ? ! and the
# backtick spaced out, tab/newline/CR as spaces, entries as written. Worked out by hand.
METACLIP_ENTRIES = ["wide", "s", "'s", "#1", "Cat", "cat", "New York", "red-star", "a b", "cat"]
METACLIP = [
    ("wide-open road", []),  # "-" is not a separator there
    ("the wide, open road", ["wide"]),
    ("it's a cat", ["cat"]),  # "'s" stays attached to "it"; "cat" is the last of the repeats
    ("cats 's", ["'s"]),
    ("#1 hit", ["#1"]),
    ("Cat, dog", ["Cat"]),  # case counts
    ("New York. New\tYork", ["New York"]),
    ("new york", []),
    ("a red-star flag", ["red-star"]),
    ("a  b", []),  # a double space is not collapsed
    ("a\nb", ["a b"]),
    ("a\u00a0b cat!", ["cat"]),  # the no-break space is not a space there
    ("(cat)", []),
    ("cat?cat", ["cat"]),
    ("", []),
    (None, []),
]


def _reference(caption: str) -> list[int]:
    """MetaCLIP's definition without the automaton: " entry " occurs in the spaced caption; a
    repeated entry belongs to its last index (the automaton keeps the last value of a key)."""
    spaced = metaclip_spacing(caption)
    last = {entry: i for i, entry in enumerate(METACLIP_ENTRIES)}
    return sorted({last[e] for e in METACLIP_ENTRIES if f" {e} " in spaced})


@pytest.mark.parametrize(("caption", "expected"), METACLIP)
def test_metaclip_mode_is_metaclips_matcher(caption, expected):
    matcher = EntryMatcher(parse_entries(METACLIP_ENTRIES, "metaclip"), "metaclip")
    assert matcher.entries == tuple(METACLIP_ENTRIES)  # as written, repeats kept
    found = matcher.match(caption)
    assert [matcher.entries[i] for i in found] == expected
    if caption:
        assert found == _reference(caption)
    if "cat" in expected:
        assert len(METACLIP_ENTRIES) - 1 in found  # the last "cat", not index 5


def test_metaclip_spacing_is_the_references():
    assert metaclip_spacing("a,b.c;d:e?f!g`h") == " a , b . c ; d : e ? f ! g ` h "
    assert metaclip_spacing("x\ty\nz\rw") == " x y z w "


def test_metaclip_entry_file_keeps_lines_as_written(tmp_path):
    path = tmp_path / "entries.txt"
    path.write_text("#1\n\nRed  Circle\nred circle\r\n cat \n")
    assert read_entry_list(path, "metaclip").entries == ("#1", "Red  Circle", "red circle", " cat ")
    assert read_entry_list(path).entries == ("red circle", "cat")  # casefold: # is a comment


def test_json_entry_list(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text('["cat", "New York", "#1", "line\\nbreak"]')
    assert read_entry_list(path, "metaclip").entries == ("cat", "New York", "#1", "line\nbreak")
    assert read_entry_list(path).entries == ("cat", "new york", "1", "line break")  # no comments
    path.write_text('{"cat": 1}')
    with pytest.raises(ValueError, match="array of strings"):
        read_entry_list(path)


def test_matcher_is_cached_per_mode(tmp_path):
    path = tmp_path / "entries.txt"
    path.write_text("Cat\n")
    digest = read_entry_list(path).digest
    assert matcher_for(str(path), digest, "metaclip").match("a cat") == []
    assert matcher_for(str(path), digest, "casefold").match("a cat") == [0]
