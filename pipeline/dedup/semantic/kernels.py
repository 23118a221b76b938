"""The numeric kernels of semantic dedup, in numpy over Arrow columns: float16 embedding bytes to
matrices, seeded spherical k-means, nearest centroids, and the pairs of one cluster whose cosine
similarity reaches a threshold, compared in blocks (never an n x n matrix in memory)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def to_matrix(column: pa.Array | pa.ChunkedArray | list[bytes]) -> np.ndarray:
    """Rows of float16 embedding bytes (annotate's `image_embedding`) as a float32 matrix."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array) and pa.types.is_large_binary(column.type):
        column = column.cast(pa.binary())  # 32-bit offsets, as read below
    if isinstance(column, pa.Array):
        if len(column) == 0:
            return np.zeros((0, 0), np.float32)
        # Binary values are contiguous in the data buffer: one frombuffer, no Python loop.
        offsets = np.frombuffer(column.buffers()[1], np.int32)[column.offset :][: len(column) + 1]
        data = np.frombuffer(column.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
        width = (offsets[1] - offsets[0]) // 2
        if not np.all(np.diff(offsets) == 2 * width):
            raise ValueError("embeddings of different lengths in one column")
        return data.view(np.float16).reshape(len(column), width).astype(np.float32)
    if not column:
        return np.zeros((0, 0), np.float32)
    return np.stack([np.frombuffer(b, np.float16) for b in column]).astype(np.float32)


def normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float16 storage leaves them ~1e-3 off); zero rows stay zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def _plus_plus(points: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) in cosine distance."""
    n = len(points)
    centres = np.empty((k, points.shape[1]), np.float32)
    centres[0] = points[rng.integers(n)]
    closest = 1.0 - points @ centres[0]
    for i in range(1, k):
        weights = np.maximum(closest, 0.0)
        total = float(weights.sum())
        pick = rng.choice(n, p=weights / total) if total > 0 else int(rng.integers(n))
        centres[i] = points[pick]
        closest = np.minimum(closest, 1.0 - points @ centres[i])
    return centres


def spherical_kmeans(
    points: np.ndarray, k: int, iterations: int, seed: int
) -> tuple[np.ndarray, int]:
    """(centroids k x d, unit rows; iterations run) of spherical k-means (cosine, centroids
    renormalised each step, as SemDeDup and faiss's spherical option), seeded k-means++ start.

    Deterministic for the same points in the same order and seed. An emptied cluster takes the
    point farthest from its centroid, so k centroids always come back.
    """
    points = normalise(points.astype(np.float32, copy=False))
    k = max(1, min(k, len(points)))
    rng = np.random.default_rng(seed)
    centres = _plus_plus(points, k, rng)
    labels = np.full(len(points), -1)
    for iteration in range(1, iterations + 1):
        sims = points @ centres.T
        new = sims.argmax(axis=1)
        if np.array_equal(new, labels):
            return centres, iteration
        labels = new
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, points)
        counts = np.bincount(labels, minlength=k)
        for empty in np.flatnonzero(counts == 0):
            far = int(sims[np.arange(len(points)), labels].argmin())
            sums[empty] = points[far]
            labels[far] = empty
        centres = normalise(sums)
    return centres, iterations


def nearest_centroids(points: np.ndarray, centroids: np.ndarray, top: int = 1) -> np.ndarray:
    """Indices (n x top) of each point's `top` most similar centroids, most similar first."""
    sims = points @ centroids.T
    top = min(top, centroids.shape[0])
    if top == 1:
        return sims.argmax(axis=1)[:, None]
    part = np.argpartition(-sims, top - 1, axis=1)[:, :top]
    order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def similar_pairs(
    nodes: np.ndarray, points: np.ndarray, threshold: float, block_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, cosine) of every pair of rows with cosine >= threshold, a < b by node id.

    Rows are compared a block of `block_rows` against the rest at a time, so memory is
    block_rows x n, never n x n; the cost is n^2 / 2 dot products (the cluster bounds n).
    """
    firsts: list[np.ndarray] = []
    seconds: list[np.ndarray] = []
    cosines: list[np.ndarray] = []
    n = len(nodes)
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        sims = points[start:stop] @ points[start:].T
        # Only j > i: the block's upper triangle and everything to its right.
        sims[np.tril_indices(stop - start, 0, sims.shape[1])] = -np.inf
        i, j = np.nonzero(sims >= threshold)
        if len(i):
            a, b = nodes[start + i], nodes[start + j]
            firsts.append(np.minimum(a, b))
            seconds.append(np.maximum(a, b))
            cosines.append(sims[i, j])
    if not firsts:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    return (
        np.concatenate(firsts),
        np.concatenate(seconds),
        np.concatenate(cosines).astype(np.float32),
    )


def best_match(
    points: np.ndarray, references: np.ndarray, block_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine) of each point's most similar reference row (eval decontamination)."""
    index = np.zeros(len(points), np.int64)
    best = np.full(len(points), -np.inf, np.float32)
    for start in range(0, len(references), block_rows):
        sims = points @ references[start : start + block_rows].T
        arg = sims.argmax(axis=1)
        val = sims[np.arange(len(points)), arg]
        better = val > best
        index[better] = start + arg[better]
        best[better] = val[better]
    return index, best


def neighbour_fraction(
    points: np.ndarray, threshold: float, max_points: int = 10_000, block_rows: int = 1024
) -> tuple[float, float]:
    """(fraction of rows whose nearest other row has cosine >= threshold, median of that nearest
    cosine) over the first `max_points` rows: how crowded the embedding space is at a threshold.
    On a sparse random sample of a pool, real duplicates rarely meet, so a high fraction means
    that distinct images sit within the threshold of each other."""
    points = points[:max_points]
    if len(points) < 2:
        return 0.0, 0.0
    nearest = np.full(len(points), -np.inf, np.float32)
    for start in range(0, len(points), block_rows):
        sims = points[start : start + block_rows] @ points.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not itself
        nearest[start : start + block_rows] = sims.max(axis=1)
    return float(np.mean(nearest >= threshold)), float(np.median(nearest))
