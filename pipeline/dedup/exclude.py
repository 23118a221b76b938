"""Hashes of an evaluation set to decontaminate against: from a parquet of hashes or a folder of
images (hashed exactly as the annotate stage hashes downloads)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from pipeline.annotate.phash import phash_bytes, to_signed
from pipeline.errors import InputError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


def _from_parquet(path: Path) -> list[int]:
    table = pq.read_table(path)
    if "phash" not in table.column_names:
        raise InputError(
            f"dedup.exclude: {path} has no phash column (columns: {', '.join(table.column_names)})"
        )
    column = table.column("phash")
    values = column.to_pylist()
    if pa.types.is_string(column.type):
        return [to_signed(int(v, 16)) for v in values if v]
    return [int(v) for v in values if v is not None]


def load_exclusion_hashes(path: str, draft_size: int = 64) -> list[int]:
    """Signed 64-bit pHashes of the evaluation images named by `dedup.exclude`."""
    root = Path(path)
    if not root.exists():
        raise InputError(
            f"dedup.exclude: {path} does not exist (expected a folder of images or a parquet of hashes)"
        )
    if root.is_file() and root.suffix == ".parquet":
        return _from_parquet(root)
    if root.is_dir() and any(root.glob("*.parquet")):
        return _from_parquet(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"dedup.exclude: no images or parquet under {path}")
    hashes = []
    for file in tqdm(files, desc="hashing eval images", unit="img", disable=len(files) < 1000):
        try:
            hashes.append(phash_bytes(file.read_bytes(), draft_size)[0])
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            log.warning("dedup.exclude: skipping %s (%s)", file, exc)
    return hashes
