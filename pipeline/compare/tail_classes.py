"""Which evaluation classes are the tail: the half named by the fewest captions of the pool;
and how many captions of a training set name each class.

Counted with the same whole-word matcher as the text-based rule and balancing (entry_match.mode); the driver
streams the parquet files one batch at a time and holds one count per class.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.entry_match import EntryMatcher, parse_entries
from pipeline.files import data_files
from pipeline.run_dir import RunDir


def class_counts(run: RunDir, classes: Sequence[str], mode: str = "casefold") -> dict[str, int]:
    """Class -> candidates whose caption names it (whole words, entry_match.mode)."""
    return caption_counts(run.candidates, classes, mode)


def caption_counts(folder: Path, classes: Sequence[str], mode: str = "casefold") -> dict[str, int]:
    """Class -> rows of the parquet files in `folder` (a `caption` column: candidates,
    downloads, shards) whose caption names it. Classes that are one entry once matched (the
    same name twice; in casefold mode, names differing in case or punctuation) share a count."""
    names = list(classes)
    matcher = EntryMatcher(parse_entries(names, mode), mode)
    normalised = [(parse_entries([n], mode) or ("",))[0] for n in names]
    # A repeated entry matches under its last index (metaclip mode; casefold entries are unique).
    index = {entry: i for i, entry in enumerate(matcher.entries)}
    counts: Counter[int] = Counter()
    for path in data_files(folder):
        for batch in pq.ParquetFile(path).iter_batches(columns=["caption"], batch_size=65_536):
            for found in matcher.match_many(batch.column(0).to_pylist()):
                counts.update(found)
    return {
        name: counts[index[n]] if n in index else 0
        for name, n in zip(names, normalised, strict=True)
    }


def tail_classes(counts: dict[str, int]) -> list[str]:
    """The rarer half of the classes (ties broken by name), sorted by name."""
    ranked = sorted(counts, key=lambda c: (counts[c], c))
    return sorted(ranked[: len(ranked) // 2])
