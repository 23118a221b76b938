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


class _TarWriter:
    """A USTAR writer for plain members: tarfile's own headers (TarInfo.tobuf), without
    addfile's per-member object copies, through one large buffer. The output is what tarfile
    writes: 512-byte blocks, two zero blocks at the end, padded to tarfile's record size."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 (closed in close())
        self._size = 0

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = _MTIME
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
        padding = -len(data) % tarfile.BLOCKSIZE
        self._file.write(header)
        self._file.write(data)
        self._file.write(b"\0" * padding)
        self._size += len(header) + len(data) + padding

    def close(self) -> None:
        end = 2 * tarfile.BLOCKSIZE
        end += -(self._size + end) % tarfile.RECORDSIZE
        self._file.write(b"\0" * end)
        self._file.close()


class _SourceTars:
    """Open source tars once per shard written, and read image bytes at recorded offsets."""

    def __init__(self, downloads: Path) -> None:
        self._downloads = downloads
        self._open: dict[str, io.BufferedReader] = {}

    def read(self, shard: str, offset: int, size: int) -> bytes:
        handle = self._open.get(shard)
        if handle is None:
            handle = self._open[shard] = open(self._downloads / f"{shard}.tar", "rb")  # noqa: SIM115
        handle.seek(offset)
        data = handle.read(size)
        if len(data) != size:
            raise OSError(f"downloads/{shard}.tar: short read at offset {offset}")
        return data

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()


def _replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_shard(
    out: Path, downloads: Path, shard_id: int, rows: list[dict], index_digits: int
) -> int:
    """Write shard `shard_id` from rows sorted by their index; returns the tar's size in bytes."""
    name = shard_name(shard_id)
    records = []
    tmp_tar = out / f".{name}.tar.tmp"
    tar, sources = _TarWriter(tmp_tar), _SourceTars(downloads)
    try:
        for row in rows:
            key = sample_key(shard_id, row["index"], index_digits)
            image = sources.read(row["shard"], row["offset"], row["image_bytes"])
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
            tar.add(f"{key}.jpg", image)
            tar.add(f"{key}.json", json.dumps(record, sort_keys=True).encode())
            tar.add(f"{key}.txt", (row["caption"] or "").encode())
    finally:
        tar.close()
        sources.close()
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
