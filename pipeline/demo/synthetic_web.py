"""A synthetic web: image-text pairs with labelled noise of known kinds, written for a local
`ImageServer` with a ground-truth table saying which noise each pair carries, so each curation stage
can be scored against the truth. Its parts (captions, pictures, noise_plan) are re-exported here."""

from __future__ import annotations

import functools
import io
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.demo.captions import BOILERPLATE_PHRASES, LANGUAGES, english_caption, foreign_caption

# What the server sends at fault/bomb/: a PNG declaring BOMB_SIDE x BOMB_SIDE pixels.
from pipeline.demo.image_server import BOMB_SIDE
from pipeline.demo.noise_plan import (
    _STREAM_EVAL,
    _STREAM_EVAL_CAPTIONS,
    _STREAM_ORDER,
    _STREAM_PIXELS,
    MIN_BOILERPLATE_REPEATS,
    NoiseMix,
    _picture_size,
    _plan,
    class_weights,
)
from pipeline.demo.pictures import (
    CLASSES,
    COLOURS,
    DEFAULT_IMAGE_SIZE,
    JPEG_QUALITY,
    NEAR_DUPLICATE_JPEG_QUALITY,
    SHAPES,
    _jpeg_bytes,
    _near_duplicate,
    _variant,
    render_off_target,
    render_picture,
)
from pipeline.demo.render_pool import render_all
from pipeline.files import write_atomically
from schemas.ground_truth import (
    DUPLICATE_KINDS,
    FILE_BACKED_FAULTS,
    GROUND_TRUTH_SCHEMA,
    NOISE_KINDS,
    PICTURELESS_FAULTS,
    ROBOTS_DISALLOWED_PREFIX,
    VARIANT_KINDS,
)

# The names the rest of the project imports from here; they live in the modules above.
__all__ = [
    "BOILERPLATE_PHRASES",
    "CLASSES",
    "COLOURS",
    "DEFAULT_IMAGE_SIZE",
    "DUPLICATE_KINDS",
    "FILE_BACKED_FAULTS",
    "GROUND_TRUTH_SCHEMA",
    "JPEG_QUALITY",
    "LANGUAGES",
    "MIN_BOILERPLATE_REPEATS",
    "NEAR_DUPLICATE_JPEG_QUALITY",
    "NOISE_KINDS",
    "PICTURELESS_FAULTS",
    "SHAPES",
    "VARIANT_KINDS",
    "NoiseMix",
    "SyntheticWeb",
    "english_caption",
    "foreign_caption",
    "generate_eval_set",
    "generate_web",
    "load_ground_truth",
    "render_picture",
    "write_input_parquet",
]

log = logging.getLogger(__name__)
# The class names, one per line, beside ground_truth.parquet.
CONCEPTS_FILE = "concepts.txt"
ROBOTS_TXT = "robots.txt"


def robots_txt() -> str:
    """The web's robots.txt (RFC 9309): every user agent is kept out of the private/ pictures."""
    return f"# The synthetic web's opt-out.\nUser-agent: *\nDisallow: /{ROBOTS_DISALLOWED_PREFIX}\n"


@dataclass(frozen=True)
class SyntheticWeb:
    """Where a generated web lies: `files_dir` is the server root, paths are relative to it."""

    root: Path
    files_dir: Path
    ground_truth: Path
    n_pairs: int

    @classmethod
    def load(cls, root: Path) -> SyntheticWeb:
        """Open a web that `generate_web` wrote earlier into `root`."""
        root = Path(root)
        gt_path = root / "ground_truth.parquet"
        n_pairs = pq.ParquetFile(gt_path).metadata.num_rows
        return cls(root=root, files_dir=root / "files", ground_truth=gt_path, n_pairs=n_pairs)


def _prepare_out_dir(out_dir: Path) -> Path:
    files_dir = out_dir / "files"
    if files_dir.exists() and any(files_dir.iterdir()):
        # Only ever wipe a folder this generator wrote (it leaves ground_truth.parquet beside it).
        if not (out_dir / "ground_truth.parquet").exists():
            raise FileExistsError(f"{files_dir} is not empty and is not a generated synthetic web")
        log.info("replacing the synthetic web in %s", out_dir)
        shutil.rmtree(files_dir)
        (out_dir / "ground_truth.parquet").unlink()
    files_dir.mkdir(parents=True, exist_ok=True)
    return files_dir


@dataclass(frozen=True)
class _RowJob:
    """What rendering one row's file needs (picklable for a worker process)."""

    gt_id: int
    noise: str
    label: str | None
    file: str
    original: str | None  # the path of the picture this row copies, if it is a copy


def _waves(rows: list) -> list[list]:
    """The rows with a file, grouped so that every copy comes in a wave after its original's."""
    depth: dict[int, int] = {}
    waves: list[list] = []
    for index, row in enumerate(rows):
        if row.file is None:
            continue
        d = 0 if row.duplicate_of is None else depth[row.duplicate_of] + 1
        depth[index] = d
        while len(waves) <= d:
            waves.append([])
        waves[d].append(row)
    return waves


def _render_row(files_dir: str, seed: int, image_size: tuple[int, int], job: _RowJob) -> tuple:
    """Write one row's file under `files_dir`; returns its picture's (width, height)."""
    root = Path(files_dir)
    rng = np.random.default_rng([seed, _STREAM_PIXELS, job.gt_id])
    if job.original is not None:
        original = (root / job.original).read_bytes()
        if job.noise == "exact_duplicate":
            data = original
        elif job.noise in VARIANT_KINDS:
            data = _variant(rng, job.noise, original)
        else:
            data = _near_duplicate(rng, job.noise, original)
    elif job.noise == "off_target":
        data = _jpeg_bytes(render_off_target(rng, *image_size), JPEG_QUALITY)
    else:
        assert job.label is not None
        width, height = _picture_size(rng, job.noise, image_size)
        data = _jpeg_bytes(render_picture(rng, job.label, width, height), JPEG_QUALITY)
    target = root / job.file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def generate_web(
    out_dir: Path,
    n_pairs: int = 2000,
    seed: int = 0,
    mix: NoiseMix = NoiseMix(),  # noqa: B008 (frozen: one shared default instance is safe)
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    class_tail: float = 0.0,
) -> SyntheticWeb:
    """Write `n_pairs` labelled pairs under `out_dir`: pictures in files/, ground_truth.parquet,
    and concepts.txt (the class names, one per line: a term list and a balancing entry list).

    Deterministic: the same arguments give byte-identical files. `image_size` is (width, height)
    of ordinary pictures; `class_tail` > 0 draws classes from a long tail (noise_plan's
    class_weights) instead of uniformly.
    """
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    if min(image_size) < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    out_dir = Path(out_dir)
    files_dir = _prepare_out_dir(out_dir)
    rows = _plan(n_pairs, seed, mix, class_tail)

    for row in rows:
        if row.file is None and row.noise == "fault_bomb":
            row.width = row.height = BOMB_SIDE
    # A copy is made from its original's file: originals first, then copies of them, and so on.
    render = functools.partial(_render_row, str(files_dir), seed, image_size)
    for wave in _waves(rows):
        jobs = [
            _RowJob(
                r.gt_id,
                r.noise,
                r.label,
                r.file,
                None if r.duplicate_of is None else rows[r.duplicate_of].path,
            )
            for r in wave
        ]
        for row, (width, height) in zip(
            wave, render_all(render, jobs, "synthetic web"), strict=True
        ):
            row.width, row.height = width, height

    columns = {name: [getattr(r, name) for r in rows] for name in GROUND_TRUTH_SCHEMA.names}
    table = pa.Table.from_pydict(columns, schema=GROUND_TRUTH_SCHEMA)
    weights = class_weights(class_tail, seed)
    table = table.replace_schema_metadata(
        {
            "seed": str(seed),
            "mix": json.dumps(mix.fractions()),
            "image_size": str(image_size),
            "class_tail": str(class_tail),
            "class_weights": json.dumps(
                dict(
                    zip(
                        CLASSES,
                        [1 / len(CLASSES)] * len(CLASSES) if weights is None else weights.tolist(),
                        strict=True,
                    )
                )
            ),
        }
    )
    (out_dir / CONCEPTS_FILE).write_text("".join(f"{c}\n" for c in CLASSES))
    if any(row.noise == "robots_disallowed" for row in rows):
        # Served as a file at /robots.txt: a web without such rows has none (404: allow all).
        (files_dir / ROBOTS_TXT).write_text(robots_txt())
    gt_path = out_dir / "ground_truth.parquet"
    # Written last, via a rename: its presence means the web is complete.
    write_atomically(gt_path, functools.partial(pq.write_table, table))
    log.info("synthetic web: %d pairs in %s", n_pairs, out_dir)
    return SyntheticWeb(root=out_dir, files_dir=files_dir, ground_truth=gt_path, n_pairs=n_pairs)


def load_class_weights(web: SyntheticWeb) -> dict[str, float]:
    """Class -> planned share of pairs (uniform for a web generated without a tail)."""
    metadata = pq.read_schema(web.ground_truth).metadata or {}
    raw = metadata.get(b"class_weights")
    if raw is None:
        return {c: 1 / len(CLASSES) for c in CLASSES}
    return {str(k): float(v) for k, v in json.loads(raw).items()}


def load_ground_truth(web: SyntheticWeb) -> pa.Table:
    """The ground-truth table of `web` (one row per pair, GROUND_TRUTH_SCHEMA)."""
    return pq.read_table(web.ground_truth)


def write_input_parquet(
    web: SyntheticWeb,
    base_url: str,
    path: Path,
    url_col: str = "url",
    caption_col: str = "caption",
    seed: int = 0,
) -> Path:
    """Write the pipeline's input table (url, caption, gt_id), rows in a deterministic shuffle."""
    if len({url_col, caption_col, "gt_id"}) != 3:
        raise ValueError(
            f"url_col={url_col!r} and caption_col={caption_col!r} must differ from each other"
            " and from 'gt_id'"
        )
    gt = load_ground_truth(web)
    prefix = base_url.rstrip("/") + "/"
    urls = [prefix + quote(p) for p in gt.column("path").to_pylist()]
    table = pa.table(
        {
            url_col: pa.array(urls, pa.string()),
            caption_col: gt.column("caption"),
            "gt_id": gt.column("gt_id"),
        }
    )
    # Shuffled so that row order tells the pipeline nothing about noise kinds or duplicates.
    order = np.random.default_rng([seed, _STREAM_ORDER]).permutation(table.num_rows)
    table = table.take(pa.array(order))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def _render_eval_picture(
    out_dir: str, seed: int, image_size: tuple[int, int], job: tuple[int, int]
) -> tuple[str, str]:
    """Write the job's (class index, i) eval picture; returns (its path, its caption)."""
    class_idx, i = job
    label = CLASSES[class_idx]
    rng = np.random.default_rng([seed, _STREAM_EVAL, class_idx, i])
    rel = f"images/{label.replace(' ', '_')}_{i:04d}.jpg"
    picture = render_picture(rng, label, *image_size)
    (Path(out_dir) / rel).write_bytes(_jpeg_bytes(picture, JPEG_QUALITY))
    words = np.random.default_rng([seed, _STREAM_EVAL_CAPTIONS, class_idx, i])
    return rel, english_caption(words, label)


def generate_eval_set(
    out_dir: Path,
    n_per_class: int = 10,
    seed: int = 1,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
) -> pa.Table:
    """Write clean held-out pictures, `n_per_class` per class, for zero-shot evaluation and
    caption retrieval.

    Images go to `out_dir/images/`; the returned table (also `out_dir/eval.parquet`) has `path`
    (relative to `out_dir`), `label`, a truthful English `caption` drawn as the web's are, and
    `gallery`: the i-th picture of every class forms gallery i, one picture a class, where
    retrieval ranks it (a caption names the class, not the picture). Pixels and captions come
    from their own random streams, so they never coincide with a training pair, whatever the
    seeds.
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    jobs = [(c, i) for c in range(len(CLASSES)) for i in range(n_per_class)]
    render = functools.partial(_render_eval_picture, str(out_dir), seed, image_size)
    rows: dict[str, list] = {"path": [], "label": [], "caption": [], "gallery": []}
    for (class_idx, i), (rel, caption) in zip(
        jobs, render_all(render, jobs, "eval set"), strict=True
    ):
        rows["path"].append(rel)
        rows["label"].append(CLASSES[class_idx])
        rows["caption"].append(caption)
        rows["gallery"].append(i)
    table = pa.table(
        {
            "path": pa.array(rows["path"], pa.string()),
            "label": pa.array(rows["label"], pa.string()),
            "caption": pa.array(rows["caption"], pa.string()),
            "gallery": pa.array(rows["gallery"], pa.int32()),
        }
    )
    pq.write_table(table, out_dir / "eval.parquet")
    return table
