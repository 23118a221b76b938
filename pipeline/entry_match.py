"""Whole-word matching of captions against a list of entries (concept names, synset words,
MetaCLIP metadata) with one Aho-Corasick automaton (pyahocorasick).

MetaCLIP's reference matcher pads every entry with spaces (`f" {entry} "`) and spaces out the
text's punctuation before running its automaton: an entry matches as whole words, never inside a
longer word ("cat" not in "category"). We do the same, case-folded, so DataComp's text-based rule
(a caption word names an ImageNet-21k synset) and MetaCLIP balancing share one matcher.

An entry list is a UTF-8 text file, one entry per line; blank lines and lines starting with "#"
are left out; entries are case-folded and their inner whitespace collapsed; a repeated entry
keeps its first index. The automaton is built once per process per file (a Spark Python worker
builds it for its first batch, then reuses it).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ahocorasick

log = logging.getLogger(__name__)

# Everything that is not a letter, digit or underscore separates words ("red-star" is two words,
# as MetaCLIP's spacing makes it).
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalize(text: str) -> str:
    """Case-folded words joined by single spaces, padded by one space on each side."""
    words = _NON_WORD.sub(" ", text.casefold()).split()
    return f" {' '.join(words)} "


@dataclass(frozen=True)
class EntryList:
    """The entries of a list, in file order (index = position), and the file's digest."""

    entries: tuple[str, ...]
    digest: str

    def __len__(self) -> int:
        return len(self.entries)


def parse_entries(lines: Iterable[str]) -> tuple[str, ...]:
    """Normalised, de-duplicated entries of an entry file's lines (first occurrence wins)."""
    seen: dict[str, None] = {}
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        entry = normalize(stripped).strip()
        if entry:
            seen.setdefault(entry, None)
    return tuple(seen)


def read_entry_list(path: str | Path) -> EntryList:
    """The entry list in the file at `path` (see the module docstring for the format)."""
    data = Path(path).read_bytes()
    entries = parse_entries(data.decode("utf-8").splitlines())
    return EntryList(entries, hashlib.sha256(data).hexdigest()[:16])


class EntryMatcher:
    """An Aho-Corasick automaton over whole-word, case-folded entries."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = tuple(entries)
        self._automaton = ahocorasick.Automaton()
        for index, entry in enumerate(self.entries):
            self._automaton.add_word(f" {entry} ", index)
        if self.entries:
            self._automaton.make_automaton()

    def match(self, caption: str | None) -> list[int]:
        """Indices of the entries that occur in `caption` as whole words, each once, sorted."""
        if not caption or not self.entries:
            return []
        # Overlapping matches share their separating space: " red star " finds " red " and
        # " star " as well as " red star " (Aho-Corasick reports every occurrence).
        return sorted({index for _, index in self._automaton.iter(normalize(caption))})

    def match_many(self, captions: Iterable[str | None]) -> list[list[int]]:
        """`match` of each caption, in order."""
        return [self.match(c) for c in captions]


@functools.lru_cache(maxsize=4)
def _cached_matcher(path: str, digest: str) -> EntryMatcher:
    entries = read_entry_list(path)
    if entries.digest != digest:
        raise RuntimeError(
            f"entry list {path} changed while the stage ran (digest {entries.digest}, "
            f"planned {digest})"
        )
    log.info("entry matcher: %d entries from %s", len(entries), path)
    return EntryMatcher(entries.entries)


def matcher_for(path: str, digest: str) -> EntryMatcher:
    """The automaton of the entry file at `path`, built once per process. `digest` (from
    `read_entry_list` on the driver) makes a worker refuse a file that changed since."""
    return _cached_matcher(str(path), digest)
