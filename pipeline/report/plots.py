"""The report's figures, drawn with matplotlib (Agg, no display) and returned as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after use(): the backend must be chosen first
import numpy as np

FIGSIZE = (6.4, 3.4)
DPI = 100


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.tight_layout()
    fig.savefig(out, format="png", dpi=DPI)
    plt.close(fig)
    return out.getvalue()


def funnel_chart(stages: Sequence[str], rows_in: Sequence[int], rows_kept: Sequence[int]) -> bytes:
    """Rows entering and kept by each stage, as grouped bars."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    x = np.arange(len(stages))
    ax.bar(x - 0.2, rows_in, width=0.4, label="rows in", color="#9db4d3")
    ax.bar(x + 0.2, rows_kept, width=0.4, label="kept", color="#2c6fbb")
    ax.set_xticks(x, stages)
    ax.set_ylabel("rows")
    ax.legend()
    ax.set_title("Funnel")
    return _png(fig)


def histogram(
    values: Sequence[float],
    title: str,
    xlabel: str,
    bins: int = 40,
    threshold: float | None = None,
    threshold_label: str = "",
) -> bytes:
    """A histogram, with an optional vertical threshold line."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.hist(np.asarray(values, dtype=float), bins=bins, color="#2c6fbb")
    if threshold is not None:
        ax.axvline(threshold, color="#d62728", linestyle="--", label=threshold_label)
        ax.legend()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    return _png(fig)


def difference_chart(
    labels: Sequence[str],
    means: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    title: str,
) -> bytes:
    """Differences to a baseline in points, with their intervals as error bars and zero marked."""
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], max(2.0, 0.35 * len(labels) + 1)))
    y = np.arange(len(labels))
    m = np.asarray(means, dtype=float) * 100
    err = np.vstack([m - np.asarray(lows, float) * 100, np.asarray(highs, float) * 100 - m])
    ax.errorbar(m, y, xerr=err, fmt="o", color="#2c6fbb", capsize=4)
    ax.axvline(0, color="#777777", linestyle="--")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("difference to the baseline, points")
    ax.set_title(title)
    return _png(fig)


def bar_chart(labels: Sequence[str], counts: Sequence[int], title: str, xlabel: str) -> bytes:
    """Horizontal bars, largest first as given."""
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], max(2.0, 0.3 * len(labels) + 1)))
    y = np.arange(len(labels))
    ax.barh(y, counts, color="#2c6fbb")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _png(fig)


def size_scatter(widths: Sequence[int], heights: Sequence[int], title: str) -> bytes:
    """Original image sizes, one dot per image."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.scatter(widths, heights, s=6, alpha=0.4, color="#2c6fbb")
    ax.set_xlabel("original width (px)")
    ax.set_ylabel("original height (px)")
    ax.set_title(title)
    return _png(fig)


def loss_curves(curves: dict[str, tuple[Sequence[int], Sequence[float]]], title: str) -> bytes:
    """Training loss against step, one line per run."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    for name, (steps, losses) in curves.items():
        ax.plot(steps, losses, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title(title)
    ax.legend()
    return _png(fig)


def entry_rank_chart(
    ranks: Sequence[int], before: Sequence[int], after: Sequence[int], t: int
) -> bytes:
    """Matches per entry against its rank, before and after balancing, both axes log, with the
    cap t (MetaCLIP's head vs tail picture). An `after` of 0 is left out (no log of 0)."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.plot(ranks, before, marker="o", label="before", color="#9db4d3")
    kept = [(r, a) for r, a in zip(ranks, after, strict=True) if a > 0]
    ax.plot([r for r, _ in kept], [a for _, a in kept], marker="o", label="after", color="#2c6fbb")
    ax.axhline(t, color="#d62728", linestyle="--", label=f"t = {t:,}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("entry rank (by matches)")
    ax.set_ylabel("matches")
    ax.set_title("Entries: the head capped at t, the tail kept whole")
    ax.legend()
    return _png(fig)


def entry_bucket_chart(
    lows: Sequence[int], before: Sequence[int], after: Sequence[int], t: int
) -> bytes:
    """Entries per log2 bucket of their match count (labelled by its lower end), before and
    after balancing, entries on a log axis."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    x = np.arange(len(lows))
    ax.bar(x - 0.2, before, width=0.4, label="before", color="#9db4d3")
    ax.bar(x + 0.2, after, width=0.4, label="after", color="#2c6fbb")
    ax.set_xticks(x, [f"{lo:,}" for lo in lows], rotation=45)
    ax.set_yscale("log")
    ax.set_xlabel(f"matches per entry (log2 buckets; t = {t:,})")
    ax.set_ylabel("entries")
    ax.set_title("Entries by match count")
    ax.legend()
    return _png(fig)
