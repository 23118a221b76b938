"""Index rows with annotate's real hash mix: each image's full-frame pHash plus its window hashes
(`pipeline/annotate/window_hash.py`, dedup.crop_windows), built so that the hashes of one image lie
from each other exactly as a real photograph's do.

How the windows sit around their image's pHash is measured first, on real photographs: the 21
that scikit-image, scikit-learn and matplotlib ship (`bench_crop_hash.load_photos`), each stored
as the download stage stores it and as every copy of `bench_crop_hash.copies` (re-encodes, crops,
flip), hashed as annotate hashes. Each stored picture gives a template: the XOR of each window's
hash with the full frame's (None for a window left out as flat). A generated image takes a
template, permutes its bit positions (one of PERMUTATIONS fixed permutations: a permutation of the
64 positions keeps every Hamming distance) and XORs it onto its own full-frame hash, drawn by
`bench_dedup.make_mix` (uniform pictures, near-duplicate families, exact repeats). So the
distances among the 8 hashes of one generated image are exactly those among a real image's, and
distances across images follow the mix. An exact repeat of a picture repeats its windows too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from benchmarks.bench_crop_hash import copies, load_photos, store
from benchmarks.bench_dedup import make_mix
from pipeline.annotate.phash import open_for_hash, phash_image, to_unsigned
from pipeline.annotate.window_hash import WINDOWS, window_hashes

log = logging.getLogger(__name__)
PERMUTATIONS = 64
# Rows of one image in the index: the full frame and one hash a window.
HASHES_AN_IMAGE = 1 + len(WINDOWS)


@dataclass(frozen=True)
class Templates:
    """XOR offsets of each window's hash from its picture's full-frame pHash, one row a real
    stored picture; `present` False where the window was left out as flat."""

    offsets: np.ndarray  # (pictures, windows) uint64
    present: np.ndarray  # (pictures, windows) bool


def real_templates(draft_size: int) -> Templates:
    """The templates of every stored copy of every packaged photograph."""
    offsets, present = [], []
    for photo in load_photos().values():
        pictures = [photo, *(c for group in copies(photo).values() for c in group)]
        for picture in pictures:
            image, _, _ = open_for_hash(store(picture), draft_size)
            with image:
                full = to_unsigned(phash_image(image))
                row, have = [], []
                for window in WINDOWS:  # one at a time: a flat window returns nothing
                    found = window_hashes(image, (window,))
                    row.append(to_unsigned(found[0]) ^ full if found else 0)
                    have.append(bool(found))
            offsets.append(row)
            present.append(have)
    if not offsets:
        raise RuntimeError("no photographs to measure: pip install -e .[bench]")
    return Templates(np.array(offsets, np.uint64), np.array(present, bool))


def describe(templates: Templates, radii: tuple[int, ...] = (4, 6)) -> list[str]:
    """Lines stating the measured distribution: per window, the distance to the full frame
    (median, 10th and 90th percentile, share within each radius), and the share of all pairs
    among one picture's hashes within each radius."""
    lines = [f"window templates: {len(templates.offsets)} stored real pictures"]
    distances = np.bitwise_count(templates.offsets).astype(int)
    for i, window in enumerate(WINDOWS):
        d = distances[templates.present[:, i], i]
        if not len(d):
            continue
        shares = ", ".join(f"<= {r}: {np.mean(d <= r):.2f}" for r in radii)
        lines.append(
            f"  {window.name:<10} to full frame: median {np.median(d):.0f} bits "
            f"(p10 {np.percentile(d, 10):.0f}, p90 {np.percentile(d, 90):.0f}); {shares}; "
            f"flat {1 - templates.present[:, i].mean():.2f}"
        )
    within = pair_distances(templates)
    shares = ", ".join(f"<= {r}: {np.mean(within <= r):.3f}" for r in radii)
    lines.append(f"  pairs among one picture's {HASHES_AN_IMAGE} hashes: {shares}")
    return lines


def pair_distances(templates: Templates) -> np.ndarray:
    """Distances of every pair among each picture's present hashes (full frame as offset 0)."""
    rows = np.concatenate(
        [np.zeros((len(templates.offsets), 1), np.uint64), templates.offsets], axis=1
    )
    present = np.concatenate(
        [np.ones((len(templates.present), 1), bool), templates.present], axis=1
    )
    out = []
    for i in range(rows.shape[1]):
        for j in range(i + 1, rows.shape[1]):
            both = present[:, i] & present[:, j]
            out.append(np.bitwise_count(rows[both, i] ^ rows[both, j]))
    return np.concatenate(out).astype(int)


def permute_bits(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """values (uint64) with bit order[i] moved to position i."""
    bits = (values[..., None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    return (bits[..., order] << np.arange(64, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)


def template_bank(templates: Templates, seed: int) -> Templates:
    """Every template under each of PERMUTATIONS fixed bit permutations (the identity first)."""
    rng = np.random.default_rng(seed)
    orders = [np.arange(64)] + [rng.permutation(64) for _ in range(PERMUTATIONS - 1)]
    offsets = np.concatenate([permute_bits(templates.offsets, o) for o in orders])
    present = np.tile(templates.present, (PERMUTATIONS, 1))
    return Templates(offsets, present)


def _images_hashes(images: np.ndarray, bank: Templates, seed: int) -> np.ndarray:
    """Every hash of every image row (full frame and present windows), signed, with repeats;
    a repeated full-frame hash gets the same template, so the same windows."""
    full = images.view(np.uint64)
    distinct, inverse = np.unique(full, return_inverse=True)
    pick = np.random.default_rng(seed).integers(0, len(bank.offsets), len(distinct))
    windows = distinct[:, None] ^ bank.offsets[pick]
    present = bank.present[pick]
    per_image = np.concatenate([distinct[:, None], windows], axis=1)
    keep = np.concatenate([np.ones((len(distinct), 1), bool), present], axis=1)
    # Each image row contributes its picture's hashes; the repeats only repeat them.
    counts = np.bincount(inverse, minlength=len(distinct))
    rows = np.repeat(per_image[keep], np.repeat(counts, keep.sum(axis=1)))
    return rows.view(np.int64)


def make_window_mix(n_rows: int, templates: Templates, seed: int = 0) -> tuple[np.ndarray, dict]:
    """About n_rows distinct index rows of full-frame and window hashes (with their repeats), and
    the make-up: images drawn by make_mix, each with a real picture's window template."""
    bank = template_bank(templates, seed)
    hashes_an_image = 1 + bank.present.sum(axis=1).mean()
    # A first draw at a guessed size, then the real one sized by its distinct share.
    guess = max(1, round(n_rows / hashes_an_image))
    pictures, _ = make_mix(guess, seed)
    share = len(np.unique(_images_hashes(pictures, bank, seed + 1))) / guess
    pictures, makeup = make_mix(max(1, round(n_rows / share)), seed)
    rows = _images_hashes(pictures, bank, seed + 1)
    distinct = len(np.unique(rows))
    makeup = {
        "images": len(pictures),
        "image_distinct": makeup["distinct"],
        "rows": len(rows),
        "distinct": distinct,
        "hashes_an_image": round(float(hashes_an_image), 2),
        "templates": len(templates.offsets),
    }
    return rows, makeup
