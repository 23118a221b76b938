"""robots.txt cache of a download process: the memory its parsed rules hold and the cost of a
check, at two origin counts 10x apart (the per-process cap, MAX_CACHED_ORIGINS, is the larger by
default), for a typical file (a few KiB: about 60 rules in three groups) and a large one.

The rules are read from the run's shared folder (pre-written here, as another process would have
left them), so nothing is fetched: this measures what a process keeps, not the network.
Memory is tracemalloc's (Protego and the cache are pure Python: every byte is counted).

Run with `make bench-robots` (BENCH_ARGS="--origins 5000,50000").
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import tempfile
import tracemalloc
from pathlib import Path

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.download.robots import RobotsCache, RobotsRules

AGENT = "img2dataset"


def robots_body(rules: int) -> str:
    """A robots.txt of three groups (a named crawler, ours, everyone) with `rules` paths."""
    lines = ["User-agent: Googlebot", "Disallow: /search", "", f"User-agent: {AGENT}"]
    lines += [f"Disallow: /private/{i}/" for i in range(rules // 2)]
    lines += ["", "User-agent: *"]
    lines += [f"Disallow: /*/tmp{i}/*.php$" for i in range(rules - rules // 2)]
    lines += ["Allow: /images/", "Sitemap: https://example.com/sitemap.xml"]
    return "\n".join(lines) + "\n"


def _write_shared(folder: Path, origins: list[str], body: str) -> None:
    for origin in origins:
        name = hashlib.sha256(origin.encode()).hexdigest()[:32]
        (folder / f"{name}.json").write_text(RobotsRules(origin, "parsed", body).to_json())


def measure(origins: int, rules: int, work: Path) -> tuple[float, float, float]:
    """(KiB kept per origin, origins filled per second, checks per second on cached origins)."""
    folder = work / f"shared_{origins}_{rules}"
    folder.mkdir()
    names = [f"http://host{i}.example" for i in range(origins)]
    body = robots_body(rules)
    _write_shared(folder, names, body)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    # No opener: every origin's file is already in the shared folder, so none is fetched.
    cache = RobotsCache(str(folder), opener=None, timeout=1.0, deadline=1.0)  # type: ignore[arg-type]
    fill, _ = timed(lambda: [cache.rules(o, AGENT) for o in names])
    kept = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    urls = [f"{names[i % origins]}/private/{i % 7}/x.jpg" for i in range(100_000)]
    check, allowed = timed(lambda: sum(cache.allows(u, AGENT)[0] for u in urls))
    assert allowed < len(urls), "the rules did not apply"
    print(
        f"{origins:,} origins, {len(body.encode()) / 1024:.1f} KiB robots.txt ({rules} rules): "
        f"{kept / 2**20:.1f} MiB kept, {kept / origins / 1024:.2f} KiB an origin"
    )
    return (
        kept / origins / 1024,
        report_rate(f"robots_fill_{origins}_{rules}", origins, fill, "origins/s"),
        report_rate(f"robots_check_{origins}_{rules}", len(urls), check, "checks/s"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--origins", default="5000,50000")
    parser.add_argument("--rules", default="60,2000", help="rules per file: typical, large")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(x) for x in args.origins.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-robots-"))
    for rules in (int(x) for x in args.rules.split(",")):
        figures = {n: measure(n, rules, work) for n in sizes}
        if len(sizes) == 2:
            small, large = sorted(sizes)
            # Linear memory: the same per origin at both sizes; checks as fast at either size.
            report_ratio(
                f"robots_memory_per_origin_{rules}_rules_large_vs_small",
                figures[large][0] / figures[small][0],
                "<=",
                1.2,
            )
            report_ratio(
                f"robots_check_rate_{rules}_rules_large_vs_small",
                figures[large][2] / figures[small][2],
                ">=",
                0.8,
            )


if __name__ == "__main__":
    main()
