"""robots.txt cache of a download process: the memory its parsed rules hold and the cost of a
check, for a typical file (1.5 KiB: 60 rules in three groups) and a large one (50 KiB, 2,000
rules), at two origin counts 10x apart (5,000 and 50,000; 200 and 2,000), with the cache's caps in force (MAX_CACHED_ORIGINS,
MAX_CACHED_ROBOTS_BYTES): the memory must stay bounded, not grow with the origins. Also the
memory one origin's parsed rules take with no cap (the factor the byte cap is sized by).

The rules are read from the run's shared folder (pre-written here, as another process would have
left them), so nothing is fetched: this measures what a process keeps, not the network.
Memory is tracemalloc's (Protego and the cache are pure Python: every byte is counted).

Run with `make bench-robots`.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import tracemalloc
from pathlib import Path

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.download import robots
from pipeline.download.robots import RobotsCache, RobotsRules, shared_entry

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
        shared_entry(folder, origin).write_text(RobotsRules(origin, "parsed", body).to_json())


def _fill(cache: RobotsCache, names: list[str]) -> None:
    """Ask for every origin once, keeping nothing of the answers (only the cache holds them)."""
    for origin in names:
        cache.rules(origin, AGENT)


def measure(origins: int, rules: int, work: Path, capped: bool = True) -> tuple[float, float]:
    """(MiB kept after filling the cache with `origins` origins, checks per second on recently
    used origins); prints the fill rate (each origin read from the shared folder and parsed: the
    cost of a miss)."""
    folder = work / f"shared_{origins}_{rules}_{capped}"
    folder.mkdir()
    names = [f"http://host{i}.example" for i in range(origins)]
    body = robots_body(rules)
    _write_shared(folder, names, body)
    saved = robots.MAX_CACHED_ORIGINS, robots.MAX_CACHED_ROBOTS_BYTES
    if not capped:
        robots.MAX_CACHED_ORIGINS = robots.MAX_CACHED_ROBOTS_BYTES = 1 << 62
    try:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        # No opener: every origin's file is already in the shared folder, so none is fetched.
        cache = RobotsCache(str(folder), opener=None, timeout=1.0, deadline=1.0)  # type: ignore[arg-type]
        fill, _ = timed(lambda: _fill(cache, names))
        kept = (tracemalloc.get_traced_memory()[0] - base) / 2**20
        tracemalloc.stop()
    finally:
        robots.MAX_CACHED_ORIGINS, robots.MAX_CACHED_ROBOTS_BYTES = saved
    recent = names[-20:]
    urls = [f"{recent[i % len(recent)]}/private/{i % 7}/x.jpg" for i in range(20_000)]
    check, allowed = timed(lambda: sum(cache.allows(u, AGENT)[0] for u in urls))
    assert allowed < len(urls), "the rules did not apply"
    print(
        f"{origins:,} origins of {len(body.encode()) / 1024:.1f} KiB ({rules} rules), "
        f"{'capped' if capped else 'no cap'}: {kept:.1f} MiB kept "
        f"({kept * 1024 / origins:.1f} KiB an origin filled), {len(cache._parsers):,} held"
    )
    report_rate(f"robots_fill_{origins}_{rules}", origins, fill, "origins/s")
    return kept, report_rate(f"robots_check_{origins}_{rules}", len(urls), check, "checks/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--typical", default="5000,50000", help="origin counts, 60-rule files")
    parser.add_argument("--large", default="200,2000", help="origin counts, 2,000-rule files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-robots-"))
    for rules, counts in ((60, args.typical), (2000, args.large)):
        measure(200, rules, work, capped=False)
        sizes = sorted(int(x) for x in counts.split(","))
        figures = {n: measure(n, rules, work) for n in sizes}
        if len(sizes) == 2:
            small, large = sizes
            # Bounded: 10x the origins keeps no more memory, and checks stay as fast.
            report_ratio(
                f"robots_memory_{rules}_rules_10x_origins",
                figures[large][0] / figures[small][0],
                "<=",
                1.2,
            )
            report_ratio(
                f"robots_check_rate_{rules}_rules_10x_origins",
                figures[large][1] / figures[small][1],
                ">=",
                0.8,
            )


if __name__ == "__main__":
    main()
