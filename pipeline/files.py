"""Files written whole or not at all (a temporary sibling renamed into place), and the data
files of a folder (markers and temporaries left out): the one copy of each for the project."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def temporary_sibling(path: Path) -> Path:
    """A unique hidden name beside `path` (readers skip names starting with "."), for a file
    written in full and then renamed into place."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_atomically(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call `write(tmp)` on a temporary sibling, then rename it to `path`: readers see the old
    file or the whole new one, never half of it. The temporary goes if `write` fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> None:
    """Write text to a temporary sibling and rename it into place."""
    write_atomically(path, lambda tmp: tmp.write_text(text))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write bytes to a temporary sibling and rename it into place."""
    write_atomically(path, lambda tmp: tmp.write_bytes(data))


def is_data_file(path: Path, folder: Path | None = None) -> bool:
    """Spark's and our own convention: a name starting with "." or "_" is a marker, temporary
    or metadata (_SUCCESS, _COMPLETE, .x.tmp, _temporary/), never data. With `folder`, every
    part of the path below it is checked."""
    parts = path.relative_to(folder).parts if folder is not None else (path.name,)
    return not any(part.startswith((".", "_")) for part in parts)


def data_files(folder: Path, pattern: str = "*.parquet") -> list[str]:
    """The data files of a folder matching `pattern` (e.g. "**/*.parquet"), sorted, markers and
    temporaries left out."""
    return sorted(str(p) for p in folder.glob(pattern) if p.is_file() and is_data_file(p, folder))


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished temporary folder into place, replacing any leftover at `dst`."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
