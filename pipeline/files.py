"""Files written whole or not at all, and the data files of a folder (markers and temporaries
left out): the one copy of each for the project, for plain paths and URLs alike.

Whole or not at all: on a store with an atomic rename (a local disk, HDFS) a temporary sibling is
renamed into place; on an object store (S3, GCS), which has no rename, the file is written
locally and uploaded in one PUT, which makes the object appear whole or not at all. Completion
markers are written last, so a reader trusting only marked outputs never sees half a result.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.storage import (
    StoragePath,
    filesystem,
    is_local,
    make_dirs,
    refresh,
    remove_tree,
    renames_atomically,
)


def temporary_sibling(path: StoragePath) -> StoragePath:
    """A unique hidden name beside `path` (readers skip names starting with "."), for a file
    written in full and then renamed into place."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_atomically(path: StoragePath, write: Callable[[Path], Any]) -> StoragePath:
    """Call `write(tmp)` on a local temporary file, then put it at `path` whole: readers see the
    old file or the whole new one, never half of it. The temporary goes if `write` fails."""
    if is_local(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_sibling(path)
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path
    fs, inner = filesystem(path)
    with tempfile.TemporaryDirectory(prefix="curate-put-") as scratch:
        local = Path(scratch) / path.name
        write(local)
        if renames_atomically(path):
            make_dirs(path.parent)
            _, tmp = filesystem(temporary_sibling(path))
            fs.put_file(str(local), tmp)
            fs.mv(tmp, inner)
        else:
            fs.put_file(str(local), inner)  # one PUT (or a multipart upload): whole or nothing
    fs.invalidate_cache(inner)
    return path


def write_text_atomically(path: StoragePath, text: str) -> None:
    """Write text whole or not at all (see write_atomically)."""
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_bytes_atomically(path: StoragePath, data: bytes) -> None:
    """Write bytes whole or not at all (see write_atomically)."""
    write_atomically(path, lambda tmp: tmp.write_bytes(data))


def is_data_file(path: StoragePath, folder: StoragePath | None = None) -> bool:
    """Spark's and our own convention: a name starting with "." or "_" is a marker, temporary
    or metadata (_SUCCESS, _COMPLETE, .x.tmp, _temporary/), never data. With `folder`, every
    part of the path below it is checked."""
    parts = path.relative_to(folder).parts if folder is not None else (path.name,)
    return not any(part.startswith((".", "_")) for part in parts)


def data_files(folder: StoragePath, pattern: str = "*.parquet") -> list[str]:
    """The data files of a folder matching `pattern` (e.g. "**/*.parquet"), sorted, markers and
    temporaries left out: plain paths for a plain folder, URLs for a URL."""
    if is_local(folder):
        return sorted(
            str(p) for p in folder.glob(pattern) if p.is_file() and is_data_file(p, folder)
        )
    refresh(folder)
    fs, inner = filesystem(folder)
    base = inner.rstrip("/")
    found = fs.glob(f"{base}/{pattern}", detail=True)
    names = [
        name[len(base) + 1 :]
        for name, info in found.items()
        if info.get("type") == "file" and name.startswith(base + "/")
    ]
    return sorted(
        str(folder / rel)
        for rel in names
        if not any(part.startswith((".", "_")) for part in rel.split("/"))
    )


def replace_dir(src: StoragePath, dst: StoragePath) -> None:
    """Move a finished temporary folder into place, replacing any leftover at `dst`. On an
    object store this is a copy and a delete, not atomic: the completion marker written after
    it is what readers trust."""
    if is_local(src) and is_local(dst):
        if dst.exists():
            shutil.rmtree(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        return
    remove_tree(dst)
    fs, inner = filesystem(src)
    _, target = filesystem(dst)
    if renames_atomically(src):
        make_dirs(dst.parent)
        fs.mv(inner, target, recursive=True)
    else:
        # Object by object: a store without folders has no folder to move.
        for name in fs.find(inner):
            fs.copy(name, f"{target}/{name[len(inner) + 1 :]}")
        fs.rm(inner, recursive=True)
    fs.invalidate_cache()
