"""Balance matching at scale: the Aho-Corasick automaton in Spark (`mapInArrow`, one automaton per
Python worker) against a plain Python loop over the same entries, at 100k entries and 1M captions.

The mix (`make_entries`, `write_captions`), seeded: a vocabulary of VOCABULARY made-up words with
Zipf popularity (exponent ZIPF); 100k entries, 70 % single words (the most popular first, as a
concept list names common things, but for the STOP_WORDS most popular) and 30 % bigrams of popular words; captions of 6 to 14 words
drawn by popularity, so some entries match a large share of the captions (head) and most rarely
(tail). Stored as the balance stage reads them: selection/ (uid, clip_score) and candidates/
(uid, caption) parquet.

Measured, for 100k and 1M captions (`--sizes`), each pass forced by Spark's noop sink:
- `automaton`: `match_batches` in `mapInArrow` over the captions alone (the automaton in Spark,
  in MetaCLIP's matching mode, the stage's default); captions/s;
- `automaton_casefold`: the same in casefold mode (the matching before entry_match.mode); both
  automaton passes run twice, interleaved, and report their faster run;
- `match`: the stage's matching pass (the caption join, then `match_batches`); captions/s;
- `stage`: the whole plan (`pipeline.balance.plan.decide`: matching, the count table, the
  decision pass and the figures), forced the same way; captions/s;
- peak RSS of the driver python, the JVM and the python workers; shuffle bytes;
then, on the same captions: the automaton in one process (`EntryMatcher.match_many`, no Spark) on
AUTOMATON_SAMPLE captions, and the plain loop `for entry in entries: if f" {entry} " in text`
(entries padded once, text spaced as MetaCLIP's matcher does) on LOOP_SAMPLE captions: at 100k
entries it costs milliseconds a caption, so its time for 1M captions is EXTRAPOLATED from that
sample and printed as such. Both must find exactly the automaton's matches on the sample.

Ratios: `balance_metaclip_vs_casefold` (the automaton pass in metaclip mode over casefold mode,
in Spark on the largest case; target >= 0.9), `balance_automaton_spark_vs_python_loop` (the automaton in Spark on all cores vs the
loop on one, as a user would run it; target >= 100), `balance_automaton_spark_vs_1proc` (Spark on
all cores over the bare automaton in one process; reported), `balance_stage_vs_python_loop` (the
whole plan vs the loop; reported), `balance_growth_10x` (stage cost at 10x the captions; target
<= 12: at 100k -> 1M Spark's fixed cost per job still shows, `--sizes 1e6,1e7` is the linearity
check), and a PROJECTION to 2B captions on 100 nodes x 16 cores from the measured per-core rate.
The machine is shared: the load average before each case is printed.

Run with `make bench-balance`; quick: `--sizes 2e4,1e5 --loop-sample 200`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from benchmarks.bench_dedup import (
    MemoryPoller,
    mib,
    parse_count,
    shuffle_between,
    snapshot_or_none,
    stage_snapshot,
)
from benchmarks.common import report_rate, report_ratio, timed
from pipeline.balance.decide import MATCHED, match_batches
from pipeline.balance.plan import decide
from pipeline.config import load_config
from pipeline.entry_match import EntryMatcher, metaclip_spacing, read_entry_list
from pipeline.logs import setup_logging
from pipeline.spark.arrow import map_batches
from pipeline.spark.session import get_spark

log = logging.getLogger("benchmarks.bench_balance")

VOCABULARY = 150_000  # made-up words
ZIPF = 1.05  # word popularity ~ 1 / rank^ZIPF
BIGRAM_SHARE = 0.3
STOP_WORDS = 50  # the most popular words, in no entry
WORDS_PER_CAPTION = (6, 14)
CHUNK = 100_000  # captions generated and written at a time
AUTOMATON_SAMPLE = 100_000
LOOP_SAMPLE = 1_000
# The 2B-row projection's cluster.
NODES, CORES_PER_NODE, PROJECTED_ROWS = 100, 16, 2_000_000_000


def make_vocabulary(n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct lowercase made-up words of 3 to 10 letters."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: dict[str, None] = {}
    while len(words) < n:
        lengths = rng.integers(3, 11, n)
        for length in lengths:
            words.setdefault("".join(rng.choice(letters, length)), None)
            if len(words) == n:
                break
    return list(words)


def popularity(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** ZIPF
    return weights / weights.sum()


def make_entries(vocabulary: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """`n` entries: single words in popularity order, and bigrams of popular words."""
    bigrams = int(n * BIGRAM_SHARE)
    # The most popular words play the stop words ("a", "of", "the") that no list names.
    unigrams = vocabulary[STOP_WORDS : STOP_WORDS + n - bigrams]
    entries: dict[str, None] = dict.fromkeys(unigrams)
    top = len(vocabulary) // 10
    while len(entries) < n:
        a, b = rng.integers(0, top, 2)
        if a != b:
            entries.setdefault(f"{vocabulary[a]} {vocabulary[b]}", None)
    return list(entries)


@dataclasses.dataclass
class Mix:
    root: Path
    rows: int
    sample: list[str]  # the first captions, for the single-process runs


def write_captions(root: Path, rows: int, vocabulary: list[str], seed: int, sample: int) -> Mix:
    """selection/ and candidates/ parquet of `rows` captions, in chunks."""
    rng = np.random.default_rng(seed)
    words = np.array(vocabulary)
    cdf = np.cumsum(popularity(len(vocabulary)))
    kept_sample: list[str] = []
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        lengths = rng.integers(WORDS_PER_CAPTION[0], WORDS_PER_CAPTION[1] + 1, n)
        drawn = words[np.minimum(np.searchsorted(cdf, rng.random(lengths.sum())), len(cdf) - 1)]
        ends = np.cumsum(lengths)
        captions = [" ".join(drawn[e - k : e]) for e, k in zip(ends, lengths, strict=True)]
        uids = [f"{seed:08x}{i:024x}" for i in range(start, start + n)]
        scores = rng.random(n).astype(np.float32)
        pq.write_table(
            pa.table({"uid": uids, "clip_score": scores}),
            root / "selection" / f"part-{start // CHUNK:05d}.parquet",
        )
        pq.write_table(
            pa.table({"uid": uids, "caption": captions}),
            root / "candidates" / f"part-{start // CHUNK:05d}.parquet",
        )
        if len(kept_sample) < sample:
            kept_sample += captions[: sample - len(kept_sample)]
    return Mix(root, rows, kept_sample)


def plain_loop(entries: list[str], captions: list[str]) -> list[list[int]]:
    """The baseline: every entry tested against every caption (entries padded once)."""
    padded = [f" {e} " for e in entries]
    out = []
    for caption in captions:
        text = metaclip_spacing(caption)
        out.append([i for i, entry in enumerate(padded) if entry in text])
    return out


PASSES = ("automaton", "automaton_casefold", "match", "stage")


def measure(spark, mix: Mix, entries_file: Path, poller: MemoryPoller) -> dict[str, Any]:
    """Seconds, peak memory and shuffle bytes of each pass on `mix` (PASSES): the automaton over
    the captions alone, the stage's matching pass (with the caption join), the whole plan."""
    config = load_config(None, [f"balance.entries={entries_file}"])
    path = str(entries_file.resolve())
    digest = read_entry_list(path, "metaclip").digest
    selection = spark.read.parquet(str(mix.root / "selection"))
    candidates = spark.read.parquet(str(mix.root / "candidates"))
    fn = functools.partial(match_batches, path=path, digest=digest, mode="metaclip")
    casefold = functools.partial(match_batches, path=path, digest=digest, mode="casefold")
    out: dict[str, Any] = {"load": os.getloadavg()[0]}

    def automaton(batch_fn=fn) -> None:
        frame = candidates.select("uid", F.lit(0.0).cast("float").alias("clip_score"), "caption")
        map_batches(frame, batch_fn, MATCHED).write.format("noop").mode("overwrite").save()

    def automaton_casefold() -> None:
        automaton(casefold)

    def match() -> None:
        pool = selection.join(candidates, "uid", "left")
        map_batches(pool, fn, MATCHED).write.format("noop").mode("overwrite").save()

    def whole() -> dict:
        decisions = decide({"select": selection, "candidates": candidates}, config)
        decisions.frame.write.format("noop").mode("overwrite").save()
        return decisions.figures

    # The two automaton passes run twice, interleaved, and keep their faster time: the first
    # pass over fresh files pays for reading them, whichever mode it is.
    runs = (automaton, automaton_casefold, automaton, automaton_casefold, match, whole)
    names = (*PASSES[:2], *PASSES)
    for name, run in zip(names, runs, strict=True):
        poller.reset()
        spark.catalog.clearCache()
        before = snapshot_or_none(spark)
        seconds, result = timed(run)
        out[f"{name}_s"] = min(seconds, out.get(f"{name}_s", seconds))
        spark.catalog.clearCache()
        if before is not None:
            out[f"{name}_shuffle"] = shuffle_between(before, stage_snapshot(spark))[0]
        out[f"{name}_mem"] = poller.read()
        if result is not None:
            out["figures"] = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1e5,1e6", help="captions per case, comma-separated")
    parser.add_argument("--entries", type=parse_count, default=100_000)
    parser.add_argument("--loop-sample", type=parse_count, default=LOOP_SAMPLE)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", default=None, help="where to write the mixes (default: $TMPDIR)")
    args = parser.parse_args()
    setup_logging()
    sizes = sorted(parse_count(s) for s in args.sizes.split(","))
    config = load_config()
    spark_cfg = dataclasses.replace(
        config.spark, local_cores=str(args.cores), driver_memory=args.driver_memory
    )
    spark = get_spark(spark_cfg)
    cores = spark.sparkContext.defaultParallelism
    print(
        f"Spark local[{args.cores}], {spark_cfg.shuffle_partitions} shuffle partitions, driver "
        f"memory {args.driver_memory}; load average {os.getloadavg()}"
    )
    poller = MemoryPoller()
    root = Path(tempfile.mkdtemp(prefix="bench_balance_", dir=args.tmp))
    try:
        rng = np.random.default_rng(args.seed)
        vocabulary = make_vocabulary(VOCABULARY, rng)
        entries = make_entries(vocabulary, args.entries, rng)
        entries_file = root / "entries.txt"
        entries_file.write_text("\n".join(entries) + "\n")
        build_s, matcher = timed(lambda: EntryMatcher(entries, "metaclip"))
        print(
            f"entries: {len(entries):,} ({int(len(entries) * BIGRAM_SHARE):,} bigrams) over a "
            f"vocabulary of {VOCABULARY:,} words (Zipf {ZIPF}); automaton built in {build_s:.2f} s"
        )
        # Warm-up (JVM, Python workers, their automata), not reported.
        (root / "warm" / "selection").mkdir(parents=True)
        (root / "warm" / "candidates").mkdir(parents=True)
        measure(
            spark, write_captions(root / "warm", 5_000, vocabulary, 99, 0), entries_file, poller
        )
        stage_seconds: dict[int, float] = {}
        largest: tuple[Mix, dict] | None = None
        for n in sizes:
            (root / f"n{n}" / "selection").mkdir(parents=True)
            (root / f"n{n}" / "candidates").mkdir(parents=True)
            gen_s, mix = timed(
                lambda n=n: write_captions(
                    root / f"n{n}", n, vocabulary, args.seed + 1, AUTOMATON_SAMPLE
                )
            )
            print(f"captions n={n:,}: generated and written in {gen_s:.1f} s")
            case = measure(spark, mix, entries_file, poller)
            figures = case["figures"]
            dist = figures["distribution"]
            print(
                f"case n={n:,}: {figures['matched_share']:.1%} of captions match an entry, "
                f"{figures['matched_entries']:,} entries matched, t = {figures['t']} "
                f"({figures['t_rule']}), {figures['head_entries']:,} head entries holding "
                f"{dist['head']['matches_before']:,} matches ({dist['head']['matches_after']:,} "
                f"after); top entry {dist['top'][0]['entry']!r} {dist['top'][0]['before']:,}"
            )
            print(f"load average before case n={n:,}: {case['load']:.1f} (2 cores)")
            for tag in PASSES:
                report_rate(f"balance_{tag}_spark_{n:.0e}", n, case[f"{tag}_s"], "captions/s")
            for tag in PASSES:
                m = case[f"{tag}_mem"]
                shuffle = case.get(f"{tag}_shuffle")
                print(
                    f"memory {tag} n={n:,} (peak RSS): driver python {mib(m.get('driver', 0))}, "
                    f"JVM {mib(m.get('jvm', 0))}, python workers {mib(m.get('workers', 0))}; "
                    f"shuffle written "
                    f"{'n/a' if shuffle is None else mib(shuffle)}"
                )
            stage_seconds[n] = case["stage_s"]
            largest = (mix, case)

        assert largest is not None
        mix, case = largest
        auto_n = min(AUTOMATON_SAMPLE, len(mix.sample))
        auto_s, auto_ids = timed(lambda: matcher.match_many(mix.sample[:auto_n]))
        auto_rate = report_rate("balance_automaton_1proc", auto_n, auto_s, "captions/s")
        loop_n = min(args.loop_sample, auto_n)
        log.info("plain loop over %s entries on %s captions", f"{len(entries):,}", loop_n)
        loop_s, loop_ids = timed(lambda: plain_loop(entries, mix.sample[:loop_n]))
        assert loop_ids == auto_ids[:loop_n], "the plain loop and the automaton disagree"
        loop_rate = report_rate("balance_python_loop_1proc", loop_n, loop_s, "captions/s")
        print(
            f"plain loop at n={mix.rows:,}: {mix.rows / loop_rate:,.0f} s = "
            f"{mix.rows / loop_rate / 3600:.1f} h (EXTRAPOLATED from {loop_n:,} captions; "
            f"the same matches as the automaton on them)"
        )
        spark_rate = mix.rows / case["automaton_s"]
        report_ratio(
            "balance_metaclip_vs_casefold",
            case["automaton_casefold_s"] / case["automaton_s"],
            ">=",
            0.9,
        )
        report_ratio("balance_automaton_spark_vs_python_loop", spark_rate / loop_rate, ">=", 100)
        report_ratio("balance_automaton_spark_vs_1proc", spark_rate / auto_rate)
        report_ratio("balance_stage_vs_python_loop", mix.rows / case["stage_s"] / loop_rate)
        if len(sizes) > 1:
            small, big = sizes[0], sizes[-1]
            growth = stage_seconds[big] / stage_seconds[small]
            report_ratio(f"balance_growth_{big // small}x", growth, "<=", 1.2 * big / small)
        per_core = mix.rows / case["stage_s"] / cores
        projected = PROJECTED_ROWS / (per_core * NODES * CORES_PER_NODE)
        print(
            f"PROJECTION (not measured): the balance stage on {PROJECTED_ROWS:,} captions on "
            f"{NODES} nodes x {CORES_PER_NODE} cores at the measured {per_core:,.0f} "
            f"captions/s per core: {projected / 60:,.1f} min of matching and deciding, plus the "
            f"caption join's shuffle"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        spark.stop()


if __name__ == "__main__":
    main()
