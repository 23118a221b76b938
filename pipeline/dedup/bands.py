"""Block layouts of the near-duplicate index, and the planner that sizes them from the data.

A layout splits a set of free bits into B blocks and keys on every combination of B - k of them:
C(B, k) tables (Manku, Jain & Das Sarma, "Detecting near-duplicates for web crawling", WWW 2007,
permuted-block tables). Pigeonhole: two hashes within k bits differ in at most k blocks, so at
least B - k blocks agree, and so does the table keyed on them. B = k + 1 is the classic band
index (k + 1 tables, 64 / (k + 1) bits each); every block added buys longer keys (fewer
candidates a table) for more tables (more copies of each hash).

Layouts nest: the bits a table does not key on still hold every difference of a pair found in
it, so a bucket can be split again by a layout over those bits, with the same guarantee. This is
the recursion of Manku et al. (their section 3.1.1) and the substring scheme of multi-index
hashing (Norouzi, Punjani & Fleet, "Fast exact search in Hamming space with multi-index hashing",
TPAMI 2014). The index uses two levels of it: the first layout is what Spark shuffles on (each
hash copied once a table), and inside a bucket further layouts are applied in memory, where a
copy costs a sort, not a shuffle row. `plan_index` picks both from the number of hashes, so the
expected group a pair is verified in stays bounded as n grows.

A pair is emitted once: at the first table (in layout order, level by level) where it agrees.
Every verified pair is checked against the masks of the tables before its own ("forbidden").
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass

BITS = 64
FULL = (1 << BITS) - 1

# Costs in seconds on one core of the 2-core machine, measured. In memory
# (benchmarks/dedup_rates.py, least squares over buckets of the planned sizes at 1M and 10M
# hashes, radius 4 and 6): one hash through one in-memory table (key, sort, gathers, group
# bounds) and one candidate pair compared (XOR, popcount, compare): 5.8e-8 and 3.9e-9. Around
# it (`make bench-dedup`, the four cases 1M/10M x radius 4/6 fitted with the in-memory part
# above held fixed): one index row through the shuffle (explode, the heavy-bucket count, hash
# partitioning, serialise, Arrow into Python), one distinct hash (distinct, checkpoint, count)
# and the fixed cost of the search's Spark jobs. Only the ratios of the per-row costs steer
# the planner; all of them make expected_seconds comparable with a measurement.
SHUFFLE_ROW_S = 2.3e-6
NODE_S = 2.0e-6
SEARCH_FIXED_S = 5.0
SORT_ROW_S = 6.0e-8
PAIR_S = 4.0e-9
GROUP_S = 2.0e-5  # Python overhead of one group compared in blocks on its own
# Groups up to this size are compared all-pairs in one vectorised sweep, never split.
SMALL_GROUP = 64
# Groups the cost model leaves unsplit join that sweep up to this size (its offsets loop once
# a row of the largest group); larger ones are compared in blocks, one group at a time.
SWEEP_GROUP = 4096
# The largest layouts considered: tables per level in the shuffle and in memory.
MAX_SHUFFLE_TABLES = 512
MAX_MEMORY_TABLES = 128


def bit_positions(mask: int) -> list[int]:
    """Positions of the set bits of `mask`, lowest first."""
    return [i for i in range(BITS) if mask >> i & 1]


def block_masks(free: int, blocks: int) -> list[int]:
    """The set bits of `free` in `blocks` contiguous runs, sizes differing by at most one."""
    positions = bit_positions(free)
    if not 1 <= blocks <= len(positions):
        raise ValueError(f"cannot split {len(positions)} bits into {blocks} blocks")
    base, extra = divmod(len(positions), blocks)
    masks, start = [], 0
    for i in range(blocks):
        width = base + (1 if i < extra else 0)
        masks.append(sum(1 << p for p in positions[start : start + width]))
        start += width
    return masks


@dataclass(frozen=True)
class Layout:
    """C(blocks, k) tables over the bits of `free`, each keyed on blocks - k of the blocks."""

    free: int
    blocks: int
    k: int

    @functools.cached_property
    def masks(self) -> tuple[int, ...]:
        """One mask a table: the union of its key blocks, in lexicographic order of blocks."""
        parts = block_masks(self.free, self.blocks)
        keep = self.blocks - self.k
        return tuple(
            functools.reduce(int.__or__, combo, 0) for combo in itertools.combinations(parts, keep)
        )

    @property
    def tables(self) -> int:
        return math.comb(self.blocks, self.k)

    @functools.cached_property
    def key_bits(self) -> tuple[int, ...]:
        return tuple(m.bit_count() for m in self.masks)

    def expected_candidates(self, n: float) -> float:
        """Expected pairs sharing a key in some table, n uniform hashes in one group."""
        return sum(n * n / 2 / 2**b for b in self.key_bits)


def layouts(free: int, k: int, max_tables: int) -> list[Layout]:
    """Every layout over `free` for radius k with at most max_tables tables, fewest tables first.

    A layout needs k + 1 blocks of at least one bit and keys of at least one bit."""
    width = free.bit_count()
    out = []
    # k = 0 has one table whatever the blocks (all of them); beyond k + 8 blocks the keys gain
    # under a bit a block while the tables multiply.
    for blocks in range(k + 1, min(width, k + 8 if k else 1) + 1):
        if math.comb(blocks, k) > max_tables:
            break
        out.append(Layout(free, blocks, k))
    return out


@functools.lru_cache(maxsize=4096)
def group_cost(size: int, free_bits: int, k: int, depth: int = 0) -> tuple[float, int]:
    """(expected seconds, blocks of the best layout or 0 for all-pairs) to search one group of
    `size` uniform hashes that agree outside `free_bits` bits, in memory."""
    pairs_cost = size * size / 2 * PAIR_S + (GROUP_S if size > SWEEP_GROUP else 0.0)
    best = (pairs_cost, 0)
    if size <= SMALL_GROUP or depth >= 4 or free_bits < k + 1:
        return best
    for layout in layouts((1 << free_bits) - 1, k, MAX_MEMORY_TABLES):
        cost = size * layout.tables * SORT_ROW_S
        for bits in layout.key_bits:
            cost += _table_cost(size, bits, free_bits - bits, k, depth + 1)
        if cost < best[0]:
            best = (cost, layout.blocks)
    return best


def _table_cost(n: float, bits: int, free_bits: int, k: int, depth: int) -> float:
    """Expected seconds of the groups of one table keyed on `bits` bits, n hashes in all."""
    size = n / 2**bits
    if size <= SMALL_GROUP:  # all-pairs in the vectorised sweep: the candidates are the cost
        return n * size / 2 * PAIR_S
    return 2**bits * group_cost(round(size), free_bits, k, depth)[0]


@dataclass(frozen=True)
class IndexPlan:
    """What the shuffle keys on, and what the planner expects of it."""

    n: int
    k: int
    shuffle: Layout
    partitions: int
    shuffle_rows: int
    bucket_size: float  # expected hashes in one shuffle bucket
    memory_blocks: int  # layout applied in memory to a bucket of expected size (0: all-pairs)
    memory_tables: int
    expected_candidates: float
    expected_seconds: float  # core-seconds of the whole search, by the cost constants above
    # The next best shuffle layout and why it lost (empty when there was no other).
    rejected: str = ""

    def describe(self) -> str:
        """One log line: the figures the planner chose by."""
        return (
            f"{self.n:,} hashes, radius {self.k}: shuffle on {self.shuffle.tables} tables of "
            f"{min(self.shuffle.key_bits)}-{max(self.shuffle.key_bits)} key bits "
            f"({self.shuffle.blocks} blocks), {self.shuffle_rows:,} shuffle rows in "
            f"{self.partitions} partitions, expected bucket {self.bucket_size:,.1f} hashes, "
            f"in memory {_tables(self.memory_tables)} a bucket, expected candidate pairs "
            f"{self.expected_candidates:,.0f}, expected {self.expected_seconds:,.1f} core-seconds"
            + (f"; rejected {self.rejected}" if self.rejected else "")
        )


def _tables(count: int) -> str:
    return f"{count} table" if count == 1 else f"{count} tables"


def _memory_candidates(size: float, free_bits: int, k: int, depth: int = 0) -> float:
    """Expected candidate pairs of one group searched as group_cost decides."""
    n = max(round(size), 1)
    _, blocks = group_cost(n, free_bits, k, depth) if size > SMALL_GROUP else (0.0, 0)
    if blocks == 0:
        return size * size / 2
    layout = Layout((1 << free_bits) - 1, blocks, k)
    return sum(
        2**b * _memory_candidates(size / 2**b, free_bits - b, k, depth + 1) for b in layout.key_bits
    )


def plan_index(
    n: int,
    k: int,
    max_bucket_size: int,
    min_partitions: int = 1,
    rows_per_partition: int = 2_000_000,
) -> IndexPlan:
    """The shuffle layout for n hashes at radius k, cheapest by the cost model among those whose
    expected bucket holds at most max_bucket_size / 2 hashes (a task holds a bucket whole).

    Linear in n: the shuffle keys lengthen (more tables) as n grows so that buckets stay
    bounded, and inside a bucket the in-memory layouts bound the group a pair is verified in.
    """
    if not 0 <= k < BITS:
        raise ValueError(f"radius must be in [0, {BITS - 1}], got {k}")
    n = max(int(n), 1)
    cap = max_bucket_size / 2
    plans = []
    for layout in layouts(FULL, k, MAX_SHUFFLE_TABLES):
        bucket = n / 2 ** min(layout.key_bits)
        rows = n * layout.tables
        seconds = SEARCH_FIXED_S + n * NODE_S + rows * SHUFFLE_ROW_S
        candidates = 0.0
        for bits in layout.key_bits:
            seconds += _table_cost(n, bits, BITS - bits, k, 0)
            candidates += 2**bits * _memory_candidates(n / 2**bits, BITS - bits, k)
        _, blocks = group_cost(max(round(bucket), 1), BITS - min(layout.key_bits), k)
        plans.append(
            IndexPlan(
                n=n,
                k=k,
                shuffle=layout,
                partitions=max(min_partitions, math.ceil(rows / rows_per_partition)),
                shuffle_rows=rows,
                bucket_size=bucket,
                memory_blocks=blocks,
                memory_tables=math.comb(blocks, k) if blocks else 1,
                expected_candidates=candidates,
                expected_seconds=seconds,
            )
        )
    # A bucket a task holds whole first, then the cheapest by the cost model.
    plans.sort(key=lambda p: (p.bucket_size > cap, p.expected_seconds))
    best = plans[0] if plans else None
    if best is not None and len(plans) > 1:
        other = plans[1]
        why = (
            f"expected bucket {other.bucket_size:,.0f} over {cap:,.0f}"
            if other.bucket_size > cap
            else f"{other.expected_seconds / best.expected_seconds:.2f}x the expected core-seconds"
        )
        best = dataclasses.replace(
            best,
            rejected=f"{other.shuffle.tables} tables of {min(other.shuffle.key_bits)} key bits "
            f"({other.expected_seconds:,.1f} core-seconds, expected bucket "
            f"{other.bucket_size:,.1f}, in memory {_tables(other.memory_tables)}): {why}",
        )
    assert best is not None  # k < 64: the k + 1 block layout always exists
    return best
