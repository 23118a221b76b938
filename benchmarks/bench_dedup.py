"""Near-duplicate search at scale: the planned block index (Spark shuffle on the planner's tables,
in-memory nested search) plus connected components, on 1M and 10M pHashes of a realistic mix.

The mix (`make_mix`): uniform random 64-bit hashes, near-duplicate families (hashes within
FAMILY_FLIPS bits of a centre: many small families and a few popular ones of POPULAR_SIZE), and
exact repeats (a tenth of the rows, half of them of the family centres), shuffled. Its make-up is
the same at every size, so cost growth between sizes is the index's own.

For every size and radius (dedup.max_distance, and 4) the timed part is what the dedup stage
does with the hashes: distinct, `near_pairs`, edges checkpointed, `connected_components`.
Reported: seconds, hashes/s, peak RSS of the driver python, the JVM and the python workers
(a thread polling /proc for this process's tree), and shuffle bytes and records (Spark's REST
API on the UI port, at 127.0.0.1). Then:

- the window-hash case (`--window-radii`, default dedup.max_distance): the same search on
  annotate's real mix, each image's full-frame pHash plus its 7 window hashes placed around it as
  a real photograph's are (benchmarks/window_mix.py, the measured distribution printed first), at
  the same sizes in distinct index rows; `ratio dedup_window_growth_10x` (target <= 12);
- `ratio dedup_growth_10x`: cost at 10x the hashes over cost at 1x (target <= 12);
- agreement: the index's pairs against exhaustive all-pairs comparison (blocked numpy XOR and
  popcount, independent of the index code) on a 200k-row sample of the mix: missing and extra
  must be 0;
- faiss `IndexBinaryMultiHash` at exact recall (k + 1 tables of 64 / (k + 1) bits, no flips) on
  the same 1M mix: seconds and pairs beside ours (skipped, and said so, without faiss);
- a projection, not a measurement, to 2B hashes on 100 nodes of 16 cores from the measured rates
  and the planner's plan at n = 2e9.

Run with `make bench-dedup` (1M and 10M); quick: `--sizes 1e5 --sample 2e4 --faiss-size 1e5`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.config import load_config
from pipeline.dedup.bands import plan_index
from pipeline.dedup.plan import near_pairs
from pipeline.logs import setup_logging
from pipeline.spark.components import connected_components
from pipeline.spark.session import get_spark

log = logging.getLogger("benchmarks.bench_dedup")

# The mix, as fractions of the rows.
REPEAT_SHARE = 0.10  # exact repeats of hashes already drawn
FAMILY_SHARE = 0.04  # members of small near-duplicate families
POPULAR_PER_MILLION = 2  # popular families per million rows ...
POPULAR_SIZE = 1_000  # ... of this many hashes each
FAMILY_MAX = 128  # small family sizes: log-uniform in [2, FAMILY_MAX]
FAMILY_FLIPS = 4  # members within this many bits of their centre
# The projection's cluster, and the assumptions beyond the measurement.
PROJECT_N = 2_000_000_000
PROJECT_NODES, PROJECT_CORES = 100, 16
NODE_NETWORK_BYTES_S = 1.25e9  # 10 Gbit/s a node, shuffle read over the network
POLL_S = 0.25


def parse_count(text: str) -> int:
    return int(float(text))


# --- the mix -------------------------------------------------------------------------------


def _flip(rng: np.random.Generator, centres: np.ndarray, max_flips: int) -> np.ndarray:
    """Each centre with 0 to max_flips random bits flipped (a repeated position flips back:
    the member is then nearer its centre)."""
    out = centres.copy()
    flips = rng.integers(0, max_flips + 1, len(out))
    for f in range(max_flips):
        bits = rng.integers(0, 64, len(out)).astype(np.uint64)
        out ^= np.where(flips > f, np.uint64(1) << bits, np.uint64(0))
    return out


def make_mix(n: int, seed: int = 0) -> tuple[np.ndarray, dict]:
    """n rows of signed 64-bit hashes (with repeats), and the make-up of the mix."""
    rng = np.random.default_rng(seed)
    n_repeat = int(n * REPEAT_SHARE)
    n_popular = max(1, round(n / 1e6 * POPULAR_PER_MILLION))
    n_family_rows = int(n * FAMILY_SHARE)
    sizes = np.exp(rng.uniform(math.log(2), math.log(FAMILY_MAX), n_family_rows)).astype(int)
    sizes = sizes[np.cumsum(sizes) <= n_family_rows]
    centres = rng.integers(0, 2**64 - 1, len(sizes) + n_popular, np.uint64, endpoint=True)
    members = np.concatenate(
        [
            np.repeat(centres[: len(sizes)], sizes),
            np.repeat(centres[len(sizes) :], POPULAR_SIZE),
        ]
    )
    families = _flip(rng, members, FAMILY_FLIPS)
    n_uniform = max(0, n - n_repeat - len(families))
    uniform = rng.integers(0, 2**64 - 1, n_uniform, np.uint64, endpoint=True)
    drawn = np.concatenate([uniform, families])
    # Repeats: half of them of the centres (popular pictures, Zipf-weighted), half of any hash.
    weights = 1.0 / np.arange(1, len(centres) + 1)
    popular = rng.choice(centres, n_repeat // 2, p=weights / weights.sum())
    anything = drawn[rng.integers(0, len(drawn), n_repeat - n_repeat // 2)]
    rows = np.concatenate([drawn, popular, anything])[:n]
    rng.shuffle(rows)
    makeup = {
        "rows": len(rows),
        "uniform": n_uniform,
        "families": len(sizes),
        "family_rows": int(sizes.sum()),
        "popular_families": n_popular,
        "popular_rows": n_popular * POPULAR_SIZE,
        "repeat_rows": n_repeat,
        "distinct": len(np.unique(rows)),
    }
    return rows.view(np.int64), makeup


# --- memory and shuffle --------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_and_name(pid: int) -> tuple[int, str]:
    rss, name = 0, ""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, name


class MemoryPoller:
    """Peak RSS of this process (the driver python), the JVM and the python workers (every
    other python under this process), each summed over its processes at a poll."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-poll", daemon=True)
        self._thread.start()

    def sample(self) -> dict[str, int]:
        me = os.getpid()
        tree, todo, now = _children(), [me], {"driver": 0, "jvm": 0, "workers": 0}
        while todo:
            pid = todo.pop()
            todo.extend(tree.get(pid, []))
            rss, name = _rss_and_name(pid)
            kind = "driver" if pid == me else "jvm" if name == "java" else "workers"
            if kind == "workers" and not name.startswith("python"):
                continue  # the launcher shells of spark-submit
            now[kind] += rss
        now["total"] = now["driver"] + now["jvm"] + now["workers"]
        return now

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            now = self.sample()
            with self._lock:
                for key, value in now.items():
                    self.peaks[key] = max(self.peaks.get(key, 0), value)

    def reset(self) -> None:
        with self._lock:
            self.peaks = {}

    def read(self) -> dict[str, int]:
        with self._lock:
            return dict(self.peaks)


def _api(spark, path: str):
    """GET the Spark UI's REST API, on loopback only."""
    sc = spark.sparkContext
    port = urlparse(sc.uiWebUrl or "").port
    if port is None:
        raise RuntimeError("Spark UI is off (spark.ui)")
    url = f"http://127.0.0.1:{port}/api/v1/applications/{sc.applicationId}/{path}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def stage_snapshot(spark) -> dict[tuple[int, int], tuple[int, int, int]]:
    """(stage, attempt) -> (shuffle write bytes, shuffle write records, shuffle read bytes) of
    every finished stage, once Spark's listener has caught up."""
    for _ in range(40):
        if not _api(spark, "stages?status=active"):
            break
        time.sleep(0.25)
    time.sleep(0.5)
    return {
        (s["stageId"], s["attemptId"]): (
            s.get("shuffleWriteBytes", 0),
            s.get("shuffleWriteRecords", 0),
            s.get("shuffleReadBytes", 0),
        )
        for s in _api(spark, "stages")
        if s["status"] in ("COMPLETE", "FAILED")
    }


def shuffle_between(before: dict, after: dict) -> tuple[int, int, int]:
    new = [v for key, v in after.items() if key not in before]
    return tuple(sum(v[i] for v in new) for i in range(3))  # type: ignore[return-value]


# --- one measured case ---------------------------------------------------------------------


@dataclass
class Case:
    n: int
    k: int
    distinct: int = 0
    pairs: int = 0
    search_s: float = 0.0
    components_s: float = 0.0
    rounds: int = 0
    clusters: int = 0
    search_shuffle: tuple = (0, 0, 0)
    components_shuffle: tuple = (0, 0, 0)
    memory: dict = field(default_factory=dict)
    load: float = 0.0  # the machine's 5-minute load average at the end (it may be shared)
    figures: dict = field(default_factory=dict)
    mix: str = ""  # "" for the plain mix, "windows " for the window-hash case

    @property
    def seconds(self) -> float:
        return self.search_s + self.components_s


def snapshot_or_none(spark):  # type: ignore[no-untyped-def]
    """`stage_snapshot`, or None (with a warning) when the UI is off or unreachable: the case is
    then reported without shuffle figures."""
    try:
        return stage_snapshot(spark)
    except Exception as exc:
        log.warning("no shuffle figures: %s", exc)
        return None


def mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def measure(spark, hashes: np.ndarray, k: int, cfg, poller: MemoryPoller, collect=False):
    """The dedup stage's search on these rows at radius k: distinct, near pairs, components."""
    cfg_k = dataclasses.replace(cfg, max_distance=k)
    # As a parquet input would come: a few partitions (from Arrow, one per 10,000-row batch).
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
    rows = spark.createDataFrame(pa.table({"node": hashes})).coalesce(partitions).localCheckpoint()
    rows.count()
    case = Case(n=len(hashes), k=k)
    before = snapshot_or_none(spark)
    poller.reset()
    start = time.perf_counter()
    nodes = rows.select("node").distinct()
    pairs, case.figures = near_pairs(nodes, None, cfg_k)
    edges = pairs.localCheckpoint()
    case.pairs = edges.count()
    case.search_s = time.perf_counter() - start
    middle = stage_snapshot(spark) if before is not None else None
    start = time.perf_counter()
    components, case.rounds = connected_components(edges, cfg.max_iterations)
    case.clusters = components.select("component").distinct().count()
    case.components_s = time.perf_counter() - start
    case.load = os.getloadavg()[1]
    case.memory = poller.read()
    if before is not None:
        after = stage_snapshot(spark)
        case.search_shuffle = shuffle_between(before, middle)
        case.components_shuffle = shuffle_between(middle, after)
    case.distinct = case.figures.get("hashes", 0)
    found = None
    if collect:
        table = edges.toArrow()
        found = np.stack([table["a"].to_numpy(), table["b"].to_numpy()], axis=1)
    rows.unpersist()
    return case, found


def case_name(case: Case) -> str:
    """The case in a ratio's name: dedup_1e6_k6, dedup_windows_1e7_k6."""
    mix = case.mix.strip() + "_" if case.mix else ""
    return f"{mix}{case.n:.0e}_k{case.k}".replace("+0", "")


def report_case(case: Case) -> None:
    name = f"dedup_{case_name(case)}"
    f = case.figures
    head = f"{case.mix}n={case.n:,} k={case.k}"
    print(
        f"case {head}: {case.distinct:,} distinct, {case.pairs:,} pairs, "
        f"{case.clusters:,} clusters, {case.rounds} component rounds; index "
        f"{f.get('index_tables')} tables of {f.get('index_key_bits')}+ bits, "
        f"{f.get('candidate_pairs', 0):,} candidates, largest bucket "
        f"{f.get('largest_bucket', 0):,}, oversized {f.get('oversized_buckets', 0)}"
    )
    print(
        f"time {head}: {case.seconds:.1f} s "
        f"(search {case.search_s:.1f} s, components {case.components_s:.1f} s; "
        f"5-min load average {case.load:.1f} on {os.cpu_count()} CPUs)"
    )
    report_rate(name, case.n, case.seconds, "hashes/s")
    m = case.memory
    print(
        f"memory {head} (peak RSS): driver python {mib(m.get('driver', 0))}, "
        f"JVM {mib(m.get('jvm', 0))}, python workers {mib(m.get('workers', 0))}, "
        f"all together {mib(m.get('total', 0))}"
    )
    (wb, wr, rb), (cwb, cwr, _) = case.search_shuffle, case.components_shuffle
    print(
        f"shuffle {head}: search writes {mib(wb)} in {wr:,} records "
        f"(planned index rows {f.get('planned_shuffle_rows', 0):,}), reads {mib(rb)}; "
        f"components write {mib(cwb)} in {cwr:,} records"
    )


def report_prediction(case: Case, cfg, local_cores: int) -> float:
    """The planner's expected core-seconds for this case against the search step's measured
    core-seconds (wall seconds x local cores); returns measured / planned."""
    plan = plan_index(case.distinct, case.k, cfg.max_bucket_size, local_cores)
    measured = case.search_s * local_cores
    ratio = measured / plan.expected_seconds
    print(
        f"planner {case.mix}n={case.n:,} k={case.k}: {plan.describe()}; measured "
        f"{measured:,.1f} "
        f"core-s (search {case.search_s:.1f} s x {local_cores} cores), {ratio:.2f}x planned"
    )
    # Within 1.5x either way: the cost model is calibrated where measured/planned is in
    # [1/1.5, 1.5].
    report_ratio(
        f"dedup_planner_error_{case_name(case)}",
        max(ratio, 1 / ratio),
        "<=",
        1.5,
    )
    return ratio


# --- exhaustive and faiss ------------------------------------------------------------------


def exhaustive_pairs(
    hashes: np.ndarray, k: int, rows: int = 512, cols: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), a < b, of every pair of distinct hashes within k bits, and their distances: XOR
    and popcount of every pair, in blocks of rows x cols (upper triangle only)."""
    values = np.unique(hashes)
    unsigned = values.view(np.uint64)
    n, out, dist = len(values), [], []
    for r in range(0, n, rows):
        x = unsigned[r : r + rows]
        for c in range(r, n, cols):
            distances = np.bitwise_count(x[:, None] ^ unsigned[None, c : c + cols])
            i, j = np.nonzero(distances <= k)
            keep = r + i < c + j
            i, j = i[keep], j[keep]
            out.append(np.stack([values[r + i], values[c + j]], axis=1))
            dist.append(distances[i, j])
    if not out:
        return np.empty((0, 2), np.int64), np.empty(0, np.uint8)
    return np.concatenate(out), np.concatenate(dist)


def _keys(pairs: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pairs, np.int64).view(np.dtype((np.void, 16))).ravel()


def compare(ours: np.ndarray, theirs: np.ndarray) -> tuple[int, int, int]:
    """(duplicates in ours, pairs of theirs we miss, pairs we have that they do not)."""
    mine = _keys(ours)
    unique = np.unique(mine)
    other = np.unique(_keys(theirs))
    return (
        len(mine) - len(unique),
        len(np.setdiff1d(other, unique, assume_unique=True)),
        len(np.setdiff1d(unique, other, assume_unique=True)),
    )


def faiss_pairs(hashes: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    """faiss IndexBinaryMultiHash at exact recall over the distinct hashes: (seconds to add,
    seconds of the range search of every hash against all, pairs a < b)."""
    import faiss

    values = np.unique(hashes)
    codes = values.view(np.uint8).reshape(-1, 8)
    index = faiss.IndexBinaryMultiHash(64, k + 1, 64 // (k + 1))
    add_s, _ = timed(lambda: index.add(codes))
    # Binary range search keeps distances < radius.
    search_s, (lims, _, found) = timed(lambda: index.range_search(codes, k + 1))
    query = np.repeat(np.arange(len(values)), np.diff(lims.astype(np.int64)))
    keep = found > query
    pairs = np.stack([values[query[keep]], values[found[keep]]], axis=1)
    return add_s, search_s, np.sort(pairs, axis=1)


# --- the projection ------------------------------------------------------------------------


def project(case: Case, cfg, local_cores: int) -> None:
    """2B hashes on PROJECT_NODES x PROJECT_CORES from this case's measured rates."""
    cores = PROJECT_NODES * PROJECT_CORES
    here = plan_index(case.distinct, case.k, cfg.max_bucket_size, 8)
    there = plan_index(PROJECT_N, case.k, cfg.max_bucket_size, cores)
    rows_written = case.search_shuffle[1] or here.shuffle_rows
    bytes_per_row = case.search_shuffle[0] / rows_written if case.search_shuffle[0] else 0.0
    search_core_s = case.search_s * local_cores
    rate = here.shuffle_rows / search_core_s  # index shuffle rows a core-second, search included
    by_rows = there.shuffle_rows / rate
    calibration = search_core_s / here.expected_seconds
    by_model = there.expected_seconds * calibration
    search = max(by_rows, by_model)
    edges = case.pairs / case.distinct * PROJECT_N
    components = case.components_s * local_cores / max(case.pairs, 1) * edges
    shuffle_bytes = there.shuffle_rows * bytes_per_row
    network = shuffle_bytes / PROJECT_NODES / NODE_NETWORK_BYTES_S
    wall = (search + components) / cores + network
    print(
        f"PROJECTION (not measured) to {PROJECT_N:,} hashes, radius {case.k}, "
        f"{PROJECT_NODES} nodes x {PROJECT_CORES} cores, from n={case.n:,}:"
    )
    print(f"  plan: {there.describe()}")
    print(
        f"  measured here: {rate:,.0f} index rows/core-s ({here.shuffle_rows:,} rows, "
        f"{search_core_s:,.0f} core-s = {calibration:.2f}x the planner's "
        f"{here.expected_seconds:,.0f}), {bytes_per_row:.1f} shuffle bytes/row, "
        f"{case.pairs / case.distinct:.3f} pairs/hash, "
        f"{case.components_s * local_cores / max(case.pairs, 1) * 1e6:.2f} core-us/pair "
        f"for components"
    )
    print(
        f"  search: {by_rows / 3600:,.0f} core-h by rows x rate, {by_model / 3600:,.0f} core-h "
        f"by the planner x calibration -> {search / cores / 60:,.1f} min on {cores} cores"
    )
    print(
        f"  components: {edges:,.0f} pairs, {components / 3600:,.0f} core-h -> "
        f"{components / cores / 60:,.1f} min (rounds grow like log n; {case.rounds} here)"
    )
    print(
        f"  shuffle: {shuffle_bytes / 1e12:,.2f} TB, {shuffle_bytes / PROJECT_NODES / 1e9:,.0f} GB "
        f"a node, {network / 60:,.1f} min at 10 Gbit/s a node; per task "
        f"{there.shuffle_rows / there.partitions:,.0f} rows in {there.partitions:,} partitions"
    )
    print(f"  projected wall time: {wall / 60:,.0f} min (perfect scaling assumed)")


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1e6,1e7", help="hash rows per case, comma-separated")
    parser.add_argument("--radii", default="", help="default: dedup.max_distance and 4")
    parser.add_argument("--sample", type=parse_count, default=200_000, help="0: no agreement")
    parser.add_argument("--faiss-size", type=parse_count, default=1_000_000, help="0: no faiss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--window-radii",
        default="",
        help="radii of the window-hash case (full-frame plus window hashes, benchmarks/"
        "window_mix.py) at the same sizes in index rows; default dedup.max_distance; "
        "'none' to skip it",
    )
    args = parser.parse_args()
    setup_logging()
    config = load_config()
    cfg = config.dedup
    sizes = sorted(parse_count(s) for s in args.sizes.split(","))
    radii = [int(r) for r in args.radii.split(",")] if args.radii else [cfg.max_distance, 4]
    radii = list(dict.fromkeys(radii))
    window_radii = (
        []
        if args.window_radii == "none"
        else [int(r) for r in args.window_radii.split(",")]
        if args.window_radii
        else [cfg.max_distance]
    )
    spark = get_spark(config.spark)
    local_cores = spark.sparkContext.defaultParallelism
    poller = MemoryPoller()
    mixes: dict[int, np.ndarray] = {}

    def mix(n: int) -> np.ndarray:
        if n not in mixes:
            mixes.clear()  # one mix in memory at a time
            log.info("mix of %s rows ...", f"{n:,}")
            mixes[n], makeup = make_mix(n, args.seed)
            print(f"mix n={n:,}: {makeup}")
        return mixes[n]

    # (c) agreement on a sample of the smallest size's mix; this also warms Spark up.
    if args.sample:
        source = mix(max(sizes[0], args.sample))
        rng = np.random.default_rng(args.seed + 1)
        sample = source[rng.choice(len(source), min(args.sample, len(source)), replace=False)]
        log.info("exhaustive all-pairs at radius %d on %s rows", max(radii), f"{len(sample):,}")
        truth_s, (within, distances) = timed(lambda: exhaustive_pairs(sample, max(radii)))
        for k in radii:
            log.info("agreement at radius %d on %s rows", k, f"{len(sample):,}")
            _, ours = measure(spark, sample, k, cfg, poller, collect=True)
            truth = within[distances <= k]
            dup, missing, extra = compare(ours, truth)
            ok = dup == missing == extra == 0
            print(
                f"agreement n={len(sample):,} k={k}: index {len(ours):,} pairs, exhaustive "
                f"{len(truth):,} ({truth_s:.1f} s), duplicates {dup}, missing {missing}, "
                f"extra {extra} (target 0 and 0) {'OK' if ok else 'MISSED'}"
            )

    # (a) the cases (our pairs kept at the faiss size, for (e)).
    cases: dict[tuple[int, int], Case] = {}
    kept: dict[int, np.ndarray] = {}
    for n in sizes:
        hashes = mix(n)
        for k in radii:
            log.info("case n=%s radius %d", f"{n:,}", k)
            case, ours = measure(spark, hashes, k, cfg, poller, collect=n == args.faiss_size)
            cases[n, k] = case
            if ours is not None:
                kept[k] = ours
            report_case(case)
            report_prediction(case, cfg, local_cores)

    # (a') the window-hash case: annotate's real mix of full-frame and window hashes.
    window_cases: dict[tuple[int, int], Case] = {}
    if window_radii:
        # Here, not at the top: window_mix builds on this module's make_mix.
        from benchmarks.window_mix import describe as describe_templates
        from benchmarks.window_mix import make_window_mix, real_templates

        templates = real_templates(config.annotate.draft_size)
        print("\n".join(describe_templates(templates)))
        for n in sizes:
            mixes.clear()
            hashes, makeup = make_window_mix(n, templates, args.seed)
            print(f"window mix n={n:,}: {makeup}")
            for k in window_radii:
                log.info("window case n=%s radius %d", f"{n:,}", k)
                case, _ = measure(spark, hashes, k, cfg, poller)
                case.mix = "windows "
                window_cases[n, k] = case
                report_case(case)
                report_prediction(case, cfg, local_cores)
            del hashes

    # (b) growth over 10x the hashes.
    for label, table, rs in (("", cases, radii), ("window_", window_cases, window_radii)):
        for k in rs:
            for n in sizes:
                if (10 * n, k) not in table:
                    continue
                growth = table[10 * n, k].seconds / table[n, k].seconds
                suffix = "" if k == cfg.max_distance else f"_k{k}"
                report_ratio(f"dedup_{label}growth_10x{suffix}", growth, "<=", 12)
                search = table[10 * n, k].search_s / table[n, k].search_s
                report_ratio(f"dedup_{label}search_growth_10x_k{k}", search)

    # (d) the projection from the largest case of each radius.
    for k in radii:
        project(cases[sizes[-1], k], cfg, local_cores)

    # (e) faiss on the same mix, last: at radius 6 its 9-bit buckets make it the slowest part.
    if args.faiss_size and args.faiss_size not in sizes:
        print(f"faiss: skipped, --faiss-size {args.faiss_size:,} is not one of --sizes")
    elif args.faiss_size:
        try:
            import faiss  # noqa: F401
        except ImportError as exc:
            print(f"faiss: skipped the comparison, faiss is not importable ({exc})")
            kept.clear()
        n = args.faiss_size
        for k in sorted(kept):
            log.info("faiss IndexBinaryMultiHash at radius %d on %s rows", k, f"{n:,}")
            add_s, search_s, theirs = faiss_pairs(mix(n), k)
            case = cases[n, k]
            dup, missing, extra = compare(kept[k], theirs)
            print(
                f"faiss n={n:,} k={k}: IndexBinaryMultiHash {k + 1} tables of "
                f"{64 // (k + 1)} bits, {add_s + search_s:.1f} s (add {add_s:.1f}, range "
                f"search {search_s:.1f}), {len(theirs):,} pairs | ours: search "
                f"{case.search_s:.1f} s (+ components {case.components_s:.1f} s), "
                f"{case.pairs:,} pairs; ours missing {missing}, extra {extra}, duplicates {dup}"
            )
            report_ratio(f"dedup_faiss_over_ours_search_k{k}", (add_s + search_s) / case.search_s)
    spark.stop()


if __name__ == "__main__":
    main()
