"""Crop-robust hashing on real photographs: recall of cropped and flipped copies, distinct
photographs merged, and cost per image, for plain pHash, pHash over sub-windows
(pipeline/annotate/window_hash.py) and imagehash's crop_resistant_hash.

The photographs are the ones scikit-image, scikit-learn and matplotlib ship (21 distinct, read from
the installed packages' files, no network). Each is stored the way the download stage stores
pictures (smaller side 256 px, JPEG quality 75) and hashed the way annotate hashes (JPEG draft
decode at annotate.draft_size). Copies: re-encode; crops of 2, 5, 10 % from every side (sym), from
the left and right or the top and bottom only (axis), from one side only (one: left, top, right,
bottom, each); a horizontal flip. A pair is matched when ANY hash of one is within the radius of
ANY hash of the other (crop_resistant_hash: its own `matches`, region_cutoff 1, hamming_cutoff
= radius). A synthetic set (pipeline.demo pictures) adds many more distinct pairs for the
false-merge tail.

Run with `make bench-crop-hash` (needs scikit-image and scikit-learn: `pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import itertools
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from benchmarks.common import report_ratio, timed
from pipeline.annotate.phash import open_for_hash, phash_image, to_unsigned
from pipeline.annotate.window_hash import SIDE_WINDOWS, WINDOWS, Window, window_hashes
from pipeline.config import load_config
from pipeline.demo.synthetic_web import CLASSES, render_picture

log = logging.getLogger(__name__)

# (package, folder inside it, files): photographs only (no drawings, charts or synthetic test
# cards; motorcycle_right is left out, being a stereo twin of motorcycle_left).
PHOTO_SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "skimage",
        "data",
        (
            "astronaut.png",
            "brick.png",
            "camera.png",
            "cell.png",
            "chelsea.png",
            "clock_motion.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "gravel.png",
            "hubble_deep_field.jpg",
            "ihc.png",
            "moon.png",
            "motorcycle_left.png",
            "page.png",
            "retina.jpg",
            "rocket.jpg",
            "text.png",
        ),
    ),
    ("sklearn", "datasets/images", ("china.jpg", "flower.jpg")),
    ("matplotlib", "mpl-data/sample_data", ("grace_hopper.jpg",)),
)
STORED_SIDE = 256  # download.image_size: smaller side, keep ratio, never upscaled
JPEG_QUALITY = 75
CROPS = (2, 5, 10)
RADII = (4, 6)

CENTRAL = tuple(w for w in WINDOWS if w.name in ("center0.9", "center0.8", "mirror"))
SCHEMES: dict[str, tuple[Window, ...]] = {
    "plain pHash": (),
    "central .9/.8+mirror": CENTRAL,
    "WINDOWS (default)": WINDOWS,
    "WINDOWS+SIDE_WINDOWS": WINDOWS + SIDE_WINDOWS,
}
CHOSEN = "WINDOWS (default)"


def package_file(package: str, folder: str, name: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / folder / name
    return path if path.exists() else None


def load_photos() -> dict[str, Image.Image]:
    photos, missing = {}, set()
    for package, folder, names in PHOTO_SOURCES:
        for name in names:
            path = package_file(package, folder, name)
            if path is None:
                missing.add(package)
                continue
            with Image.open(path) as image:
                photos[Path(name).stem] = image.convert("RGB")
    if missing:
        log.warning("photographs of %s missing: pip install -e .[bench]", sorted(missing))
    return photos


def store(image: Image.Image) -> bytes:
    """As the download stage stores a picture: smaller side 256 px (never upscaled), JPEG."""
    width, height = image.size
    side = min(width, height)
    if side > STORED_SIDE:
        size = (round(width * STORED_SIDE / side), round(height * STORED_SIDE / side))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def copies(image: Image.Image) -> dict[str, list[Image.Image]]:
    """Copies of a photograph by kind; a kind may hold several (one-sided: each side)."""
    width, height = image.size
    out: dict[str, list[Image.Image]] = {"reencode": [image]}
    for pct in CROPS:
        dx, dy = round(width * pct / 100), round(height * pct / 100)
        out[f"sym {pct}%"] = [image.crop((dx, dy, width - dx, height - dy))]
        out[f"axis {pct}%"] = [
            image.crop((dx, 0, width - dx, height)),
            image.crop((0, dy, width, height - dy)),
        ]
        out[f"one {pct}%"] = [
            image.crop(box)
            for box in (
                (dx, 0, width, height),
                (0, dy, width, height),
                (0, 0, width - dx, height),
                (0, 0, width, height - dy),
            )
        ]
    out["flip"] = [image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return out


ALL_WINDOWS = WINDOWS + SIDE_WINDOWS


def all_hashes(data: bytes, draft: int) -> dict[str, int]:
    """Full-frame pHash and every window's, by window name ("full" for the frame)."""
    image, _, _ = open_for_hash(data, draft)
    with image:
        full = phash_image(image)
        windows = window_hashes(image, ALL_WINDOWS)
    return {"full": full} | {w.name: h for w, h in zip(ALL_WINDOWS, windows, strict=True)}


def scheme_array(hashes: list[dict[str, int]], windows: tuple[Window, ...]) -> np.ndarray:
    """(items, 1 + windows) uint64 array of the hashes a scheme keeps."""
    names = ["full", *(w.name for w in windows)]
    return np.array([[to_unsigned(h[n]) for n in names] for h in hashes], dtype=np.uint64)


def min_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Smallest Hamming distance between any hash in a and any in b (flattened)."""
    x = np.bitwise_xor(a.reshape(-1, 1), b.reshape(1, -1))
    return int(np.bitwise_count(x).min())


class Photo:
    def __init__(self, name: str, original: bytes, kinds: dict[str, list[bytes]]) -> None:
        self.name, self.original, self.kinds = name, original, kinds

    def items(self) -> list[bytes]:
        return [self.original, *(d for ds in self.kinds.values() for d in ds)]


def recall_table(
    photos: list[Photo], distance: Callable[[int, int], int], kinds: list[str]
) -> dict[str, dict[int, float]]:
    """{kind: {radius: share of copies matched with their original}}; distance(photo, item)."""
    table: dict[str, dict[int, float]] = {}
    for kind in kinds:
        dists = []
        for p, photo in enumerate(photos):
            start = 1 + sum(len(photo.kinds[k]) for k in kinds[: kinds.index(kind)])
            dists += [distance(p, start + i) for i in range(len(photo.kinds[kind]))]
        table[kind] = {r: float(np.mean([d <= r for d in dists])) for r in RADII}
    return table


def distinct_figures(groups: list[np.ndarray]) -> tuple[list[int], int]:
    """Min distance for each pair of photographs (all their items and hashes); and the margin."""
    mins = [min_distance(a, b) for a, b in itertools.combinations(groups, 2)]
    return mins, min(mins)


def crh(data: bytes, draft: int) -> np.ndarray:
    """crop_resistant_hash's segment hashes (64-bit dHashes) as uint64. Its `matches` with
    region_cutoff 1 and hamming_cutoff r holds exactly when some segment pair is within r, so
    min_distance over these arrays is its matching rule."""
    image, _, _ = open_for_hash(data, draft)
    with image:
        multi = imagehash.crop_resistant_hash(image.convert("L"))
    return np.array([int(str(h), 16) for h in multi.segment_hashes], dtype=np.uint64)


def print_recall(tables: dict[str, dict[str, dict[int, float]]], kinds: list[str]) -> None:
    names = list(tables)
    head = "".join(f"{f'{n} r={r}':>26}" for n in names for r in RADII)
    print(f"\nrecall (copies matched with their original), {len(kinds)} kinds:")
    print(f"{'kind':<12}{head}")
    for kind in kinds:
        cells = "".join(f"{tables[n][kind][r]:>26.2f}" for n in names for r in RADII)
        print(f"{kind:<12}{cells}")


def synthetic_jpegs(n: int) -> list[bytes]:
    """n distinct demo pictures (416x480), stored as the download stage would store them."""
    rng = np.random.default_rng(1)
    return [store(render_picture(rng, CLASSES[i % len(CLASSES)], 416, 480)) for i in range(n)]


def cost_per_image(
    data: list[bytes], draft: int, windows: tuple[Window, ...], repeat: int
) -> float:
    def run() -> None:
        for d in data:
            image, _, _ = open_for_hash(d, draft)
            with image:
                phash_image(image)
                if windows:
                    window_hashes(image, windows)

    run()  # warm-up
    seconds = min(timed(run)[0] for _ in range(repeat))
    return seconds / len(data) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synthetic", type=int, default=600, help="distinct demo pictures")
    parser.add_argument("--no-crh", action="store_true", help="skip crop_resistant_hash (slow)")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs (best is kept)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    draft = load_config().annotate.draft_size
    default_radius = load_config().dedup.max_distance

    images = load_photos()
    if len(images) < 2:
        sys.exit("bench_crop_hash: needs scikit-image and scikit-learn (pip install -e .[bench])")
    photos = []
    for name, image in images.items():
        kinds = {k: [store(c) for c in cs] for k, cs in copies(image).items()}
        photos.append(Photo(name, store(image), kinds))
    kinds = list(photos[0].kinds)
    n_items = sum(len(p.items()) for p in photos)
    print(
        f"{len(photos)} photographs, {n_items} stored JPEGs (originals + copies), "
        f"draft_size {draft}, default radius {default_radius}"
    )

    hashes = [[all_hashes(d, draft) for d in p.items()] for p in photos]
    tables, distinct = {}, {}
    for name, windows in SCHEMES.items():
        groups = [scheme_array(h, windows) for h in hashes]
        tables[name] = recall_table(
            photos, lambda p, i, g=groups: min_distance(g[p][0], g[p][i]), kinds
        )
        distinct[name] = distinct_figures(groups)
    crh_ms = None
    if not args.no_crh:
        crh_s, multi = timed(lambda: [[crh(d, draft) for d in p.items()] for p in photos])
        crh_ms = crh_s / n_items * 1000
        tables["crop_resistant_hash"] = recall_table(
            photos, lambda p, i: min_distance(multi[p][0], multi[p][i]), kinds
        )
    print_recall(tables, kinds)

    pairs = len(photos) * (len(photos) - 1) // 2
    print(
        f"\ndistinct photographs merged ({pairs} pairs, every copy of one vs every copy of other):"
    )
    for name, (mins, margin) in distinct.items():
        merged = {r: sum(m <= r for m in mins) for r in RADII}
        print(
            f"{name:<24} merged r=4: {merged[4]}, r=6: {merged[6]}; margin (smallest distance "
            f"between distinct photographs' hashes) {margin} bits; pairs within 10: "
            f"{sum(m <= 10 for m in mins)}"
        )
    if not args.no_crh:
        mins, margin = distinct_figures([np.concatenate(m) for m in multi])
        print(
            f"{'crop_resistant_hash':<24} merged r=4: {sum(m <= 4 for m in mins)}, r=6: "
            f"{sum(m <= 6 for m in mins)}; margin {margin} bits; pairs within 10: "
            f"{sum(m <= 10 for m in mins)}"
        )

    if args.synthetic:
        synth = synthetic_jpegs(args.synthetic)
        synth_hashes = [all_hashes(d, draft) for d in synth]
        spairs = len(synth) * (len(synth) - 1) // 2
        print(f"\ndistinct synthetic pictures merged ({len(synth)} pictures, {spairs:,} pairs):")
        for name, windows in SCHEMES.items():
            arr = scheme_array(synth_hashes, windows)
            per_pair = np.full((len(synth), len(synth)), 64, dtype=np.uint8)
            for a, b in itertools.product(range(arr.shape[1]), repeat=2):
                xor = np.bitwise_xor(arr[:, a, None], arr[None, :, b])
                np.minimum(per_pair, np.bitwise_count(xor), out=per_pair)
            upper = per_pair[np.triu_indices(len(synth), 1)]
            print(
                f"{name:<24} merged r=4: {int((upper <= 4).sum())}, r=6: "
                f"{int((upper <= 6).sum())}; margin {int(upper.min())} bits"
            )

    originals = [p.original for p in photos] * 10
    print(f"\ncost per image (draft decode + full-frame pHash + windows, {len(originals)} JPEGs):")
    plain_ms = cost_per_image(originals, draft, (), args.repeat)
    costs = {}
    for name, windows in SCHEMES.items():
        ms = plain_ms if not windows else cost_per_image(originals, draft, windows, args.repeat)
        costs[name] = ms
        print(f"{name:<24} {ms:6.3f} ms/image, {1 + len(windows):2d} hashes/image (index size)")
    if crh_ms is not None:
        segments = np.mean([len(m) for ms in multi for m in ms])
        print(
            f"{'crop_resistant_hash':<24} {crh_ms:6.1f} ms/image, {segments:4.1f} segment hashes/image"
        )

    # Targets: the (crops of 2-10 % at >= 0.95, no distinct photographs merged, at the
    # default radius); cost: each of the 7 windows at most half the plain path (decode + pHash).
    chosen, full = tables[CHOSEN], tables["WINDOWS+SIDE_WINDOWS"]
    r = default_radius
    sym_axis = [k for k in kinds if k.startswith(("sym", "axis"))]
    one_sided = [k for k in kinds if k.startswith("one")]
    report_ratio("crop_hash_cost", costs[CHOSEN] / plain_ms, "<=", 1 + 0.5 * len(WINDOWS))
    report_ratio("crop_hash_cost_with_side_windows", costs["WINDOWS+SIDE_WINDOWS"] / plain_ms)
    report_ratio("crop_hash_hashes_per_image", 1 + len(WINDOWS))
    report_ratio("crop_hash_recall_sym_axis_min", min(chosen[k][r] for k in sym_axis), ">=", 0.95)
    report_ratio("crop_hash_recall_flip", chosen["flip"][r], ">=", 0.95)
    report_ratio("crop_hash_recall_one_sided_min", min(chosen[k][r] for k in one_sided), ">=", 0.95)
    report_ratio(
        "crop_hash_recall_one_sided_min_with_side_windows",
        min(full[k][r] for k in one_sided),
        ">=",
        0.95,
    )
    merged = sum(m <= r for m in distinct[CHOSEN][0])
    report_ratio("crop_hash_distinct_photos_merged", merged, "<=", 0)
    merged = sum(m <= r for m in distinct["WINDOWS+SIDE_WINDOWS"][0])
    report_ratio("crop_hash_distinct_photos_merged_with_side_windows", merged, "<=", 0)


if __name__ == "__main__":
    main()
