"""Exact search inside shuffle buckets, in memory, with vectorised XOR + popcount.

The rows of one bucket agree on the bits of its shuffle table; every difference of a pair lies in
the other ("free") bits. Small groups are compared all-pairs in one sweep over the sorted rows
(offset d = 1, 2, ... against the row d places later, within the group); a large group is split
again by a layout over its free bits (see bands.py: Manku et al. 2007, nested pigeonhole), each
of its tables a sort, down to groups small enough to compare. A group the cost model does not
split (or cannot: too few free bits) is compared in bounded blocks, never skipped.

A verified pair is emitted at the first table where it agrees: it is dropped when its XOR is zero
under any mask of the tables before (the `forbidden` masks of every level). So each pair comes
out once, wherever its rows land, whatever the partitioning.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.dedup.bands import FULL, SMALL_GROUP, SWEEP_GROUP, Layout, group_cost

# Output rows: verified pairs (kind 0), and counters (kind > 0, value in `a`) summed or maxed
# over partitions by the plan.
PAIRS = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("kind", pa.int32())])
STAT_CANDIDATES = 1  # candidate pairs compared (sum)
STAT_BUCKETS = 2  # shuffle buckets with two or more rows (sum)
STAT_LARGEST_BUCKET = 3  # rows of the largest shuffle bucket (max)
STAT_SPLITS = 4  # groups split again in memory (sum)
STAT_BLOCKED = 5  # groups over max_bucket_size compared in blocks, unsplittable (sum)
STAT_LARGEST_BLOCKED = 6  # rows of the largest of those (max)
STAT_NAMES = {
    STAT_CANDIDATES: "candidate_pairs",
    STAT_BUCKETS: "buckets",
    STAT_LARGEST_BUCKET: "largest_bucket",
    STAT_SPLITS: "groups_split_in_memory",
    STAT_BLOCKED: "giant_groups_blocked",
    STAT_LARGEST_BLOCKED: "largest_giant_group",
}
MAX_STATS = frozenset({STAT_LARGEST_BUCKET, STAT_LARGEST_BLOCKED})
# Shuffle table ids: table i of the shuffle layout is i * SPLIT; its heavy buckets, split in the
# shuffle by table j of a further layout, are i * SPLIT + j + 1.
SPLIT = 4096
# Blocked all-pairs: at most this many distances (8 bytes each) in memory at once.
_ROW_BLOCK, _COL_BLOCK = 512, 8192


@dataclass
class Found:
    """Pairs and counters accumulated over one partition."""

    k: int
    cross: bool
    max_bucket_size: int
    a: list[np.ndarray] = field(default_factory=list)
    b: list[np.ndarray] = field(default_factory=list)
    stats: dict[int, int] = field(default_factory=dict)

    def count(self, stat: int, value: int) -> None:
        if stat in MAX_STATS:
            self.stats[stat] = max(self.stats.get(stat, 0), int(value))
        else:
            self.stats[stat] = self.stats.get(stat, 0) + int(value)

    def emit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        sx: np.ndarray,
        sy: np.ndarray,
        forbidden: tuple,
        valid: np.ndarray | None = None,
        candidates: int | None = None,
    ) -> None:
        """Keep the candidate pairs (x, y) within the radius, across sides when cross (sx, sy
        are read only then), and not agreeing on any forbidden mask (found at an earlier table).
        With `valid`, only the `candidates` positions it marks are pairs of one group."""
        self.count(STAT_CANDIDATES, len(x) if candidates is None else candidates)
        xor = x ^ y
        keep = np.bitwise_count(xor) <= self.k
        if valid is not None:
            keep &= valid
        keep &= (sx != sy) if self.cross else (xor != 0)
        if not keep.any():
            return
        picked = np.flatnonzero(keep)
        x, y, xor = x[picked], y[picked], xor[picked]
        sx = sx[picked] if self.cross else sx[:0]
        if forbidden:
            first = np.ones(len(xor), bool)
            for mask in forbidden:
                first &= (xor & np.uint64(mask)) != 0
            x, y = x[first], y[first]
            sx = sx[first] if self.cross else sx
        x, y = x.view(np.int64), y.view(np.int64)
        if self.cross:  # a from the left (side 0), b from the right
            left = sx == 0
            x, y = np.where(left, x, y), np.where(left, y, x)
        else:
            x, y = np.minimum(x, y), np.maximum(x, y)
        self.a.append(x)
        self.b.append(y)


# The sweep compares row r with row r + d over contiguous slices (no gathers: about half the
# time a candidate of the gathered path) while at least this share of the rows still has a
# partner d rows on in its group; below it, over the gathered rows that do.
DENSE_SHARE = 0.5


def _sweep(nodes: np.ndarray, sides: np.ndarray, ends: np.ndarray, found: Found, forbidden):
    """All pairs within groups of consecutive rows; ends[r] = end of row r's group (r or less
    for a row in no group to sweep)."""
    n = len(nodes)
    left = ends - np.arange(n)  # rows from r to the end of its group, r included
    rows = None
    d = 1
    while True:
        if rows is None:
            valid = left[: n - d] > d
            live = int(np.count_nonzero(valid))
            if live == 0:
                return
            if live >= DENSE_SHARE * (n - d):
                found.emit(
                    nodes[: n - d], nodes[d:], sides[: n - d], sides[d:], forbidden, valid, live
                )
                d += 1
                continue
            rows = np.flatnonzero(valid)
            left_rows = left[rows]
        else:
            keep = left_rows > d
            rows, left_rows = rows[keep], left_rows[keep]
            if not len(rows):
                return
        q = rows + d
        if found.cross:
            found.emit(nodes[rows], nodes[q], sides[rows], sides[q], forbidden)
        else:  # sides are not read: no gather for them
            found.emit(nodes[rows], nodes[q], sides, sides, forbidden)
        d += 1


def _blocked(nodes: np.ndarray, sides: np.ndarray, found: Found, forbidden) -> None:
    """All pairs of one group in bounded blocks of distances."""
    n = len(nodes)
    for r in range(0, n, _ROW_BLOCK):
        x, sx = nodes[r : r + _ROW_BLOCK], sides[r : r + _ROW_BLOCK]
        for c in range(r, n, _COL_BLOCK):
            y, sy = nodes[c : c + _COL_BLOCK], sides[c : c + _COL_BLOCK]
            close = np.bitwise_count(x[:, None] ^ y[None, :]) <= found.k
            i, j = np.nonzero(close)
            keep = (r + i) < (c + j)
            i, j = i[keep], j[keep]
            # Only the pairs within the radius reach emit; count all compared.
            found.count(STAT_CANDIDATES, len(x) * len(y) - len(i))
            found.emit(x[i], y[j], sx[i], sy[j], forbidden)


def _runs(mask: int) -> list[tuple[int, int, int]]:
    """(shift, width, offset) of each run of consecutive set bits of mask, lowest first."""
    runs, offset, i = [], 0, 0
    while i < 64:
        if mask >> i & 1:
            start = i
            while i < 64 and mask >> i & 1:
                i += 1
            runs.append((start, i - start, offset))
            offset += i - start
        else:
            i += 1
    return runs


def compact(values: np.ndarray, mask: int) -> np.ndarray:
    """The bits of `mask` of each value, packed into the low bits (order kept): equal keys iff
    equal under the mask, and short enough to share a 64-bit sort key with a group id."""
    out = np.zeros(len(values), np.uint64)
    for shift, width, offset in _runs(mask):
        part = (values >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        out |= part << np.uint64(offset) if offset else part
    return out


def search_groups(
    nodes: np.ndarray,
    sides: np.ndarray,
    starts: np.ndarray,
    free: int,
    forbidden: tuple[int, ...],
    found: Found,
    depth: int = 0,
) -> None:
    """Every pair within the radius inside groups of rows (rows sorted by group; group g is
    rows starts[g]:starts[g + 1]) whose members agree outside the bits of `free`."""
    sizes = np.diff(starts)
    live = sizes > 1
    if found.cross and live.any():
        lo = np.minimum.reduceat(sides, starts[:-1])
        hi = np.maximum.reduceat(sides, starts[:-1])
        live &= lo != hi  # a group with one side only has no cross pair
    if not live.any():
        return
    ends = np.repeat(starts[1:], sizes)
    swept = live & (sizes <= SMALL_GROUP)
    large = np.flatnonzero(live & (sizes > SMALL_GROUP))
    if len(large):
        large_sizes = sizes[large]
        # The size a row of a large group sees on average: what the layout is chosen for.
        typical = round(float((large_sizes.astype(float) ** 2).sum() / large_sizes.sum()))
        _, blocks = group_cost(typical, free.bit_count(), found.k, depth)
        if blocks == 0:
            # Not split: up to SWEEP_GROUP rows a group join the vectorised sweep (one pass
            # over every such group at each offset); larger ones are compared in blocks.
            swept |= live & (sizes > SMALL_GROUP) & (sizes <= SWEEP_GROUP)
            for g in large[large_sizes > SWEEP_GROUP]:
                s, e = starts[g], starts[g + 1]
                if e - s > found.max_bucket_size:
                    found.count(STAT_BLOCKED, 1)
                    found.count(STAT_LARGEST_BLOCKED, e - s)
                _blocked(nodes[s:e], sides[s:e], found, forbidden)
            large = large[:0]
    if swept.any():
        _sweep(nodes, sides, np.where(np.repeat(swept, sizes), ends, 0), found, forbidden)
    if not len(large):
        return
    large_sizes = sizes[large]
    found.count(STAT_SPLITS, len(large))
    rows = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in large])
    gid = np.repeat(np.arange(len(large), dtype=np.int64), large_sizes)
    # Sides are read only across two sets (cross): otherwise no gather of them at any table.
    sub_nodes = nodes[rows]
    sub_sides = sides[rows] if found.cross else sides
    layout = Layout(free, blocks, found.k)
    gid_bits = int(len(large) - 1).bit_length()
    for j, mask in enumerate(layout.masks):
        key = compact(sub_nodes, mask)
        if gid_bits + mask.bit_count() <= 63:  # one key: argsort is twice as fast as lexsort
            joint = key | (gid.astype(np.uint64) << np.uint64(mask.bit_count()))
            order = np.argsort(joint)
            joint_o = joint[order]
            change = np.flatnonzero(joint_o[1:] != joint_o[:-1]) + 1
        else:
            order = np.lexsort((key, gid))
            key_o, gid_o = key[order], gid[order]
            change = np.flatnonzero((key_o[1:] != key_o[:-1]) | (gid_o[1:] != gid_o[:-1])) + 1
        sub_starts = np.concatenate(([0], change, [len(order)]))
        search_groups(
            sub_nodes[order],
            sub_sides[order] if found.cross else sides,
            sub_starts,
            free & ~mask,
            forbidden + layout.masks[:j],
            found,
            depth + 1,
        )


def search_partition(
    table: np.ndarray,
    key: np.ndarray,
    node: np.ndarray,
    side: np.ndarray,
    found: Found,
    shuffle_masks: tuple[int, ...],
    split_masks: dict[int, tuple[int, ...]],
) -> None:
    """All pairs of the shuffle buckets in these rows: rows (table, key, node, side), every
    bucket (table, key) whole. `split_masks[i]` is the layout heavy buckets of table i were split
    by in the shuffle."""
    if len(node) == 0:
        return
    order = np.lexsort((node, key, table))
    table, key = table[order], key[order]
    nodes, sides = node[order].view(np.uint64), side[order].astype(np.int8)
    change = np.flatnonzero((table[1:] != table[:-1]) | (key[1:] != key[:-1])) + 1
    bucket_starts = np.concatenate(([0], change, [len(nodes)]))
    sizes = np.diff(bucket_starts)
    found.count(STAT_BUCKETS, int((sizes > 1).sum()))
    found.count(STAT_LARGEST_BUCKET, int(sizes.max()))
    table_change = np.flatnonzero(table[bucket_starts[1:-1]] != table[bucket_starts[:-2]]) + 1
    table_bounds = np.concatenate(([0], table_change, [len(sizes)]))
    for lo, hi in itertools.pairwise(table_bounds):
        t = int(table[bucket_starts[lo]])
        i, j = divmod(t, SPLIT)
        free = FULL & ~shuffle_masks[i]
        forbidden = shuffle_masks[:i]
        if j:
            layout = split_masks[i]
            free &= ~layout[j - 1]
            forbidden = forbidden + layout[: j - 1]
        s, e = bucket_starts[lo], bucket_starts[hi]
        search_groups(
            nodes[s:e], sides[s:e], bucket_starts[lo : hi + 1] - s, free, forbidden, found
        )


def search_batches(
    batches: Iterator[pa.RecordBatch],
    max_distance: int,
    cross: bool,
    max_bucket_size: int,
    shuffle_masks: tuple[int, ...],
    split_masks: dict[int, tuple[int, ...]],
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body over rows (table, key, node, side) partitioned by (table, key).

    A partition's rows are gathered first (a bucket may span Arrow batches); the plan sizes
    partitions to a few million rows and splits buckets over max_bucket_size in the shuffle.
    """
    received = list(batches)
    # An empty partition (every row dropped upstream) may hand over no batch at all, and
    # from_batches cannot build a table from nothing without a schema.
    if not received:
        return
    data = pa.Table.from_batches(received)
    if data.num_rows == 0:
        return
    cols = [data.column(c).to_numpy() for c in ("table", "key", "node", "side")]
    found = Found(max_distance, cross, max_bucket_size)
    search_partition(*cols, found, shuffle_masks, split_masks)
    if found.a:
        a, b = np.concatenate(found.a), np.concatenate(found.b)
        for start in range(0, len(a), 1 << 20):
            stop = start + (1 << 20)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(a[start:stop]),
                    pa.array(b[start:stop]),
                    pa.array(np.zeros(len(a[start:stop]), np.int32)),
                ],
                schema=PAIRS,
            )
    if found.stats:
        codes = sorted(found.stats)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array([found.stats[c] for c in codes], pa.int64()),
                pa.array(np.zeros(len(codes), np.int64)),
                pa.array(codes, pa.int32()),
            ],
            schema=PAIRS,
        )


def brute_force_pairs(
    left: np.ndarray, right: np.ndarray | None, max_distance: int
) -> set[tuple[int, int]]:
    """Reference: every pair compared (tests and the benchmark's exhaustive side). Signed
    int64 in, (a, b) with a < b within one set, or (left, right) across."""
    found = Found(max_distance, right is not None, max_bucket_size=math.inf)  # type: ignore[arg-type]
    if right is None:
        nodes = np.unique(left).view(np.uint64)
        sides = np.zeros(len(nodes), np.int8)
    else:
        nodes = np.concatenate([np.unique(left), np.unique(right)]).view(np.uint64)
        sides = np.repeat(np.array([0, 1], np.int8), [len(np.unique(left)), len(np.unique(right))])
    _blocked(nodes, sides, found, ())
    if not found.a:
        return set()
    return set(zip(np.concatenate(found.a).tolist(), np.concatenate(found.b).tolist(), strict=True))
