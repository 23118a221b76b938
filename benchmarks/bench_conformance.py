"""Agreement with the references' own code, side by side on the same rows, and the cost of the
rules that reproduce them.

- DataComp top fraction (`baselines/apply_filter.py`): N float32 scores rounded to 3 decimals
  (ties), 1 % null, 0.5 % NaN; the reference's uid set (`-np.sort(-x)[int(N * f)]`, keep
  `>= threshold`, pandas' NaN for null) against the preselect plan's keep-list under
  `ingest.preset: datacomp` (reference rule, denominator all), and how far the interpolated
  rule is from it; the absolute threshold 0.22 compared in float32 likewise. Cost of the cut
  (the radix select's passes) at 1x and 10x rows, against the interpolated percentile.
- MetaCLIP matching (`metaclip/substr_matching.py`): captions with case, punctuation,
  apostrophes, hyphens, brackets, tabs and no-break spaces, and entries written with case and
  punctuation (repeats and a "#1" among them); per-entry counts of the balance stage's matching
  pass (Spark, metaclip mode) against the reference's code (its spacing, its automaton), and
  the casefold mode's counts for comparison.
- DataComp text-based (`does_contain_text_entity`): only where nltk and WordNet 3.0 are
  installed (`NLTK_DATA`); the table-based rule against nltk on the same captions, and both
  rates in one process.

Run with `make bench-conformance` (about 2 minutes on 2 cores); `--rows 1e5 --captions 1.5e5`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import ahocorasick
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from benchmarks.bench_dedup import MemoryPoller, mib, parse_count
from benchmarks.common import report_rate, report_ratio, timed
from pipeline.balance.decide import MATCHED, match_batches
from pipeline.config import load_config
from pipeline.entry_match import read_entry_list
from pipeline.logs import setup_logging
from pipeline.preselect.plan import decide as preselect
from pipeline.spark.arrow import map_batches
from pipeline.spark.session import get_spark
from pipeline.spark.top_fraction import top_fraction_cut

log = logging.getLogger("benchmarks.bench_conformance")

FRACTIONS = (0.1, 0.3, 0.5)
COLUMN = "clip_l14_similarity_score"


def score_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(0.22, 0.05, rows), 3).astype(np.float32)
    scores[rng.random(rows) < 0.005] = np.nan
    null = rng.random(rows) < 0.01
    return pa.table(
        {
            "uid": [f"{i:032x}" for i in range(rows)],
            COLUMN: pa.array(scores, pa.float32(), mask=null),
        }
    )


def reference_top_fraction(table: pa.Table, fraction: float) -> set[str]:
    """apply_filter's get_threshold and load_uids_with_clip_score_helper, on pandas' view."""
    values = table.column(COLUMN).to_pandas().to_numpy(dtype=np.float32)
    n = int(len(values) * fraction)
    threshold = -np.sort(-values)[n]
    keep = values >= threshold
    return set(np.asarray(table.column("uid").to_pylist())[keep].tolist())


def reference_threshold(table: pa.Table, threshold: float) -> set[str]:
    values = table.column(COLUMN).to_pandas().to_numpy(dtype=np.float32)
    return set(np.asarray(table.column("uid").to_pylist())[values >= threshold].tolist())


def ours(spark, path: Path, *overrides: str) -> set[str]:
    config = load_config(
        None, ["ingest.preset=datacomp", f"select.pool.clip_column={COLUMN}", *overrides]
    )
    frame = spark.read.parquet(str(path))
    decisions = preselect({"candidates": frame}, config).frame
    kept = decisions.filter(F.col("reason").isNull()).select("uid").toArrow()
    return set(kept.column("uid").to_pylist())


def top_fraction_part(spark, root: Path, rows: int) -> None:
    table = score_table(rows, 0)
    path = root / "scores.parquet"
    pq.write_table(table, path)
    for fraction in FRACTIONS:
        expected = reference_top_fraction(table, fraction)
        got = ours(spark, path, f"select.pool.clip_top_fraction={fraction}")
        interpolated = ours(
            spark,
            path,
            f"select.pool.clip_top_fraction={fraction}",
            "select.top_fraction_rule=interpolated",
            "select.top_fraction_denominator=scored",
        )
        print(
            f"datacomp top {fraction:.0%} of {rows:,}: reference keeps {len(expected):,}, ours "
            f"(reference rule) {len(got):,}, identical uid sets: {got == expected}; the "
            f"interpolated rule keeps {len(interpolated):,} "
            f"({len(interpolated ^ expected):,} uids apart)"
        )
    expected = reference_threshold(table, 0.22)
    got = ours(spark, path, "select.pool.clip_threshold=0.22")
    print(
        f"datacomp threshold 0.22 (float32 scores): reference keeps {len(expected):,}, ours "
        f"{len(got):,}, identical: {got == expected}; compared in float64 it would keep "
        f"{int(np.sum(table.column(COLUMN).to_numpy(zero_copy_only=False).astype(np.float64) >= 0.22)):,}"
    )


def cut_cost(spark, root: Path, rows: int, poller: MemoryPoller) -> dict[str, float]:
    path = root / f"cost-{rows}.parquet"
    pq.write_table(score_table(rows, 1), path)
    frame = spark.read.parquet(str(path)).cache()
    frame.count()
    out = {}
    for rule, denominator in (("reference", "all"), ("interpolated", "scored")):
        poller.reset()
        seconds, cut = timed(
            lambda r=rule, d=denominator: top_fraction_cut(frame, COLUMN, 0.3, r, d)
        )
        memory = poller.read()
        out[rule] = seconds
        print(
            f"cut {rule} n={rows:,}: {seconds:.2f} s, threshold {cut.threshold}; peak RSS "
            f"driver {mib(memory.get('driver', 0))}, JVM {mib(memory.get('jvm', 0))}, workers "
            f"{mib(memory.get('workers', 0))}"
        )
    frame.unpersist()
    return out


VOCABULARY = ("dog", "Dog", "cat", "wide", "open", "new", "York", "red", "star", "s", "photo")
SEPARATORS = (" ", " ", " ", " ", ", ", ". ", "-", "'s ", " (", ") ", "\t", "\u00a0", "! ", "  ")


def metaclip_data(captions: int, entries: int, seed: int) -> tuple[list[str], list[str]]:
    """Captions over a Zipf vocabulary with case and punctuation, and entries as a metadata
    list writes them (words, bigrams, capitalised, hyphenated, a few repeats and '#1')."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(3_000)] + list(VOCABULARY)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    order = rng.permutation(len(words))
    texts = []
    for _ in range(captions):
        k = int(rng.integers(3, 12))
        picked = [words[order[i]] for i in rng.choice(len(words), k, p=weights)]
        picked = [w.capitalize() if rng.random() < 0.1 else w for w in picked]
        seps = rng.choice(len(SEPARATORS), k - 1)
        texts.append(
            picked[0] + "".join(SEPARATORS[s] + w for s, w in zip(seps, picked[1:], strict=True))
        )
    names: list[str] = list(VOCABULARY) + ["wide-open", "'s", "#1", "New York", "red star", "cat"]
    while len(names) < entries:
        a, b = (words[order[i]] for i in rng.choice(len(words), 2, p=weights))
        kind = rng.random()
        names.append(
            a
            if kind < 0.6
            else f"{a} {b}"
            if kind < 0.8
            else f"{a}-{b}"
            if kind < 0.9
            else a.capitalize()
        )
    return texts, names


def reference_counts(captions: list[str], entries: list[str]) -> np.ndarray:
    """MetaCLIP's substr_matching, as its code runs it."""
    automaton = ahocorasick.Automaton()
    for idx, key in enumerate(f" {e} " for e in entries):
        automaton.add_word(key, (idx, key))
    automaton.make_automaton()
    counts = np.zeros(len(entries), dtype=np.int64)
    for text in captions:
        spaced = f" {text} "
        for punct in (",", ".", ";", ":", "?", "!", "`"):
            spaced = spaced.replace(punct, f" {punct} ")
        for char in ("\t", "\n", "\r"):
            spaced = spaced.replace(char, " ")
        for entry_id in {entry_id for _, (entry_id, _) in automaton.iter(spaced)}:
            counts[entry_id] += 1
    return counts


def spark_counts(spark, root: Path, captions: list[str], entries_file: Path, mode: str) -> Counter:
    path = root / "captions.parquet"
    if not path.exists():
        n = len(captions)
        pq.write_table(
            pa.table(
                {
                    "uid": [f"{i:032x}" for i in range(n)],
                    "clip_score": pa.array(np.zeros(n, np.float32)),
                    "caption": captions,
                }
            ),
            path,
        )
    digest = read_entry_list(entries_file, mode).digest
    fn = functools.partial(match_batches, path=str(entries_file), digest=digest, mode=mode)
    matched = map_batches(spark.read.parquet(str(path)).repartition(4), fn, MATCHED)
    rows = matched.select(F.explode("entry_ids").alias("e")).groupBy("e").count().collect()
    return Counter({r["e"]: r["count"] for r in rows})


def metaclip_part(spark, root: Path, captions: int, entries: int) -> None:
    texts, names = metaclip_data(captions, entries, 5)
    entries_file = root / "metadata.txt"
    entries_file.write_text("\n".join(names) + "\n")
    expected = reference_counts(texts, names)
    got = spark_counts(spark, root, texts, entries_file, "metaclip")
    ours_counts = np.array([got.get(i, 0) for i in range(len(names))])
    print(
        f"metaclip matching, {captions:,} captions x {len(names):,} entries: reference "
        f"{int(expected.sum()):,} (caption, entry) matches, ours (metaclip mode) "
        f"{int(ours_counts.sum()):,}; per-entry counts equal for "
        f"{int((ours_counts == expected).sum()):,} of {len(names):,} entries"
    )
    folded = spark_counts(spark, root, texts, entries_file, "casefold")
    casefold_entries = read_entry_list(entries_file, "casefold").entries
    print(
        f"casefold mode on the same captions: {sum(folded.values()):,} matches over "
        f"{len(casefold_entries):,} merged entries"
    )


def text_based_part(captions: int) -> None:
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
    except (ImportError, LookupError, OSError) as exc:
        print(f"text-based: skipped, no nltk WordNet here ({type(exc).__name__}); set NLTK_DATA")
        return
    from pipeline.select.wordnet_senses import load_table, synset_matcher

    table = load_table()
    rng = np.random.default_rng(9)
    lemmas = [w for d in table.lemmas.values() for w in d if "_" not in w]
    endings = ("", "", "", "s", "es", "ed", "ing", "'s", ",", ".", "!")
    texts = []
    for _ in range(captions):
        k = int(rng.integers(3, 12))
        texts.append(
            " ".join(
                (lemmas[int(rng.integers(len(lemmas)))] + endings[int(rng.integers(len(endings)))])
                for _ in range(k)
            )
        )
    in21k = _in21k_offsets()
    if in21k is None:
        print("text-based: skipped, no ImageNet-21k synset list (timm) to run the reference")
        return

    def reference(text: str) -> bool:
        for word in text.split():
            synsets = wordnet.synsets(word)
            if synsets and synsets[0].offset() in in21k:
                return True
        return False

    ref_s, expected = timed(lambda: [reference(t) for t in texts])
    matcher = synset_matcher()
    ours_s, got = timed(lambda: [matcher.names_a_synset(t) for t in texts])
    print(
        f"datacomp text-based, {captions:,} captions: reference keeps {sum(expected):,}, ours "
        f"{sum(got):,}, both {sum(a and b for a, b in zip(expected, got, strict=True)):,}, disagree "
        f"{sum(a != b for a, b in zip(expected, got, strict=True)):,}"
    )
    report_rate("text_based_reference_nltk_1proc", captions, ref_s, "captions/s")
    report_rate("text_based_datacomp_table_1proc", captions, ours_s, "captions/s")


def _in21k_offsets() -> set[int] | None:
    try:
        import timm
    except ImportError:
        return None
    path = Path(timm.__file__).parent / "data" / "_info" / "imagenet21k_goog_synsets.txt"
    return {int(x.strip()[1:]) for x in path.read_text().splitlines() if x.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=parse_count, default=100_000)
    parser.add_argument("--captions", type=parse_count, default=150_000)
    parser.add_argument("--entries", type=parse_count, default=4_600)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    setup_logging()
    config = load_config()
    spark = get_spark(dataclasses.replace(config.spark, local_cores=str(args.cores)))
    poller = MemoryPoller()
    root = Path(tempfile.mkdtemp(prefix="bench_conformance_"))
    try:
        print(f"Spark local[{args.cores}]; load average {os.getloadavg()}")
        top_fraction_part(spark, root, args.rows)
        cut_cost(spark, root, args.rows // 10, poller)  # warm-up, also reported
        small = cut_cost(spark, root, args.rows, poller)
        big = cut_cost(spark, root, args.rows * 10, poller)
        for rule in small:
            report_ratio(f"cut_{rule}_growth_10x", big[rule] / small[rule], "<=", 12)
        report_ratio("cut_reference_vs_interpolated_10x", big["reference"] / big["interpolated"])
        metaclip_part(spark, root, args.captions, args.entries)
        text_based_part(args.captions // 3 * 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        spark.stop()


if __name__ == "__main__":
    main()
