"""The noise plan of the synthetic web: how many pairs of each noise kind, and for every row its
kind, class, caption, URL and duplicate link, decided before any pixel is drawn."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from pipeline.demo.captions import (
    _SHORT_BOILERPLATE,
    BOILERPLATE_PHRASES,
    LANGUAGES,
    _pick,
    english_caption,
    foreign_caption,
    off_target_caption,
)
from pipeline.demo.pictures import CLASSES
from schemas.ground_truth import (
    DUPLICATE_KINDS,
    FILE_BACKED_FAULTS,
    NOISE_KINDS,
    PICTURELESS_FAULTS,
    ROBOTS_DISALLOWED_PREFIX,
)

# ALIGN drops alt-texts shared by more than 10 images; each boilerplate phrase that is used at all
# appears at least this often, so that rule catches every one of them.
MIN_BOILERPLATE_REPEATS = 15

# Independent random streams: adding a row or a kind never changes another stream's draws.
# All of the generator's are numbered here, so that no two share a number.
_STREAM_PLAN = 1
_STREAM_PIXELS = 2
_STREAM_ORDER = 3
_STREAM_EVAL = 4
_STREAM_CLASSES = 5
_STREAM_HEAD = 6
_STREAM_EVAL_CAPTIONS = 7


@dataclass(frozen=True)
class NoiseMix:
    """Fraction of pairs per noise kind; field names are the `noise` values, in NOISE_KINDS order.
    Must sum to 1."""

    clean: float = 0.45
    mismatched_caption: float = 0.10
    boilerplate_caption: float = 0.08
    non_english: float = 0.08
    # Off by default (the test webs stay as they were); the demo's web plants them.
    off_target: float = 0.0
    exact_duplicate: float = 0.04
    near_duplicate_reencode: float = 0.03
    near_duplicate_resize: float = 0.03
    near_duplicate_crop: float = 0.03
    # Off by default, so that a web generated without naming them is the one it always was (the
    # test webs, whose pHash-only dedup must find every copy); the demo's web plants them.
    variant_crop: float = 0.0
    variant_flip: float = 0.0
    variant_colour: float = 0.0
    variant_overlay: float = 0.0
    small_image: float = 0.04
    extreme_aspect: float = 0.03
    fault_404: float = 0.01
    fault_500: float = 0.01
    fault_slow: float = 0.01
    fault_truncated: float = 0.01
    fault_html: float = 0.01
    fault_empty: float = 0.01
    fault_bomb: float = 0.01
    fault_noai: float = 0.01
    fault_redirect: float = 0.01
    # Off by default (the test webs stay as they were); the demo's web plants them.
    blocklisted_url: float = 0.0
    blocklisted_image: float = 0.0
    robots_disallowed: float = 0.0

    def __post_init__(self) -> None:
        fractions = self.fractions()
        bad = {k: v for k, v in fractions.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"noise fractions must be finite and >= 0, got {bad}")
        total = sum(fractions.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"noise fractions must sum to 1, got {total:.6f}")

    def fractions(self) -> dict[str, float]:
        """Noise kind -> fraction, in NOISE_KINDS order."""
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def counts(self, n_pairs: int) -> dict[str, int]:
        """Exact row count per kind for `n_pairs` rows (largest remainder, so they sum to n)."""
        fractions = self.fractions()
        exact = {k: f * n_pairs for k, f in fractions.items()}
        counts = {k: math.floor(v + 1e-9) for k, v in exact.items()}
        left = n_pairs - sum(counts.values())
        # Ties broken by NOISE_KINDS order, so the counts never depend on dict or float quirks.
        by_remainder = sorted(exact, key=lambda k: (-(exact[k] - counts[k]), NOISE_KINDS.index(k)))
        for k in by_remainder[:left]:
            counts[k] += 1
        return counts


@dataclass
class _Row:
    gt_id: int
    noise: str
    path: str
    caption: str = ""
    label: str | None = None
    caption_label: str | None = None
    duplicate_of: int | None = None
    width: int | None = None
    height: int | None = None
    language: str | None = None
    # Where the picture's file goes (relative to files_dir); None when the route needs no file.
    file: str | None = None


def _path_for(gt_id: int, noise: str) -> tuple[str, str | None]:
    """(URL path, file path) of a row; fault kinds live under the server's fault/ routes."""
    image = f"images/{gt_id:06d}.jpg"
    if noise == "robots_disallowed":
        return ROBOTS_DISALLOWED_PREFIX + image, ROBOTS_DISALLOWED_PREFIX + image
    if noise == "fault_redirect":
        return f"fault/redirect/{image}", image
    if noise == "fault_bomb":
        return f"fault/bomb/{gt_id:06d}.png", None
    if noise.startswith("fault_"):
        kind = noise.removeprefix("fault_")
        path = f"fault/{kind}/{gt_id:06d}.jpg"
        return path, (path if noise in FILE_BACKED_FAULTS else None)
    return image, image


def class_weights(tail: float, seed: int) -> np.ndarray | None:
    """The share of pairs per class (CLASSES order): None (uniform) when `tail` is 0, else a
    Zipf law, weight 1 / rank**tail, over a seeded ranking of the classes. Web pools are
    long-tailed (MetaCLIP: about 16k of 500k entries hold most matches); at tail 1.0 the four
    head classes of 36 hold half of the pairs and each of the 18 rarest under 1 %."""
    if tail == 0:
        return None
    rank = np.empty(len(CLASSES), np.int64)
    rank[np.random.default_rng([seed, _STREAM_CLASSES]).permutation(len(CLASSES))] = np.arange(
        len(CLASSES)
    )
    weights = 1.0 / (rank + 1.0) ** tail
    return weights / weights.sum()


def _plan(n_pairs: int, seed: int, mix: NoiseMix, tail: float = 0.0) -> list[_Row]:
    """Decide every row's noise kind, classes, captions and duplicate links (no pixels yet)."""
    rng = np.random.default_rng([seed, _STREAM_PLAN])
    weights = class_weights(tail, seed)
    counts = mix.counts(n_pairs)
    kinds = [k for k in NOISE_KINDS for _ in range(counts[k])]
    clean = [i for i, k in enumerate(kinds) if k == "clean"]
    dups = [i for i, k in enumerate(kinds) if k in DUPLICATE_KINDS]
    if dups and not clean:
        raise ValueError("duplicate noise kinds need at least one clean row to copy")
    # Originals drawn uniformly from all clean rows, so duplicates are spread over the whole web.
    source = {d: clean[int(rng.integers(len(clean)))] for d in dups}
    # A random order in which every duplicate follows its original: a duplicate whose key falls
    # before its original's gets a new key after it (ties keep kinds order: clean rows first).
    keys = rng.random(len(kinds))
    for dup, original in source.items():
        if keys[dup] < keys[original]:
            keys[dup] = rng.uniform(keys[original], 1.0)
    order = np.argsort(keys, kind="stable")
    gt_of = np.empty(len(kinds), dtype=np.int64)
    gt_of[order] = np.arange(len(kinds))

    n_boiler = counts["boilerplate_caption"]
    n_short = n_boiler // 3
    n_multi = n_boiler - n_short
    # Few enough distinct phrases that each used one repeats >= MIN_BOILERPLATE_REPEATS times.
    n_phrases = max(1, min(len(BOILERPLATE_PHRASES), n_multi // MIN_BOILERPLATE_REPEATS))
    boiler_seen = 0

    rows: list[_Row] = []
    for gt_id, spec in enumerate(order.tolist()):
        noise = kinds[spec]
        path, file = _path_for(gt_id, noise)
        row = _Row(gt_id=gt_id, noise=noise, path=path, file=file, language="en")
        if weights is None:
            label = CLASSES[int(rng.integers(len(CLASSES)))]
        else:
            label = CLASSES[int(rng.choice(len(CLASSES), p=weights))]
        row.label = label
        row.caption_label = label
        if noise in DUPLICATE_KINDS:
            original = rows[int(gt_of[source[spec]])]
            row.duplicate_of = original.gt_id
            row.label = row.caption_label = original.label
        elif noise == "mismatched_caption":
            others = [c for c in CLASSES if c != label]
            row.caption_label = others[int(rng.integers(len(others)))]
        elif noise == "non_english":
            row.language = _pick(rng, LANGUAGES)
        elif noise == "off_target":
            row.label = row.caption_label = None
            row.caption = off_target_caption(rng)
        elif noise == "boilerplate_caption":
            row.caption_label = None
            row.language = None
            if boiler_seen < n_multi:
                row.caption = BOILERPLATE_PHRASES[boiler_seen % n_phrases]
            else:
                short = int(rng.integers(len(_SHORT_BOILERPLATE) + 2))
                if short < len(_SHORT_BOILERPLATE):
                    row.caption = _SHORT_BOILERPLATE[short]
                elif short == len(_SHORT_BOILERPLATE):
                    row.caption = f"IMG_{int(rng.integers(1000, 10000))}.JPG"
                else:
                    row.caption = f"DSC{int(rng.integers(10000, 100000))}.jpg"
            boiler_seen += 1
        if noise in PICTURELESS_FAULTS:
            row.label = None
        if noise not in ("boilerplate_caption", "off_target"):
            assert row.caption_label is not None
            taken = rows[row.duplicate_of].caption if row.duplicate_of is not None else None
            # A duplicate's caption differs from its original's: the same picture re-posted.
            while row.caption in ("", taken):
                if row.language == "en":
                    row.caption = english_caption(rng, row.caption_label)
                else:
                    row.caption = foreign_caption(rng, row.caption_label, row.language or "")
        rows.append(row)
    return rows


def _picture_size(rng: np.random.Generator, noise: str, size: tuple[int, int]) -> tuple[int, int]:
    if noise == "small_image":
        # Shorter side under DataComp's / ALIGN's 200 px minimum; aspect kept ordinary.
        short = int(rng.integers(64, 151))
        long = int(short * rng.uniform(1.0, 1.5))
    elif noise == "extreme_aspect":
        # Aspect ratio over 3 (ALIGN, DataComp) with a shorter side that passes the size rule.
        short = int(rng.integers(210, 257))
        long = int(short * rng.uniform(3.3, 4.5))
    else:
        return size
    return (long, short) if rng.random() < 0.5 else (short, long)
