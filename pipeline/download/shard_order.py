"""Put a finished download shard in key order. img2dataset writes each sample as its thread
finishes (`imap_unordered`), so the same input gives a shard whose order, and so a trainer's
stream over the raw pool, changes from run to run; in key order (the input's order) it does not.

The tar is rewritten member by member through a temporary file beside it (memory: one member),
and the shard's parquet sorted by key the same way, then each replaces its original by a rename.
A kill between img2dataset's `_stats.json` and the rename leaves a complete shard in completion
order: correct, only not reproducible."""

from __future__ import annotations

import logging
import tarfile

import fsspec
import pyarrow.parquet as pq

log = logging.getLogger(__name__)


def _key(member: tarfile.TarInfo) -> str:
    # webdataset's key is the name up to the first dot of its base name (KEY.jpg, KEY.json).
    base = member.name.rsplit("/", 1)[-1]
    return base.split(".", 1)[0]


def sort_shard(output_folder: str, shard: str) -> int:
    """Rewrite `shard`.tar and `shard`.parquet under `output_folder` (a path or URL) in key
    order; returns the number of tar members. A shard already in order is left as it is."""
    fs, folder = fsspec.core.url_to_fs(output_folder)
    tar_path, parquet_path = f"{folder}/{shard}.tar", f"{folder}/{shard}.parquet"
    members = 0
    if fs.exists(tar_path):
        members = _sort_tar(fs, tar_path)
    if fs.exists(parquet_path):
        _sort_parquet(fs, parquet_path)
    return members


def _sort_tar(fs: fsspec.AbstractFileSystem, path: str) -> int:
    with fs.open(path, "rb") as source, tarfile.open(fileobj=source, mode="r:") as tar:
        found = tar.getmembers()
        ordered = sorted(found, key=lambda m: (_key(m), m.name))
        if [m.name for m in ordered] == [m.name for m in found]:
            return len(found)
        temporary = f"{path}.sorting"
        with fs.open(temporary, "wb") as target, tarfile.open(fileobj=target, mode="w") as out:
            for member in ordered:
                data = tar.extractfile(member) if member.isfile() else None
                out.addfile(member, data)
    fs.mv(temporary, path)
    return len(found)


def _sort_parquet(fs: fsspec.AbstractFileSystem, path: str) -> None:
    with fs.open(path, "rb") as source:
        table = pq.read_table(source)
    if "key" not in table.column_names or table.num_rows < 2:
        return
    ordered = table.sort_by("key")
    if ordered.column("key").equals(table.column("key")):
        return
    temporary = f"{path}.sorting"
    with fs.open(temporary, "wb") as target:
        pq.write_table(ordered, target)
    fs.mv(temporary, path)
