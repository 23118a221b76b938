"""Annotate one downloaded shard: every successful sample of its parquet becomes either an
annotation row or a row with a reason code (never a failed task)."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator, Mapping

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from pipeline.annotate.shard_reader import iter_images
from pipeline.annotate.window_hash import hashes_bytes
from pipeline.clip.settings import ClipConfig
from pipeline.dedup.semantic.kernels import to_matrix
from pipeline.faults import kill_point
from pipeline.storage import StoragePath, arrow_filesystem, as_path
from schemas.reasons import check
from schemas.tables import ANNOTATION, CLIP_COLUMNS, DECISION, head_score_field

OUTPUT = pa.schema(list(ANNOTATION) + list(DECISION))
OUTPUT_WITH_CLIP = pa.schema(list(ANNOTATION) + list(CLIP_COLUMNS) + list(DECISION))


def head_fields(heads: Mapping[str, str]) -> list[pa.Field]:
    """The `score_<name>` columns of `annotate.heads`, in name order."""
    return [head_score_field(name) for name in sorted(heads)]


def output_schema(clip: ClipConfig | None, heads: Mapping[str, str] | None = None) -> pa.Schema:
    if clip is None:
        return OUTPUT
    return pa.schema(
        list(ANNOTATION) + list(CLIP_COLUMNS) + head_fields(heads or {}) + list(DECISION)
    )


DECODE_ERROR = check("annotate.decode_error")
MISSING_IMAGE = check("annotate.missing_image")
UNREADABLE_SHARD = check("annotate.unreadable_shard")


def _expected(downloads: StoragePath, shard: str) -> dict[str, dict]:
    """key -> row of the shard's parquet, for the samples img2dataset downloaded successfully."""
    fs, path = arrow_filesystem(downloads / f"{shard}.parquet")
    wanted = ["uid", "key", "status", "caption", "original_width", "original_height", "sha256"]
    present = set(pq.read_schema(path, filesystem=fs).names)
    table = pq.read_table(path, columns=[c for c in wanted if c in present], filesystem=fs)
    table = table.filter(pc.equal(table.column("status"), "success"))
    return {row["key"]: row for row in table.to_pylist()}


def _row(shard: str, meta: dict, **values) -> dict:
    row: dict = {}
    row.update(
        uid=meta["uid"],
        shard=shard,
        key=meta["key"],
        original_width=meta["original_width"],
        original_height=meta["original_height"],
        served_sha256=meta.get("sha256"),
    )
    row.update(values)
    return row


Pending = list[tuple[bytes, str] | None]  # (image bytes, caption) to CLIP-score, per row


def _add_clip_scores(
    rows: list[dict], images: Pending, clip: ClipConfig, heads: Mapping[str, str]
) -> None:
    """Fill clip_score, embeddings and head scores of the rows that have an image to score."""
    from pipeline.clip.heads import loaded_heads
    from pipeline.clip.score import score_pairs

    todo = [i for i, data in enumerate(images) if data is not None]
    if not todo:
        return
    result = score_pairs([images[i][0] for i in todo], [images[i][1] for i in todo], clip)
    for n, i in enumerate(todo):
        rows[i]["clip_score"] = float(result.scores[n])
        rows[i]["image_embedding"] = result.image_embeddings[n]
        if result.text_embeddings is not None:
            rows[i]["text_embedding"] = result.text_embeddings[n]
    if heads:
        # The heads read the stored (float16) embedding, as a later re-scoring of the column would.
        embeddings = to_matrix(result.image_embeddings)
        for head in loaded_heads(heads):
            for i, score in zip(todo, head.score(embeddings), strict=True):
                rows[i][f"score_{head.name}"] = float(score)


def _flush(
    rows: list[dict], images: Pending, clip: ClipConfig | None, heads: Mapping[str, str]
) -> pa.RecordBatch:
    if clip is not None:
        _add_clip_scores(rows, images, clip, heads)
    return pa.RecordBatch.from_pylist(rows, schema=output_schema(clip, heads))


def annotate_shard(
    downloads: StoragePath,
    shard: str,
    draft_size: int = 64,
    batch_rows: int = 2000,
    clip: ClipConfig | None = None,
    heads: Mapping[str, str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of annotation rows (schema `output_schema(clip, heads)`) for one shard, in tar
    order; `heads` ({name: file}) score the image embeddings when CLIP runs."""
    heads = heads or {}
    expected = _expected(downloads, shard)
    rows: list[dict] = []
    images: Pending = []
    seen: set[str] = set()
    tar_error = None
    try:
        for member in iter_images(downloads / f"{shard}.tar"):
            meta = expected.get(member.key)
            if meta is None or member.key in seen:
                continue
            seen.add(member.key)
            location = {"offset": member.offset, "image_bytes": len(member.data)}
            try:
                phash, windows, width, height = hashes_bytes(member.data, draft_size)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                rows.append(
                    _row(shard, meta, **location, reason=DECODE_ERROR, detail=str(exc)[:300])
                )
                images.append(None)
            else:
                sha = hashlib.sha256(member.data).hexdigest()
                rows.append(
                    _row(
                        shard,
                        meta,
                        **location,
                        width=width,
                        height=height,
                        sha256=sha,
                        phash=phash,
                        window_phashes=windows,
                    )
                )
                images.append((member.data, meta.get("caption") or ""))
            if len(rows) >= batch_rows:
                yield _flush(rows, images, clip, heads)
                rows, images = [], []
    except (tarfile.TarError, OSError, EOFError) as exc:
        tar_error = f"{type(exc).__name__}: {exc}"[:300]
    for key in sorted(set(expected) - seen):
        if tar_error is not None:
            rows.append(_row(shard, expected[key], reason=UNREADABLE_SHARD, detail=tar_error))
        else:
            rows.append(
                _row(shard, expected[key], reason=MISSING_IMAGE, detail=f"no image member {key}")
            )
        images.append(None)
    if rows:
        yield _flush(rows, images, clip, heads)


def annotate_batches(
    batches: Iterator[pa.RecordBatch],
    draft_size: int,
    batch_rows: int,
    clip: ClipConfig | None,
    heads: Mapping[str, str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body: each input row names one shard (columns `folder`, `shard`)."""
    for batch in batches:
        for folder, shard in zip(
            batch.column("folder").to_pylist(), batch.column("shard").to_pylist(), strict=True
        ):
            yield from annotate_shard(as_path(folder), shard, draft_size, batch_rows, clip, heads)
        kill_point("annotate", "batch")  # a batch of this task annotated, the rest not
