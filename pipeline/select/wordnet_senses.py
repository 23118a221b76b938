"""DataComp's text-based rule (`baselines/apply_filter.py::does_contain_text_entity`) without
WordNet at run time: a caption is kept when one of its `str.split()` words (punctuation stays
attached) has a first WordNet sense among ImageNet-21k's synsets.

The reference asks nltk for `wordnet.synsets(word)[0].offset()`: nltk lower-cases the word, then
for each part of speech in the order noun, verb, adjective, adverb runs WordNet's morphy (the
exception list, else one pass of the detachment rules, "kids" -> kid, keeping the forms the
index has) and lists the synsets of each form; the first is the first form's first synset of the
first part of speech that has a form. Its offset is compared with the ImageNet-21k offsets
whatever its part of speech. The table (pipeline/select/data/wordnet_in21k.tsv.gz, built by
pipeline/select/build_wordnet_table.py) holds, per part of speech, every index lemma and
whether its first synset's offset is one of them, and the exception lists. The morphy here is
nltk 3.9+'s (releases before 3.9 also applied the rules again when one pass found nothing).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

TABLE = "data/wordnet_in21k.tsv.gz"
POS_ORDER = ("n", "v", "a", "r")

# WordNet's detachment rules (morphy(7WN)), as nltk lists them, in order.
SUBSTITUTIONS = {
    "n": (
        ("s", ""),
        ("ses", "s"),
        ("ves", "f"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
    ),
    "v": (
        ("s", ""),
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
    ),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}


@dataclass(frozen=True)
class SenseTable:
    """pos -> lemma -> whether its first synset is an ImageNet-21k synset; pos -> inflected
    form -> its base forms; the table file's digest."""

    lemmas: dict[str, dict[str, bool]]
    exceptions: dict[str, dict[str, tuple[str, ...]]]
    digest: str


def table_bytes() -> bytes:
    # importlib.resources reads it from the source tree, a wheel or the --py-files zip alike.
    return resources.files("pipeline.select").joinpath(TABLE).read_bytes()


@functools.lru_cache(maxsize=1)
def load_table() -> SenseTable:
    """The shipped table, parsed once per process (about 155k lemmas)."""
    data = table_bytes()
    lemmas: dict[str, dict[str, bool]] = {pos: {} for pos in POS_ORDER}
    exceptions: dict[str, dict[str, tuple[str, ...]]] = {pos: {} for pos in POS_ORDER}
    for line in gzip.decompress(data).decode("utf-8").splitlines():
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if fields[0] == "x":
            exceptions[fields[1]][fields[2]] = tuple(fields[3].split())
        else:
            lemmas[fields[0]][fields[1]] = fields[2] == "1"
    return SenseTable(lemmas, exceptions, hashlib.sha256(data).hexdigest()[:16])


def morphy(table: SenseTable, form: str, pos: str) -> list[str]:
    """The base forms of `form` in `pos` that WordNet's index has, in nltk's order: the form
    itself, then its exception list's bases, or else one pass of the detachment rules."""
    index = table.lemmas[pos]
    bases = table.exceptions[pos].get(form)
    if bases is None:
        bases = tuple(
            form[: -len(old)] + new for old, new in SUBSTITUTIONS[pos] if form.endswith(old)
        )
    found: list[str] = []
    for candidate in (form, *bases):
        if candidate in index and candidate not in found:
            found.append(candidate)
    return found


def first_sense_in_imagenet21k(table: SenseTable, word: str) -> bool:
    """Whether nltk's `wordnet.synsets(word)[0]` has an ImageNet-21k offset (False without a
    sense)."""
    word = word.lower()
    for pos in POS_ORDER:
        forms = morphy(table, word, pos)
        if forms:
            return table.lemmas[pos][forms[0]]
    return False


class SynsetMatcher:
    """The rule over captions, with a cache of the words seen (captions repeat words)."""

    def __init__(self, table: SenseTable, cache_words: int = 1 << 20) -> None:
        self.table = table
        self._word = functools.lru_cache(maxsize=cache_words)(
            functools.partial(first_sense_in_imagenet21k, table)
        )

    def names_a_synset(self, caption: str | None) -> bool:
        """DataComp's does_contain_text_entity (a null caption names nothing)."""
        return bool(caption) and any(self._word(word) for word in caption.split())


@functools.lru_cache(maxsize=1)
def synset_matcher() -> SynsetMatcher:
    """The matcher of the shipped table, built once per process."""
    return SynsetMatcher(load_table())
