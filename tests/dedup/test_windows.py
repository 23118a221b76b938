"""The dedup plan with crop windows: a real photograph's crop and mirror image join its cluster
through the window hashes and are dropped as near duplicates; without dedup.crop_windows they
stay apart; distinct photographs never merge; clusters keep their full-frame pHash name."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest
from PIL import Image

from pipeline.annotate.window_hash import hashes_bytes
from pipeline.config import load_config
from pipeline.dedup.plan import dedup_decisions
from tests.annotate.test_window_hash import GRACE_HOPPER, _cut, _package_photo, _store


def _annotations(spark, images: dict[str, bytes]):
    rows = []
    for uid, data in images.items():
        phash, windows, width, height = hashes_bytes(data)
        if uid in ORIGINALS:  # the originals are the largest: dedup.keep keeps them
            width, height = 2 * width, 2 * height
        rows.append(
            {
                "uid": uid,
                "phash": phash,
                "window_phashes": windows,
                "sha256": hashlib.sha256(data).hexdigest(),
                "original_width": width,
                "original_height": height,
            }
        )
    schema = pa.schema(
        [
            ("uid", pa.string()),
            ("phash", pa.int64()),
            ("window_phashes", pa.list_(pa.int64())),
            ("sha256", pa.string()),
            ("original_width", pa.int32()),
            ("original_height", pa.int32()),
        ]
    )
    return spark.createDataFrame(pa.Table.from_pylist(rows, schema)).repartition(3)


ORIGINALS = ("a-original", "d-other")


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    hopper = _package_photo(*GRACE_HOPPER)
    coffee = _package_photo("skimage", "data", "coffee.png")
    return {
        "a-original": _store(hopper),
        "b-crop5": _store(_cut(hopper, 0.05, 0.05, 0.05, 0.05)),
        "c-flip": _store(hopper.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "d-other": _store(coffee),
        "e-other-crop10": _store(_cut(coffee, 0.1, 0.1, 0.1, 0.1)),
    }


@pytest.mark.parametrize(
    ("crop_windows", "expected"),
    [
        (
            True,
            {
                "a-original": None,
                "b-crop5": "dedup.near_duplicate",
                "c-flip": "dedup.near_duplicate",
                "d-other": None,
                "e-other-crop10": "dedup.near_duplicate",
            },
        ),
        (False, dict.fromkeys(["a-original", "b-crop5", "c-flip", "d-other", "e-other-crop10"])),
    ],
)
def test_crops_and_flips_join_their_original(spark, photos, crop_windows, expected):
    cfg = load_config(None, [f"dedup.crop_windows={str(crop_windows).lower()}"]).dedup
    frame, figures = dedup_decisions(spark, _annotations(spark, photos), [], cfg)
    rows = {r["uid"]: r for r in frame.collect()}
    assert {u: r["reason"] for u, r in rows.items()} == expected
    hashes = {u: hashes_bytes(d)[0] for u, d in photos.items()}
    if crop_windows:
        # The kept sample is the largest original; the cluster is its smallest full-frame pHash.
        assert rows["b-crop5"]["detail"] == rows["c-flip"]["detail"] == "a-original"
        assert rows["e-other-crop10"]["detail"] == "d-other"
        group = [hashes[u] for u in ("a-original", "b-crop5", "c-flip")]
        assert {rows[u]["cluster"] for u in ("a-original", "b-crop5", "c-flip")} == {min(group)}
        assert figures["window_links"] > 0
    else:
        assert "window_links" not in figures
