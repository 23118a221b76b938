"""DataComp's text-based rule without WordNet at run time: the shipped table and morphy give
nltk's `wordnet.synsets(word)[0]` verdict (the expected values below are WordNet 3.0's, as nltk
3.10 reads it: first sense, its offset in ImageNet-21k or not), and the table builder parses
WordNet's index format."""

from __future__ import annotations

import gzip

import pytest

from pipeline.select.build_wordnet_table import build
from pipeline.select.wordnet_senses import (
    SynsetMatcher,
    first_sense_in_imagenet21k,
    load_table,
    morphy,
)

# word -> (the first sense nltk returns, whether its offset is an ImageNet-21k synset)
WORDS = [
    ("kids", "child.n.01", True),  # morphy's rule s -> "" gives kid, whose first sense is child
    ("Dogs", "dog.n.01", True),  # lower-cased first
    ("dog,", None, False),  # str.split() keeps the comma: no sense
    ("geese", "goose.n.01", True),  # noun.exc
    ("oxen", "cattle.n.01", True),
    ("wolves", "wolf.n.01", True),  # ves -> f
    ("women", "woman.n.01", True),  # men -> man
    ("boxes", "box.n.01", True),  # xes -> x
    ("axes", "ax.n.01", True),  # noun.exc: axes -> ax axis, ax first
    ("glasses", "spectacles.n.01", True),  # glasses is a lemma itself
    ("T-shirt", "jersey.n.03", True),
    ("churches", "church.n.01", False),  # the first sense is the body of Christians
    ("photo", "photograph.n.01", False),
    ("running", "run.n.05", False),  # a noun sense comes before every verb sense
    ("ran", "run.v.01", False),  # no noun: verb.exc
    ("golden", "aureate.s.02", False),  # first sense an adjective
    ("a", "angstrom.n.01", False),
    ("the", None, False),
    ("cat's", None, False),
    ("2020", None, False),
]


@pytest.mark.parametrize(("word", "sense", "in21k"), WORDS)
def test_first_sense_as_nltk_gives_it(word, sense, in21k):
    table = load_table()
    assert first_sense_in_imagenet21k(table, word) is in21k
    lowered = word.lower()
    has_sense = any(morphy(table, lowered, pos) for pos in "nvar")
    assert has_sense is (sense is not None)


def test_morphy_order_and_exceptions():
    table = load_table()
    assert morphy(table, "axes", "n") == ["ax", "axis"]
    assert morphy(table, "kids", "n") == ["kid"]
    assert morphy(table, "kids", "v") == ["kid"]
    assert morphy(table, "ran", "v") == ["run"]
    assert morphy(table, "ran", "n") == []
    assert morphy(table, "better", "a") == ["better", "good", "well"]  # adj.exc


@pytest.mark.parametrize(
    ("caption", "kept"),
    [
        ("two kids playing in the park", True),
        ("photo of a church", False),  # neither first sense is in ImageNet-21k
        ("my Dogs", True),
        ("my dog, sleeping", False),  # "dog," has no sense, sleeping's first is not a 21k one
        ("dog,cat", False),
        ("", False),
        (None, False),
    ],
)
def test_captions(caption, kept):
    assert SynsetMatcher(load_table()).names_a_synset(caption) is kept


def test_table_builder_reads_wordnet_index_files(tmp_path):
    wordnet = tmp_path / "wordnet"
    wordnet.mkdir()
    licence = "  1 This software and database is being provided to you\n"
    # lemma pos n_synsets n_pointers pointers... n_senses n_tagged offsets...
    (wordnet / "index.noun").write_text(
        licence + "dog n 2 3 @ ~ #m 2 1 02084071 10114209\nchurch n 2 1 @ 2 2 08082602 03028079\n"
    )
    (wordnet / "index.verb").write_text(licence + "dog v 1 1 @ 1 0 02084071\n")
    (wordnet / "index.adj").write_text(licence)
    (wordnet / "index.adv").write_text(licence)
    (wordnet / "noun.exc").write_text("dogs dog\n")
    for name in ("verb", "adj", "adv"):
        (wordnet / f"{name}.exc").write_text("")
    synsets = tmp_path / "ids.txt"
    synsets.write_text("n02084071\nn03028079\n")
    out = tmp_path / "table.tsv.gz"
    figures = build(wordnet, synsets, out)
    assert figures["n_lemmas"] == 2 and figures["n_in21k"] == 1 and figures["v_in21k"] == 1
    rows = [r for r in gzip.decompress(out.read_bytes()).decode().splitlines() if r[0] != "#"]
    # church's first synset (the body) is not listed, its second (the building) is: 0.
    assert rows == ["n\tchurch\t0", "n\tdog\t1", "x\tn\tdogs\tdog", "v\tdog\t1"]
    # The same inputs give the same bytes (no name or time in the gzip header).
    assert out.read_bytes() == build_bytes(wordnet, synsets, tmp_path / "again.gz")


def build_bytes(wordnet, synsets, out) -> bytes:
    build(wordnet, synsets, out)
    return out.read_bytes()
