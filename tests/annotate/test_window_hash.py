"""Window hashes: the boxes, exact agreement with imagehash's pHash of each window, determinism,
and crops and flips matched through windows where the plain pHash misses them, while distinct
pictures stay apart. Real photographs: matplotlib's grace_hopper always (a dependency); the
photographs of scikit-image and scikit-learn when installed (`.[bench]`)."""

from __future__ import annotations

import importlib.util
import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.annotate.phash import hamming, open_for_hash, phash_bytes, phash_image
from pipeline.annotate.window_hash import (
    SIDE_WINDOWS,
    WINDOWS,
    Window,
    window_box,
    window_hashes,
    window_hashes_bytes,
)
from pipeline.config import load_config
from pipeline.demo.synthetic_web import CLASSES, render_picture

RADIUS = load_config().dedup.max_distance


def _store(image: Image.Image) -> bytes:
    """As the download stage stores pictures: smaller side 256 px, JPEG."""
    width, height = image.size
    side = min(width, height)
    if side > 256:
        image = image.resize(
            (round(width * 256 / side), round(height * 256 / side)), Image.Resampling.LANCZOS
        )
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=75)
    return buf.getvalue()


def _cut(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    width, height = image.size
    return image.crop(
        (
            round(left * width),
            round(top * height),
            width - round(right * width),
            height - round(bottom * height),
        )
    )


def _all_hashes(data: bytes) -> list[int]:
    return [phash_bytes(data)[0], *window_hashes_bytes(data)]


def _distance(a: list[int], b: list[int]) -> int:
    """The dedup rule: the closest pair of any hash of one and any hash of the other."""
    return min(hamming(x, y) for x in a for y in b)


def _synthetic(seed: int) -> Image.Image:
    return render_picture(np.random.default_rng(seed), CLASSES[seed % len(CLASSES)], 416, 480)


def _package_photo(package: str, folder: str, name: str) -> Image.Image:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = {"skimage": "scikit-image", "sklearn": "scikit-learn"}.get(package, package)
        pytest.skip(
            f"{dist} not installed: its sample photographs come with `pip install -e .[dev]`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / folder / name
    with Image.open(path) as image:
        return image.convert("RGB")


GRACE_HOPPER = ("matplotlib", "mpl-data/sample_data", "grace_hopper.jpg")
PHOTOS = [
    ("skimage", "data", "astronaut.png"),
    ("skimage", "data", "coffee.png"),
    ("skimage", "data", "chelsea.png"),
    ("skimage", "data", "rocket.jpg"),
    ("sklearn", "datasets/images", "china.jpg"),
    ("sklearn", "datasets/images", "flower.jpg"),
]


def test_windows_are_the_documented_ones():
    assert [w.name for w in WINDOWS] == [
        "center0.9",
        "center0.8",
        "width0.9",
        "height0.9",
        "width0.8",
        "height0.8",
        "mirror",
    ]
    assert [w.name for w in SIDE_WINDOWS] == [
        "left0.9",
        "top0.9",
        "right0.9",
        "bottom0.9",
    ]
    assert [w.mirror for w in WINDOWS].count(True) == 1


@pytest.mark.parametrize(
    ("window", "size", "box"),
    [
        (WINDOWS[0], (64, 64), (3, 3, 61, 61)),  # center0.9: 5 % off each side
        (WINDOWS[1], (64, 96), (6, 10, 58, 86)),  # center0.8: 10 % off each side
        (WINDOWS[2], (100, 80), (5, 0, 95, 80)),  # width0.9
        (WINDOWS[3], (100, 80), (0, 4, 100, 76)),  # height0.9
        (WINDOWS[6], (100, 80), (0, 0, 100, 80)),  # mirror: the full frame
        (SIDE_WINDOWS[0], (100, 80), (10, 0, 100, 80)),  # left0.9
        (SIDE_WINDOWS[3], (100, 80), (0, 0, 100, 72)),  # bottom0.9
        (Window("tiny", 0.5, 0.5, 0.5, 0.5), (3, 3), (2, 2, 3, 3)),  # never empty
    ],
)
def test_window_box(window, size, box):
    assert window_box(window, *size) == box


def test_flat_windows_are_left_out():
    """Two different mostly-white pictures share blank central windows: those hash alike, so
    they are not stored, and the pictures do not meet through them."""
    first = Image.new("RGB", (200, 200), "white")
    first.paste((0, 0, 0), (0, 0, 20, 20))
    second = Image.new("RGB", (200, 200), "white")
    second.paste((255, 0, 0), (185, 185, 195, 195))
    a, b = window_hashes_bytes(_store(first)), window_hashes_bytes(_store(second))
    assert set(a).isdisjoint(b)
    assert window_hashes_bytes(_store(Image.new("RGB", (300, 300), "white"))) == []


def test_count_and_determinism():
    data = _store(_synthetic(0))
    first = window_hashes_bytes(data)
    assert len(first) == len(WINDOWS) == 7
    assert all(-(1 << 63) <= h < (1 << 63) for h in first)
    assert window_hashes_bytes(data) == first
    assert window_hashes_bytes(data, windows=WINDOWS + SIDE_WINDOWS)[:7] == first
    assert len(window_hashes_bytes(data, windows=WINDOWS + SIDE_WINDOWS)) == 11
    assert window_hashes_bytes(data, windows=()) == []
    image, _, _ = open_for_hash(data, 64)
    with image:
        assert window_hashes(image) == first


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_window_is_exactly_imagehash_phash_of_that_crop(seed):
    """Window hashes compare bit for bit with full-frame pHashes of other images."""
    for image in (_synthetic(seed), _synthetic(seed).resize((300, 200))):
        draft, _, _ = open_for_hash(_store(image), 64)
        with draft:
            gray = draft.convert("L")
            ours = window_hashes(draft, WINDOWS + SIDE_WINDOWS)
        for window, value in zip(WINDOWS + SIDE_WINDOWS, ours, strict=True):
            crop = gray.crop(window_box(window, *gray.size))
            if window.mirror:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            assert value == phash_image(crop), window.name


CROPS = [
    # (copy, fractions cut from left, top, right, bottom)
    ("5 % off every side", (0.05, 0.05, 0.05, 0.05)),
    ("10 % off every side", (0.1, 0.1, 0.1, 0.1)),
    ("10 % off left and right", (0.1, 0.0, 0.1, 0.0)),
    ("10 % off top and bottom", (0.0, 0.1, 0.0, 0.1)),
]


@pytest.mark.parametrize("seed", [0, 4, 5])
@pytest.mark.parametrize(("copy", "cut"), CROPS, ids=[c[0] for c in CROPS])
def test_synthetic_crop_matched_through_windows_not_by_plain_phash(seed, copy, cut):
    picture = _synthetic(seed)
    original, cropped = _store(picture), _store(_cut(picture, *cut))
    assert hamming(phash_bytes(original)[0], phash_bytes(cropped)[0]) > RADIUS
    assert _distance(_all_hashes(original), _all_hashes(cropped)) <= 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flip_matched_through_the_mirror_window(seed):
    picture = _synthetic(seed)
    original = _store(picture)
    flipped = _store(picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert hamming(phash_bytes(original)[0], phash_bytes(flipped)[0]) > RADIUS
    assert _distance(_all_hashes(original), _all_hashes(flipped)) <= 2


def test_distinct_synthetic_pictures_not_matched():
    hashes = [_all_hashes(_store(_synthetic(seed))) for seed in range(24)]
    closest = min(_distance(a, b) for a, b in itertools.combinations(hashes, 2))
    assert closest > RADIUS + 2


@pytest.mark.parametrize(("copy", "cut"), CROPS, ids=[c[0] for c in CROPS])
def test_real_photograph_crop_matched(copy, cut):
    photo = _package_photo(*GRACE_HOPPER)
    original, cropped = _store(photo), _store(_cut(photo, *cut))
    assert _distance(_all_hashes(original), _all_hashes(cropped)) <= RADIUS


def test_real_photograph_flip_and_plain_phash_miss():
    photo = _package_photo(*GRACE_HOPPER)
    original = _store(photo)
    cropped = _store(_cut(photo, 0.05, 0.05, 0.05, 0.05))
    flipped = _store(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert hamming(phash_bytes(original)[0], phash_bytes(cropped)[0]) > RADIUS
    assert _distance(_all_hashes(original), _all_hashes(flipped)) <= RADIUS


@pytest.mark.parametrize("source", PHOTOS, ids=[p[2] for p in PHOTOS])
def test_package_photographs_cropped_5_percent_matched(source):
    photo = _package_photo(*source)
    original = _all_hashes(_store(photo))
    for cut in ((0.05, 0.05, 0.05, 0.05), (0.05, 0.0, 0.05, 0.0), (0.0, 0.05, 0.0, 0.05)):
        assert _distance(original, _all_hashes(_store(_cut(photo, *cut)))) <= RADIUS, cut


def test_distinct_package_photographs_not_matched():
    photos = [_package_photo(*source) for source in [GRACE_HOPPER, *PHOTOS]]
    hashes = [_all_hashes(_store(p)) for p in photos]
    closest = min(_distance(a, b) for a, b in itertools.combinations(hashes, 2))
    assert closest > RADIUS


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_one_sided_crop_needs_the_side_windows(seed):
    """10 % off one side: beyond the default windows, matched once SIDE_WINDOWS are added."""
    picture = _synthetic(seed)
    original, cropped = _store(picture), _store(_cut(picture, 0.1, 0.0, 0.0, 0.0))

    def hashes(data: bytes, windows: tuple[Window, ...]) -> list[int]:
        return [phash_bytes(data)[0], *window_hashes_bytes(data, windows=windows)]

    assert _distance(hashes(original, WINDOWS), hashes(cropped, WINDOWS)) > RADIUS
    both = WINDOWS + SIDE_WINDOWS
    assert _distance(hashes(original, both), hashes(cropped, both)) <= 2
