"""The evaluation set of dedup.exclude in embedding space: its images embedded by the same CLIP
model as the pool (a parquet may bring them ready as an `image_embedding` column)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from pipeline.clip.score import embed_images
from pipeline.clip.settings import ClipConfig
from pipeline.dedup.exclude import IMAGE_SUFFIXES

log = logging.getLogger(__name__)
EMBEDDINGS = pa.schema([pa.field("name", pa.string()), pa.field("image_embedding", pa.binary())])


def readable_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        log.warning("dedup.exclude: skipping %s (%s)", path, exc)
        return False
    return True


def eval_embeddings(path: str, clip: ClipConfig) -> pa.Table | None:
    """(name, image_embedding) of the evaluation images, or None when there is nothing to embed
    (a parquet of hashes without an image_embedding column). Eval sets are small (thousands of
    images), so this runs on the driver."""
    root = Path(path)
    parquets = [root] if root.is_file() else sorted(root.glob("*.parquet"))
    if parquets:
        table = pa.concat_tables([pq.read_table(p) for p in parquets])
        if "image_embedding" not in table.column_names:
            return None
        names = (
            table.column("name").cast(pa.string())
            if "name" in table.column_names
            else pa.array([str(i) for i in range(table.num_rows)])
        )
        return pa.table({"name": names, "image_embedding": table.column("image_embedding")})
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [p for p in files if readable_image(p)]
    embeddings = embed_images([p.read_bytes() for p in files], clip)
    names = [str(p.relative_to(root)) for p in files]
    return pa.table({"name": names, "image_embedding": embeddings}, schema=EMBEDDINGS)
