"""Paired differences between two selections' evaluations, with a bootstrap interval.

Both selections are trained with the same seeds (model init and data order) and evaluated on
the same images, so the difference is paired twice: by seed and by image. The interval resamples
both, seeds then images, the two-stage (hierarchical) bootstrap: it holds the training noise a
seed brings and the sampling noise of a finite evaluation set. With one seed it holds the
second alone, and says so (`seeds`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Resamples are drawn in chunks so that memory stays (chunk x images) whatever `resamples` is.
_CHUNK = 256


@dataclass(frozen=True)
class Difference:
    """Selection minus baseline on one metric (a share: 0.05 is 5 points)."""

    mean: float
    low: float
    high: float
    confidence: float
    seeds: int
    images: int

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict:
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "seeds": self.seeds,
            "images": self.images,
            "significant": self.significant,
        }


def paired_difference(
    hits: np.ndarray,
    baseline_hits: np.ndarray,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Difference:
    """`hits` and `baseline_hits`: (seeds, images) arrays of 0/1 (or per-image scores), row i of
    both from training seed i. The mean over seeds of the per-seed accuracy difference, and its
    percentile interval over `resamples` two-stage bootstrap draws (fixed `seed`: the same
    inputs give the same interval)."""
    a = np.asarray(hits, dtype=np.float64)
    b = np.asarray(baseline_hits, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or 0 in a.shape:
        raise ValueError(
            f"expected two (seeds, images) arrays of one shape, got {a.shape}, {b.shape}"
        )
    diff = a - b
    n_seeds, n_images = diff.shape
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, resamples, _CHUNK):
        size = min(_CHUNK, resamples - start)
        seed_counts = _counts(rng.integers(n_seeds, size=(size, n_seeds)), n_seeds) / n_seeds
        image_counts = _counts(rng.integers(n_images, size=(size, n_images)), n_images) / n_images
        # Draw r: mean over its resampled seeds of the mean over its resampled images.
        draws.append(np.einsum("rk,kn,rn->r", seed_counts, diff, image_counts))
    values = np.concatenate(draws)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Difference(float(diff.mean()), float(low), float(high), confidence, n_seeds, n_images)


def _counts(indices: np.ndarray, width: int) -> np.ndarray:
    """(rows, width) counts of each index in each row of `indices`."""
    rows = indices.shape[0]
    flat = indices + (np.arange(rows) * width)[:, None]
    return np.bincount(flat.ravel(), minlength=rows * width).reshape(rows, width).astype(float)


def describe(name: str, baseline: str, metric: str, d: Difference) -> str:
    """One line of the conclusions a comparison prints, only what its interval supports."""
    interval = f"{d.confidence:.0%} interval [{d.low * 100:+.1f}, {d.high * 100:+.1f}]"
    seeds = f"{d.seeds} seed{'s' if d.seeds != 1 else ''}, {d.images} images"
    if d.significant:
        return f"{name} vs {baseline}, {metric}: {d.mean * 100:+.1f} points, {interval} ({seeds})"
    return (
        f"{name} vs {baseline}, {metric}: no difference detected "
        f"({d.mean * 100:+.1f} points, {interval}; {seeds})"
    )
