"""Build the table behind DataComp's text-based rule (`select.text_based.mode: datacomp`) from
the WordNet 3.0 database and the ImageNet-21k synset list, so that no run needs WordNet:

    python -m pipeline.select.build_wordnet_table --wordnet /usr/share/wordnet \\
        --synsets imagenet21k_wordnet_ids.txt --out pipeline/select/data/wordnet_in21k.tsv.gz

(`make wordnet-table`). The WordNet database is Debian's `wordnet-base` (1:3.0-37, Princeton
WordNet 3.0, the version `nltk.download("wordnet")` gives; WordNet 3.0 licence, reproduced in the
table's header); the synset list is the 21,843 ImageNet-21k (fall 2011) WordNet ids that DataComp
downloads as `imagenet21k_wordnet_ids.txt` (BiT's list; timm ships it as
`timm/data/_info/imagenet21k_goog_synsets.txt`).

The table holds, for every lemma of each part of speech's index file, whether its first synset's
offset is one of the ImageNet-21k offsets (DataComp compares the bare offset, whatever the part
of speech), and the exception lists that WordNet's morphy reads. Rows: `n|v|a|r <TAB> lemma
<TAB> 0|1`, and `x <TAB> pos <TAB> inflected <TAB> base [base ...]`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# WordNet's file suffixes, in nltk's POS_LIST order (the order synsets() returns senses in).
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}

# The WordNet 3.0 licence, verbatim (it asks to appear on every copy of the database).
LICENCE = """\
This software and database is being provided to you, the LICENSEE, by
Princeton University under the following license.  By obtaining, using
and/or copying this software and database, you agree that you have
read, understood, and will comply with these terms and conditions.:

Permission to use, copy, modify and distribute this software and
database and its documentation for any purpose and without fee or
royalty is hereby granted, provided that you agree to comply with
the following copyright notice and statements, including the disclaimer,
and that the same appear on ALL copies of the software, database and
documentation, including modifications that you make for internal
use or for distribution.

WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR
IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in
advertising or publicity pertaining to distribution of the software
and/or database.  Title to copyright in this software, database and
any associated documentation shall at all times remain with
Princeton University and LICENSEE agrees to preserve same."""


def index_first_offsets(path: Path) -> dict[str, int]:
    """lemma -> the offset of its first synset, from a WordNet index file (the format nltk's
    reader parses: lemma pos n_synsets n_pointers pointers... n_senses n_tagged offsets...)."""
    first: dict[str, int] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(" "):  # the licence header
            continue
        tokens = line.split()
        n_pointers = int(tokens[3])
        first[tokens[0]] = int(tokens[4 + n_pointers + 2])
    return first


def exceptions(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.split()]


def synset_offsets(path: Path) -> set[int]:
    """The offsets of a list of WordNet ids (`n01440764`), as DataComp reads them: int(id[1:])."""
    return {int(x.strip()[1:]) for x in path.read_text().splitlines() if x.strip()}


def build(wordnet: Path, synsets: Path, out: Path) -> dict[str, int]:
    """Write the table; returns rows per part of speech and matching lemmas."""
    targets = synset_offsets(synsets)
    digest = hashlib.sha256(synsets.read_bytes()).hexdigest()
    figures: dict[str, int] = {"synsets": len(targets)}
    lines = [
        "# DataComp text-based rule: WordNet 3.0 lemmas whose first synset is in ImageNet-21k.",
        f"# Built by pipeline/select/build_wordnet_table.py from {len(targets)} synset ids "
        f"(sha256 {digest[:16]}) and the WordNet 3.0 database (Debian wordnet-base 1:3.0-37).",
        *(f"# {line}" for line in LICENCE.splitlines()),
    ]
    for pos, name in POS_FILES.items():
        first = index_first_offsets(wordnet / f"index.{name}")
        hits = 0
        for lemma in sorted(first):
            hit = first[lemma] in targets
            hits += hit
            lines.append(f"{pos}\t{lemma}\t{int(hit)}")
        figures[f"{pos}_lemmas"], figures[f"{pos}_in21k"] = len(first), hits
        for terms in exceptions(wordnet / f"{name}.exc"):
            lines.append("\t".join(["x", pos, terms[0], " ".join(terms[1:])]))
    out.parent.mkdir(parents=True, exist_ok=True)
    # No file name and mtime 0 in the header: the same inputs give the same bytes.
    with out.open("wb") as raw, gzip.GzipFile("", "wb", fileobj=raw, mtime=0) as fh:
        fh.write(("\n".join(lines) + "\n").encode("utf-8"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--synsets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    log.info("wordnet table: %s", build(args.wordnet, args.synsets, args.out))


if __name__ == "__main__":
    main()
