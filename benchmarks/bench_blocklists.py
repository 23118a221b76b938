"""Blocklists at ingest: the hygiene pass over the same generated rows with and without
`ingest.blocklists` (URLs, their MD5 and SHA-256, domains), at two list sizes 10x apart, in one
process; plus each list's parse time and the memory its sets take (peak RSS growth).

Run with `make bench-blocklists` (BENCH_ARGS="--rows 200000 --entries 100000,1000000").
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import resource
import tempfile
from pathlib import Path

import pyarrow as pa

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.ingest import blocklists, hygiene
from pipeline.ingest.settings import IngestConfig

CAPTION = "a small red car parked on a quiet street"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batch(rows: int) -> pa.RecordBatch:
    urls = [f"http://img{i % 5000}.example.com/p/{i}.jpg" for i in range(rows)]
    return pa.record_batch(
        {
            hygiene.RAW_URL: urls,
            hygiene.RAW_CAPTION: [CAPTION] * rows,
            hygiene.SOURCE_FILE: ["in.parquet"] * rows,
            hygiene.SOURCE_ROW: pa.array(range(rows), pa.int64()),
        }
    )


def _write_list(path: Path, entries: int, rows: int) -> None:
    """A quarter each: URLs, MD5s and SHA-256s of URLs (a few of them in the input), and
    domains (none in it): most lookups miss, as they do on a real crawl."""
    lines = []
    for i in range(entries):
        url = f"http://img{i % 5000}.example.com/p/{i * 97 % (rows * 100)}.jpg"
        kind = i % 4
        if kind == 0:
            lines.append(url)
        elif kind == 1:
            lines.append(hashlib.md5(url.encode()).hexdigest())
        elif kind == 2:
            lines.append(hashlib.sha256(url.encode()).hexdigest())
        else:
            lines.append(f"blocked{i}.example.org")
    path.write_text("\n".join(lines) + "\n")


def _best(fn, repeats: int = 3):  # type: ignore[no-untyped-def]
    """The fastest of `repeats` calls (seconds, result): the figures of a quiet moment."""
    runs = [timed(fn) for _ in range(repeats)]
    return min(runs, key=lambda run: run[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--entries", default="100000,1000000")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    batch = _batch(args.rows)
    base = IngestConfig()
    bare = _best(lambda: hygiene.apply_hygiene(batch, base, pa.schema([]), with_tokens=False))[0]
    bare_rate = report_rate("hygiene_without_lists", args.rows, bare)
    work = Path(tempfile.mkdtemp(prefix="bench-blocklists-"))
    rates = {}
    for entries in (int(e) for e in args.entries.split(",")):
        path = work / f"list_{entries}.txt"
        _write_list(path, entries, args.rows)
        before = _rss_mib()
        parse, loaded = timed(lambda path=path: blocklists.load_blocklists([str(path)]))
        grown = _rss_mib() - before
        print(f"list {entries:,} entries: parsed in {parse:.2f} s, peak RSS +{grown:.0f} MiB")
        seconds, out = _best(
            lambda loaded=loaded: hygiene.apply_hygiene(
                batch, base, pa.schema([]), with_tokens=False, lists=loaded
            )
        )
        dropped = sum(r is not None for r in out.column("reason").to_pylist())
        print(f"  {dropped:,} of {args.rows:,} rows blocked")
        rates[entries] = report_rate(f"hygiene_with_{entries}_entries", args.rows, seconds)
        report_ratio(f"hygiene_with_{entries}_entries_vs_without", rates[entries] / bare_rate)
        del loaded
    if len(rates) == 2:
        small, large = sorted(rates)
        report_ratio("hygiene_rate_large_list_vs_small_list", rates[large] / rates[small])


if __name__ == "__main__":
    main()
