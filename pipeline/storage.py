"""Where a run's files live: a plain path or a URL (`s3://`, `gs://`, `hdfs://`, `file://`).

One path type for the Python side (a `pathlib.Path` for a plain path, a `upath.UPath` over fsspec
for a URL: both have `/`, `exists`, `glob`, `open`, `read_text` ...), the URL Spark's Hadoop
filesystem reads for the same place, and the few operations pathlib lacks on object stores
(removing a tree, pyarrow's filesystem for parquet). Atomic writes are in `pipeline.files`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import TypeAlias

import fsspec
import pyarrow.fs as pafs
from fsspec.implementations.local import LocalFileSystem
from upath import UPath

# A plain path (pathlib.Path) or a URL (UPath): what RunDir and the stages hold.
StoragePath: TypeAlias = Path | UPath

# `scheme://`: two letters at least, so that a Windows drive (`C:/`) is never taken for one.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
# fsspec's scheme -> Hadoop's, where they differ: Hadoop's S3 connector is S3A (hadoop-aws);
# `s3n://` and Hadoop's own `s3://` are gone from Hadoop 3.
SPARK_SCHEMES = {"s3": "s3a"}
# Stores whose rename is atomic (a POSIX rename, HDFS's): a temporary sibling renamed into
# place. On the others (S3, GCS) an object appears whole when its single PUT completes.
RENAMING_PROTOCOLS = frozenset({"file", "local", "hdfs", "webhdfs"})


def is_url(location: str | os.PathLike[str]) -> bool:
    """True for `scheme://...`, False for a plain path."""
    return bool(_URL.match(str(location)))


def as_path(location: str | os.PathLike[str]) -> StoragePath:
    """A plain path, resolved to an absolute Path; a URL as a UPath (fsspec underneath)."""
    if isinstance(location, UPath) and not isinstance(location, Path):
        return location
    text = str(location)
    if is_url(text):
        return UPath(text)
    return Path(text).resolve()


def is_local(path: StoragePath) -> bool:
    """A plain local path (pathlib), whose files the os module can rename and remove."""
    return isinstance(path, Path)


def filesystem(path: StoragePath) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of `path` and the path within it."""
    if is_local(path):
        return LocalFileSystem(), str(path)
    return path.fs, path.path


def renames_atomically(path: StoragePath) -> bool:
    """Whether the store under `path` has an atomic rename (local disks, HDFS)."""
    if is_local(path):
        return True
    protocol = path.fs.protocol
    protocols = {protocol} if isinstance(protocol, str) else set(protocol)
    return bool(protocols & RENAMING_PROTOCOLS)


def spark_url(path: StoragePath) -> str:
    """The location as Spark's Hadoop filesystem names it: a plain path as it is, `s3://` as
    `s3a://`, other schemes unchanged (gs:// with the GCS connector, hdfs://, file://)."""
    text = str(path)
    if is_local(path):
        return text
    scheme, rest = text.split("://", 1)
    return f"{SPARK_SCHEMES.get(scheme, scheme)}://{rest}"


def arrow_filesystem(path: StoragePath) -> tuple[pafs.FileSystem | None, str]:
    """(pyarrow filesystem, path) for pyarrow's parquet readers: None and the path for a plain
    path (pyarrow's own local filesystem), fsspec wrapped for pyarrow for a URL."""
    if is_local(path):
        return None, str(path)
    fs, inner = filesystem(path)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), inner


def remove_tree(path: StoragePath) -> None:
    """Remove a folder and everything under it; nothing happens when it does not exist."""
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    fs, inner = filesystem(path)
    if fs.exists(inner):
        fs.rm(inner, recursive=True)
    fs.invalidate_cache(inner)


def remove_file(path: StoragePath) -> None:
    """Remove one file; nothing happens when it does not exist."""
    if is_local(path):
        path.unlink(missing_ok=True)
        return
    fs, inner = filesystem(path)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(inner)
    fs.invalidate_cache(inner)


def make_dirs(path: StoragePath) -> None:
    """Create a folder and its parents (object stores have none: nothing to do there)."""
    if is_local(path):
        path.mkdir(parents=True, exist_ok=True)
    elif renames_atomically(path):
        fs, inner = filesystem(path)
        fs.makedirs(inner, exist_ok=True)


def refresh(path: StoragePath) -> None:
    """Forget fsspec's cached listings under `path`: other processes (img2dataset's workers,
    Spark tasks, a killed run) write there, and a stale listing would hide their files."""
    if not is_local(path):
        fs, inner = filesystem(path)
        fs.invalidate_cache(inner)


def read_range(path: StoragePath, offset: int, size: int) -> bytes:
    """`size` bytes at `offset` of a file: a seek on disk, one byte-range request on a store."""
    if is_local(path):
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    fs, inner = filesystem(path)
    return fs.cat_file(inner, start=offset, end=offset + size) if size else b""
