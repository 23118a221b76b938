"""Annotate one downloaded shard: every successful sample of its parquet becomes either an
annotation row or a row with a reason code (never a failed task)."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from pipeline.annotate.phash import phash_bytes
from pipeline.annotate.shard_reader import iter_images
from schemas.reasons import check
from schemas.tables import ANNOTATION, DECISION

OUTPUT = pa.schema(list(ANNOTATION) + list(DECISION))
DECODE_ERROR = check("annotate.decode_error")
MISSING_IMAGE = check("annotate.missing_image")
UNREADABLE_SHARD = check("annotate.unreadable_shard")


def _expected(downloads: Path, shard: str) -> dict[str, dict]:
    """key -> row of the shard's parquet, for the samples img2dataset downloaded successfully."""
    table = pq.read_table(
        downloads / f"{shard}.parquet",
        columns=["uid", "key", "status", "original_width", "original_height"],
    )
    table = table.filter(pc.equal(table.column("status"), "success"))
    return {row["key"]: row for row in table.to_pylist()}


def _row(shard: str, meta: dict, **values) -> dict:
    row = dict.fromkeys(OUTPUT.names)
    row.update(
        uid=meta["uid"],
        shard=shard,
        key=meta["key"],
        original_width=meta["original_width"],
        original_height=meta["original_height"],
    )
    row.update(values)
    return row


def annotate_shard(
    downloads: Path, shard: str, draft_size: int = 64, batch_rows: int = 2000
) -> Iterator[pa.RecordBatch]:
    """Batches of annotation rows (schema OUTPUT) for one shard, in tar order."""
    expected = _expected(downloads, shard)
    rows: list[dict] = []
    seen: set[str] = set()
    tar_error = None
    try:
        for member in iter_images(str(downloads / f"{shard}.tar")):
            meta = expected.get(member.key)
            if meta is None or member.key in seen:
                continue
            seen.add(member.key)
            location = {"offset": member.offset, "image_bytes": len(member.data)}
            try:
                phash, width, height = phash_bytes(member.data, draft_size)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                rows.append(
                    _row(shard, meta, **location, reason=DECODE_ERROR, detail=str(exc)[:300])
                )
            else:
                sha = hashlib.sha256(member.data).hexdigest()
                rows.append(
                    _row(
                        shard, meta, **location, width=width, height=height, sha256=sha, phash=phash
                    )
                )
            if len(rows) >= batch_rows:
                yield pa.RecordBatch.from_pylist(rows, schema=OUTPUT)
                rows = []
    except (tarfile.TarError, OSError, EOFError) as exc:
        tar_error = f"{type(exc).__name__}: {exc}"[:300]
    for key in sorted(set(expected) - seen):
        if tar_error is not None:
            rows.append(_row(shard, expected[key], reason=UNREADABLE_SHARD, detail=tar_error))
        else:
            rows.append(
                _row(shard, expected[key], reason=MISSING_IMAGE, detail=f"no image member {key}")
            )
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=OUTPUT)


def annotate_batches(
    batches: Iterator[pa.RecordBatch], downloads: str, draft_size: int, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body: each input row names one shard (column `shard`)."""
    for batch in batches:
        for shard in batch.column("shard").to_pylist():
            yield from annotate_shard(Path(downloads), shard, draft_size, batch_rows)
