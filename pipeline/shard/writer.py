"""Write one LAION-style webdataset shard: `NNNNN.tar` (KEY.jpg, KEY.txt, KEY.json in key order,
fixed mtime and owner, image bytes copied from the source tar without re-encoding), its
`NNNNN.parquet` and `NNNNN_stats.json`, each under a temporary name renamed when complete."""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.tables import SHARD_SAMPLE

SHARD_RESULT = pa.schema([("shard", pa.string()), ("count", pa.int64()), ("bytes", pa.int64())])
_MTIME = 0  # fixed: the same keep-list gives byte-identical tars


def shard_name(shard_id: int) -> str:
    return f"{shard_id:05d}"


def sample_key(shard_id: int, index: int, index_digits: int) -> str:
    """img2dataset/LAION keys: 5 digits of shard id, then the index zero-padded."""
    return f"{shard_id:05d}{index:0{index_digits}d}"


def is_complete(out: Path, name: str) -> bool:
    return all((out / f"{name}{suffix}").exists() for suffix in (".tar", ".parquet", "_stats.json"))


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = _MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def _read_image(downloads: Path, shard: str, offset: int, size: int) -> bytes:
    with open(downloads / f"{shard}.tar", "rb") as tar:
        tar.seek(offset)
        data = tar.read(size)
    if len(data) != size:
        raise OSError(f"downloads/{shard}.tar: short read at offset {offset}")
    return data


def _replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_shard(
    out: Path, downloads: Path, shard_id: int, rows: list[dict], index_digits: int
) -> int:
    """Write shard `shard_id` from rows sorted by their index; returns the tar's size in bytes."""
    name = shard_name(shard_id)
    records = []
    tmp_tar = out / f".{name}.tar.tmp"
    with tarfile.open(tmp_tar, "w", format=tarfile.USTAR_FORMAT) as tar:
        for row in rows:
            key = sample_key(shard_id, row["index"], index_digits)
            image = _read_image(downloads, row["shard"], row["offset"], row["image_bytes"])
            record = {
                "key": key,
                "uid": row["uid"],
                "url": row["url"],
                "caption": row["caption"],
                "width": row["width"],
                "height": row["height"],
                "original_width": row["original_width"],
                "original_height": row["original_height"],
                "lang": row["lang"],
                "lang_score": row["lang_score"],
                "clip_score": row["clip_score"],
                "phash": f"{row['phash'] & 0xFFFF_FFFF_FFFF_FFFF:016x}",
                "sha256": row["sha256"],
                "source_key": f"{row['shard']}/{row['key']}",
            }
            records.append(record)
            # Sorted member order within a sample: KEY.jpg < KEY.json < KEY.txt.
            tar.addfile(*_member(f"{key}.jpg", image))
            tar.addfile(*_member(f"{key}.json", json.dumps(record, sort_keys=True).encode()))
            tar.addfile(*_member(f"{key}.txt", (row["caption"] or "").encode()))
    table = pa.Table.from_pylist(records, schema=SHARD_SAMPLE)
    tmp_parquet = out / f".{name}.parquet.tmp"
    pq.write_table(table, tmp_parquet)
    size = tmp_tar.stat().st_size
    stats = {
        "count": len(records),
        "successes": len(records),
        "bytes": size,
        "status_dict": {"success": len(records)},
    }
    tmp_stats = out / f".{name}_stats.json.tmp"
    tmp_stats.write_text(json.dumps(stats, sort_keys=True) + "\n")
    # The stats file goes last: it marks the shard complete (img2dataset's convention).
    _replace(tmp_tar, out / f"{name}.tar")
    _replace(tmp_parquet, out / f"{name}.parquet")
    _replace(tmp_stats, out / f"{name}_stats.json")
    return size


def shard_batches(
    batches: Iterator[pa.RecordBatch], out: str, downloads: str, index_digits: int
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body over rows partitioned by `shard_id`: writes every shard of the partition
    (skipping shards already complete) and reports (shard, count, bytes)."""
    received = list(batches)
    rows = pa.Table.from_batches(received).to_pylist() if received else []
    by_shard: dict[int, list[dict]] = {}
    for row in rows:
        by_shard.setdefault(row["shard_id"], []).append(row)
    results = []
    for shard_id, members in sorted(by_shard.items()):
        members.sort(key=lambda r: r["index"])
        name = shard_name(shard_id)
        target = Path(out)
        if is_complete(target, name):
            size = (target / f"{name}.tar").stat().st_size
        else:
            size = write_shard(target, Path(downloads), shard_id, members, index_digits)
        results.append({"shard": name, "count": len(members), "bytes": size})
    if results:
        yield pa.RecordBatch.from_pylist(results, schema=SHARD_RESULT)
