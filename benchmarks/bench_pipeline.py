"""Every stage of a run, ingest to shard and the report, at two sizes 10x apart.

For each size a synthetic web (the demo's: `pipeline.demo.synthetic_web`, its noise mix and
long-tailed classes) is generated and served from 127.0.0.1, and the stages run one at a time in
one run directory with the default config, the demo's network allowance and its micro CLIP model
(`curate-micro-vit`, random weights: scoring costs what a trained one costs; ViT-B/32's cost is
`make bench-clip`'s). Per stage: wall seconds, core-seconds (the machine's busy CPU time from
/proc/stat over the stage, the loopback server's share included), core-seconds per million input
pairs, peak RSS of the driver python, the JVM (driver and executors: Spark runs in local mode)
and the python workers (Spark's and the download processes), and the growth from one size to
the next (target <= 12x a stage). Then a projection, not a measurement, to 2B pairs on 100 nodes
of 16 cores from the larger size's core-seconds per pair.

Run with `make bench-pipeline` (20k and 200k pairs); quick: `BENCH_ARGS="--sizes 2000,20000"`.
Generating the web (drawing its pictures) is timed apart: it is not a stage. A small unreported
case runs first (`--warmup`), so that Spark's start and the models' first load (paid once a
process) fall in no stage. The driver's peak is the process's RSS during the stage, which holds
what earlier stages left allocated.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_dedup import MemoryPoller, mib, parse_count
from benchmarks.common import report_ratio, timed
from pipeline.config import load_config
from pipeline.demo.run_demo import DEMO_CLASS_TAIL, DEMO_MIX, demo_config, serve_web
from pipeline.demo.synthetic_web import generate_web, write_input_parquet
from pipeline.logs import setup_logging
from pipeline.report.stage import run_report
from pipeline.run_dir import RunDir
from pipeline.runner import run_stages

log = logging.getLogger("benchmarks.bench_pipeline")
STAGES = ("ingest", "preselect", "download", "annotate", "dedup", "select", "balance", "shard")
SETTINGS = ["clip.model=curate-micro-vit", "clip.pretrained=", "clip.top_fraction=0.6"]
PROJECT_PAIRS = 2_000_000_000
PROJECT_CORES = 100 * 16


def busy_seconds() -> float:
    """CPU seconds the machine has spent busy (all cores, everything but idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / 100.0  # USER_HZ


@dataclass
class StageCost:
    seconds: float
    core_seconds: float
    rows_in: int
    rows_kept: int
    memory: dict = field(default_factory=dict)


def run_size(n: int, root: Path, poller: MemoryPoller, seed: int) -> tuple[float, dict]:
    """(seconds to generate the web, {stage: StageCost}) for a web of n pairs."""
    web_s, web = timed(
        lambda: generate_web(
            root / "web", n_pairs=n, seed=seed, mix=DEMO_MIX, class_tail=DEMO_CLASS_TAIL
        )
    )
    config = demo_config(load_config(None, SETTINGS))
    run = RunDir(root / "run")
    costs: dict[str, StageCost] = {}
    with serve_web(web.files_dir, port=0) as server:
        source = str(write_input_parquet(web, server.base_url, root / "input.parquet"))
        for name in (*STAGES, "report"):
            log.info("n=%s: %s", f"{n:,}", name)
            poller.reset()
            busy, start = busy_seconds(), time.perf_counter()
            if name == "report":
                run_report(run.root, config)
            else:
                run_stages(run.root, config, source, [name])
            seconds = time.perf_counter() - start
            entry = run.stats()["stages"].get(name, {})
            costs[name] = StageCost(
                seconds,
                busy_seconds() - busy,
                entry.get("rows_in", 0),
                entry.get("rows_kept", 0),
                poller.read(),
            )
    return web_s, costs


def report(n: int, web_s: float, costs: dict[str, StageCost]) -> None:
    print(f"size {n:,} pairs: web generated in {web_s:.1f} s (not a stage)")
    print(
        f"  {'stage':<10} {'rows in':>9} {'kept':>9} {'seconds':>8} {'core-s':>8} "
        f"{'core-s/M pairs':>14} {'driver':>9} {'JVM':>9} {'workers':>9}"
    )
    for name, c in costs.items():
        m = c.memory
        print(
            f"  {name:<10} {c.rows_in:>9,} {c.rows_kept:>9,} {c.seconds:>8.1f} "
            f"{c.core_seconds:>8.1f} {c.core_seconds / n * 1e6:>14,.0f} "
            f"{mib(m.get('driver', 0)):>9} {mib(m.get('jvm', 0)):>9} {mib(m.get('workers', 0)):>9}"
        )
    total = sum(c.seconds for c in costs.values())
    cores = sum(c.core_seconds for c in costs.values())
    print(f"  {'all':<10} {'':>9} {'':>9} {total:>8.1f} {cores:>8.1f} {cores / n * 1e6:>14,.0f}")


def project(n: int, costs: dict[str, StageCost]) -> None:
    print(
        f"PROJECTION (not measured) to {PROJECT_PAIRS:,} pairs on 100 nodes x 16 cores, "
        f"linear from the {n:,}-pair case's core-seconds a pair, perfect scaling assumed; "
        "download counts CPU only (a real web adds its latency and bandwidth):"
    )
    for name, c in costs.items():
        core_h = c.core_seconds / n * PROJECT_PAIRS / 3600
        print(f"  {name:<10} {core_h:>10,.0f} core-h -> {core_h * 60 / PROJECT_CORES:>8,.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000", help="pairs per case, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="", help="where the webs and runs go (default: tmp)")
    parser.add_argument(
        "--warmup",
        type=parse_count,
        default=200,
        help="pairs of an unreported first case that starts Spark and loads the models (0: none)",
    )
    args = parser.parse_args()
    setup_logging()
    sizes = sorted(parse_count(s) for s in args.sizes.split(","))
    poller = MemoryPoller()
    results: dict[int, dict[str, StageCost]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=args.work_dir or None) as tmp:
        if args.warmup:
            # Spark's start and the models' first load are paid once a process, not a stage.
            log.info("warm-up case of %d pairs (not reported)", args.warmup)
            run_size(args.warmup, Path(tmp) / "warmup", poller, args.seed)
        for n in sizes:
            web_s, results[n] = run_size(n, Path(tmp) / str(n), poller, args.seed)
            report(n, web_s, results[n])
    for small, large in itertools.pairwise(sizes):
        if large != 10 * small:
            continue
        for name in results[small]:
            a, b = results[small][name], results[large][name]
            growth = b.core_seconds / max(a.core_seconds, 1e-9)
            report_ratio(f"pipeline_growth_10x_{name}", growth, "<=", 12)
            if a.rows_in and b.rows_in:
                # The web's make-up is not the same at every size (ingest's caption-frequency
                # rule drops more repeats of a larger web): growth per row the stage read.
                rows = b.rows_in / a.rows_in
                print(
                    f"  {name}: rows in grew {rows:.2f}x, core-seconds a row {growth / rows:.2f}x"
                )
        total = sum(c.core_seconds for c in results[large].values()) / sum(
            c.core_seconds for c in results[small].values()
        )
        report_ratio("pipeline_growth_10x", total, "<=", 12)
        wall = sum(c.seconds for c in results[large].values())
        report_ratio("pipeline_minutes_large", wall / 60, "<=", 40)
    project(sizes[-1], results[sizes[-1]])


if __name__ == "__main__":
    main()
