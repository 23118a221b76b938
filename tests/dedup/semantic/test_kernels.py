"""The numpy kernels of semantic dedup: float16 bytes, spherical k-means, nearest centroids,
blocked pairs against brute force, and the best reference match."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipeline.dedup.semantic.kernels import (
    best_match,
    nearest_centroids,
    neighbour_fraction,
    normalise,
    similar_pairs,
    spherical_kmeans,
    to_matrix,
)


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return normalise(rng.standard_normal((n, d)).astype(np.float32))


def brute(points: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    sims = points @ points.T
    i, j = np.nonzero(np.triu(sims >= threshold, 1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def test_to_matrix_reads_float16_bytes_of_a_sliced_column():
    values = np.arange(12, dtype=np.float16).reshape(4, 3)
    column = pa.array([row.tobytes() for row in values], pa.binary())
    assert to_matrix(column.slice(1, 2)).tolist() == [[3, 4, 5], [6, 7, 8]]
    assert to_matrix([row.tobytes() for row in values]).shape == (4, 3)
    assert to_matrix(pa.array([], pa.binary())).shape == (0, 0)


def test_to_matrix_refuses_ragged_rows():
    with pytest.raises(ValueError, match="different lengths"):
        to_matrix(pa.array([b"\x00" * 4, b"\x00" * 6]))


@pytest.mark.parametrize("block_rows", [1, 7, 64, 1000])
@pytest.mark.parametrize("threshold", [0.3, 0.9, 0.99])
def test_similar_pairs_equal_brute_force_for_any_block(block_rows, threshold):
    rng = np.random.default_rng(3)
    base = unit(rng, 60, 8)
    # Planted near copies: cosine about 0.99-0.999 with their original.
    copies = normalise(base[:20] + 0.05 * rng.standard_normal((20, 8)).astype(np.float32))
    points = np.vstack([base, copies])
    nodes = np.arange(len(points), dtype=np.int64)[::-1].copy()  # ids not in row order
    a, b, cos = similar_pairs(nodes, points, threshold, block_rows)
    expected = {tuple(sorted((int(nodes[i]), int(nodes[j])))) for i, j in brute(points, threshold)}
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == expected
    assert len(a) == len(expected)  # each pair once
    assert np.all(a < b) and np.all(cos >= threshold)


def test_spherical_kmeans_is_seeded_and_separates_families():
    rng = np.random.default_rng(0)
    centres = unit(rng, 4, 16)
    labels = np.repeat(np.arange(4), 50)
    points = normalise(centres[labels] + 0.1 * rng.standard_normal((200, 16)).astype(np.float32))
    first, rounds = spherical_kmeans(points, 4, 100, seed=1234)
    again, _ = spherical_kmeans(points, 4, 100, seed=1234)
    assert np.array_equal(first, again)
    assert rounds < 100
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    found = nearest_centroids(points, first)[:, 0]
    # Each planted family lands whole in one cluster, and the four clusters differ.
    assert [len(set(found[labels == f])) for f in range(4)] == [1, 1, 1, 1]
    assert len(set(found)) == 4


def test_kmeans_never_asks_for_more_clusters_than_points():
    points = unit(np.random.default_rng(1), 3, 4)
    centroids, _ = spherical_kmeans(points, 10, 5, seed=0)
    assert centroids.shape == (3, 4)


def test_nearest_centroids_orders_the_top_choices():
    centroids = np.eye(3, dtype=np.float32)
    points = normalise(np.array([[0.9, 0.4, 0.1], [0.0, 0.2, 1.0]], np.float32))
    assert nearest_centroids(points, centroids, 2).tolist() == [[0, 1], [2, 1]]
    assert nearest_centroids(points, centroids, 5).shape == (2, 3)


def test_best_match_finds_the_closest_reference_across_blocks():
    rng = np.random.default_rng(2)
    refs = unit(rng, 50, 8)
    points = refs[[7, 41, 3]]
    index, cosine = best_match(points, refs, block_rows=16)
    assert index.tolist() == [7, 41, 3]
    assert np.allclose(cosine, 1.0, atol=1e-5)


def test_neighbour_fraction_counts_rows_with_a_close_neighbour():
    # Rows 0-1 are one picture twice; 2-4 are orthogonal.
    points = np.vstack([np.eye(4, dtype=np.float32)[[0, 0]], np.eye(4, dtype=np.float32)[1:4]])
    fraction, median = neighbour_fraction(points, 0.99, block_rows=2)
    assert (fraction, median) == (0.4, 0.0)
    assert neighbour_fraction(points[:1], 0.5) == (0.0, 0.0)
