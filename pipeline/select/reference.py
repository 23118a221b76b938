"""The reference set of the image-based rule (DataComp used ImageNet-1k's training images): which
k-means centroids are the nearest of at least one reference image.

Read in a stream, so the driver holds one chunk and the set of target centroids (bounded by k),
never the whole reference set: a parquet of ready embeddings (an `image_embedding` column of
float16 bytes made by the pool's CLIP model, as annotate stores them) in record batches, or a
folder of images embedded by that model a chunk at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.clip.settings import ClipConfig
from pipeline.dedup.exclude import IMAGE_SUFFIXES
from pipeline.dedup.semantic.eval_set import readable_image
from pipeline.dedup.semantic.kernels import to_matrix
from pipeline.errors import InputError

log = logging.getLogger(__name__)
# Images embedded per chunk (a chunk's bytes and embeddings are all the driver holds at once).
IMAGE_CHUNK = 512
PARQUET_BATCH = 65_536


def _parquet_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if root.suffix == ".parquet" else []
    return sorted(root.glob("*.parquet"))


def _parquet_embeddings(files: list[Path]) -> Iterator[np.ndarray]:
    for path in files:
        parquet = pq.ParquetFile(path)
        if "image_embedding" not in parquet.schema_arrow.names:
            raise InputError(
                f"select.image_based.reference {path}: no image_embedding column (embed the "
                "reference images with the pool's CLIP model, or give a folder of images)"
            )
        for batch in parquet.iter_batches(columns=["image_embedding"], batch_size=PARQUET_BATCH):
            column = batch.column(0).drop_null()
            if len(column):
                yield to_matrix(column)


def _image_embeddings(files: list[Path], clip: ClipConfig) -> Iterator[np.ndarray]:
    from pipeline.clip.score import embed_images

    with tqdm(total=len(files), desc="reference images", unit="img", disable=None) as bar:
        for start in range(0, len(files), IMAGE_CHUNK):
            chunk = [p.read_bytes() for p in files[start : start + IMAGE_CHUNK]]
            yield to_matrix(embed_images(chunk, clip))
            bar.update(len(chunk))


def reference_clusters(
    path: str, clip: ClipConfig, assign: Callable[[np.ndarray], np.ndarray]
) -> tuple[list[int], int]:
    """(sorted centroid ids that are some reference image's nearest, reference images read).

    `assign` maps unit embeddings to their nearest centroid ids.
    """
    if not path:
        raise InputError("select.rules has image_based but select.image_based.reference is empty")
    root = Path(path)
    if not root.exists():
        raise InputError(f"select.image_based.reference {root}: no such file or folder")
    parquets = _parquet_files(root)
    if parquets:
        embeddings = _parquet_embeddings(parquets)
    else:
        images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        images = [p for p in images if readable_image(p)]
        embeddings = _image_embeddings(images, clip)
    targets: set[int] = set()
    count = 0
    for matrix in embeddings:
        targets.update(int(c) for c in assign(matrix))
        count += len(matrix)
    if count == 0:
        raise InputError(f"select.image_based.reference {root}: no reference image or embedding")
    log.info("select: %d reference images mark %d target clusters", count, len(targets))
    return sorted(targets), count
