"""pHash throughput on 512 px JPEGs: our hashing (JPEG draft decode + imagehash.phash) vs
imagehash.phash on fully decoded images, and proof that the same duplicates are still found.

Run with `make bench-phash`.
"""

from __future__ import annotations

import argparse
import io
import itertools
import logging

import imagehash
import numpy as np
from PIL import Image

from benchmarks.common import report_rate, report_ratio, timed
from pipeline.annotate.phash import hamming, phash_bytes, to_signed
from pipeline.config import load_config
from pipeline.demo.synthetic_web import CLASSES, render_picture


def make_jpegs(n: int, size: int = 512) -> tuple[list[bytes], list[bytes]]:
    """n distinct pictures as 512 px JPEGs, and a re-encoded copy (quality 40) of each."""
    rng = np.random.default_rng(0)
    originals, copies = [], []
    for i in range(n):
        picture = render_picture(rng, CLASSES[i % len(CLASSES)], size, size)
        for quality, out in ((90, originals), (40, copies)):
            buf = io.BytesIO()
            picture.save(buf, "JPEG", quality=quality)
            out.append(buf.getvalue())
    return originals, copies


def full_decode_hash(data: bytes) -> int:
    return to_signed(int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16))


def pairs_within(hashes: list[int], radius: int) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i, j in itertools.combinations(range(len(hashes)), 2)
        if hamming(hashes[i], hashes[j]) <= radius
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=600)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    draft = load_config().annotate.draft_size
    radius = load_config().dedup.max_distance
    originals, copies = make_jpegs(args.images)
    data = originals + copies
    phash_bytes(data[0], draft), full_decode_hash(data[0])  # warm-up: imports, scipy
    ours_s, ours = timed(lambda: [phash_bytes(d, draft)[0] for d in data])
    full_s, full = timed(lambda: [full_decode_hash(d) for d in data])
    report_rate("phash_ours_draft", len(data), ours_s, "images/s")
    report_rate("phash_imagehash_full_decode", len(data), full_s, "images/s")
    n = args.images
    found_ours = {(i, j) for i, j in pairs_within(ours, radius) if j == i + n}
    found_full = {(i, j) for i, j in pairs_within(full, radius) if j == i + n}
    print(
        f"planted re-encode pairs found: ours {len(found_ours)}/{n}, full decode {len(found_full)}/{n}"
    )
    false_ours = len(pairs_within(ours, radius)) - len(found_ours)
    false_full = len(pairs_within(full, radius)) - len(found_full)
    print(f"other pairs within radius {radius}: ours {false_ours}, full decode {false_full}")
    draft_vs_full = [hamming(a, b) for a, b in zip(ours, full, strict=True)]
    print(
        f"bits between draft and full hashes: mean {np.mean(draft_vs_full):.2f}, max {max(draft_vs_full)}"
    )
    report_ratio("phash_ours_vs_full_decode", full_s / ours_s, ">=", 1.5)


if __name__ == "__main__":
    main()
