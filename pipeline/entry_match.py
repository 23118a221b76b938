"""Whole-word matching of captions against a list of entries (concept names, synset words,
MetaCLIP metadata) with one Aho-Corasick automaton (pyahocorasick), in one of two modes.

`metaclip` is MetaCLIP's reference matcher (metaclip/substr_matching.py) exactly: the caption
is padded with a space on each side, `, . ; : ? !` and the backtick are spaced out, tab, newline
and carriage return become spaces, and an entry matches where `" entry "` occurs in it; case
counts, other characters (' ( ) " / - and the no-break space) are not separators, and entries
are used as written (a repeated entry gets the matches of its last occurrence, as the
reference's automaton keeps the last value added for a key).

`casefold` (this project's own) case-folds both sides and treats every character that is not a
letter, digit or underscore as a separator ("wide-open" holds "wide"), so entries that differ
only in case or punctuation are one entry (the first occurrence's index).

An entry list is a UTF-8 text file, one entry per line, or a JSON array of strings (a `.json`
file: MetaCLIP's metadata.json). In a text file, empty lines are skipped in both modes; in
casefold mode lines starting with "#" are comments (not in a JSON list) and entries have their whitespace
collapsed; in metaclip mode every other line is an entry as written ("#1" included), with only
its line ending removed. The automaton is built once per process per file and mode (a Spark
Python worker builds it for its first batch, then reuses it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ahocorasick

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.config import Config

log = logging.getLogger(__name__)

MODES = ("metaclip", "casefold")


@dataclass(frozen=True)
class EntryMatchConfig:
    """The `entry_match` config section: how captions are matched against entry lists (this
    module), by balance's entries, select's text_based terms and compare's evaluation classes."""

    # metaclip: MetaCLIP's substr_matching exactly (case-sensitive; only , . ; : ? ! and the
    # backtick are spaced out; entries as written); casefold: case-folded, every
    # non-alphanumeric character a separator, entries differing in case or punctuation merged.
    # auto: metaclip for balance, casefold for select's terms and compare's classes.
    mode: str = "auto"

    def validate(self) -> None:
        if self.mode not in ("auto", *MODES):
            raise ConfigError(
                f"config entry_match.mode: expected auto, {' or '.join(MODES)}, got {self.mode!r}"
            )


def entry_match_mode(config: Config, consumer: str) -> str:
    """The entry matching mode of `consumer` (balance, select or compare), auto resolved:
    MetaCLIP's matcher for balancing, casefold for term lists and class names."""
    mode = config.entry_match.mode
    if mode == "auto":
        return "metaclip" if consumer == "balance" else "casefold"
    return mode


# Everything that is not a letter, digit or underscore separates words in casefold mode.
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)

# MetaCLIP's spacing (substr_matching.py): punctuation wrapped in spaces, control whitespace
# turned into spaces; nothing else changes.
_PUNCTS_TO_WRAP = (",", ".", ";", ":", "?", "!", "`")
_CHARS_TO_SPACE = ("\t", "\n", "\r")


def normalize(text: str) -> str:
    """casefold mode: case-folded words joined by single spaces, padded by one space on each
    side."""
    words = _NON_WORD.sub(" ", text.casefold()).split()
    return f" {' '.join(words)} "


def metaclip_spacing(text: str) -> str:
    """metaclip mode: the caption as MetaCLIP's `spacing` pads it."""
    spaced = f" {text} "
    for punct in _PUNCTS_TO_WRAP:
        spaced = spaced.replace(punct, f" {punct} ")
    for char in _CHARS_TO_SPACE:
        spaced = spaced.replace(char, " ")
    return spaced


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"entry matching mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class EntryList:
    """The entries of a list, in file order (index = position), and the file's digest."""

    entries: tuple[str, ...]
    digest: str

    def __len__(self) -> int:
        return len(self.entries)


def parse_entries(
    lines: Iterable[str], mode: str = "casefold", comments: bool = True
) -> tuple[str, ...]:
    """The entries of an entry file's lines: casefold mode normalises them, drops comments
    (unless `comments` is false: a JSON list has none) and keeps the first of a repeat; metaclip
    mode keeps every non-empty line as written."""
    if check_mode(mode) == "metaclip":
        return tuple(line.rstrip("\r\n") for line in lines if line.rstrip("\r\n"))
    seen: dict[str, None] = {}
    for line in lines:
        stripped = line.strip()
        if not stripped or (comments and stripped.startswith("#")):
            continue
        entry = normalize(stripped).strip()
        if entry:
            seen.setdefault(entry, None)
    return tuple(seen)


def _lines(data: bytes, path: Path) -> tuple[list[str], bool]:
    """(the entries' lines, whether "#" lines are comments: not in a JSON list)."""
    text = data.decode("utf-8")
    if path.suffix.lower() == ".json":
        entries = json.loads(text)
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ValueError(f"entry list {path}: a .json entry list is an array of strings")
        return entries, False
    return text.splitlines(), True


def read_entry_list(path: str | Path, mode: str = "casefold") -> EntryList:
    """The entry list in the file at `path` (see the module docstring for the format)."""
    path = Path(path)
    data = path.read_bytes()
    lines, comments = _lines(data, path)
    entries = parse_entries(lines, mode, comments)
    return EntryList(entries, hashlib.sha256(data).hexdigest()[:16])


class EntryMatcher:
    """An Aho-Corasick automaton over whole-word entries, in metaclip or casefold mode."""

    def __init__(self, entries: Sequence[str], mode: str = "casefold") -> None:
        self.entries = tuple(entries)
        self.mode = check_mode(mode)
        self._pad = metaclip_spacing if mode == "metaclip" else normalize
        self._automaton = ahocorasick.Automaton()
        for index, entry in enumerate(self.entries):
            # A repeated key keeps the last index (pyahocorasick replaces its value), as in
            # MetaCLIP's reference; casefold entries are unique already.
            self._automaton.add_word(f" {entry} ", index)
        if self.entries:
            self._automaton.make_automaton()

    def match(self, caption: str | None) -> list[int]:
        """Indices of the entries that occur in `caption` as whole words, each once, sorted."""
        if not caption or not self.entries:
            return []
        # Overlapping matches share their separating space: " red star " finds " red " and
        # " star " as well as " red star " (Aho-Corasick reports every occurrence).
        return sorted({index for _, index in self._automaton.iter(self._pad(caption))})

    def match_many(self, captions: Iterable[str | None]) -> list[list[int]]:
        """`match` of each caption, in order."""
        return [self.match(c) for c in captions]


@functools.lru_cache(maxsize=4)
def _cached_matcher(path: str, digest: str, mode: str) -> EntryMatcher:
    entries = read_entry_list(path, mode)
    if entries.digest != digest:
        raise RuntimeError(
            f"entry list {path} changed while the stage ran (digest {entries.digest}, "
            f"planned {digest})"
        )
    log.info("entry matcher: %d entries from %s (%s)", len(entries), path, mode)
    return EntryMatcher(entries.entries, mode)


def matcher_for(path: str, digest: str, mode: str = "casefold") -> EntryMatcher:
    """The automaton of the entry file at `path`, built once per process. `digest` (from
    `read_entry_list` on the driver) makes a worker refuse a file that changed since."""
    return _cached_matcher(str(path), digest, mode)
