"""Fast validation of a local input before Spark starts: files exist, are parquet, have rows and
the mapped columns. Remote inputs (hdfs://, s3a://, ...) are checked by Spark when it reads them."""

from __future__ import annotations

import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.config import IngestConfig, ingest_columns
from pipeline.errors import InputError
from pipeline.files import data_files, is_data_file


def is_local(path: str) -> bool:
    """True for plain paths and file:// URLs."""
    return "://" not in path or path.startswith("file://")


def local_files(path: str) -> list[str]:
    """The parquet files a local file, folder or glob names (hidden and _-files skipped)."""
    path = path.removeprefix("file://")
    if any(ch in path for ch in "*?["):
        matches = sorted(glob.glob(path, recursive=True))
    else:
        matches = [path] if Path(path).exists() else []
    files: list[str] = []
    for match in matches:
        p = Path(match)
        if p.is_dir():
            files += data_files(p, "**/*")
        elif is_data_file(p):
            files.append(str(p))
    if not files:
        raise InputError(f"input {path}: no such file, or no data files in it")
    return files


def check_local_input(path: str, cfg: IngestConfig) -> pa.Schema:
    """Validate a local input; returns its schema. Raises InputError naming what is wrong."""
    files = local_files(path)
    try:
        dataset = ds.dataset(files, format="parquet")
        schema = dataset.schema
        rows = sum(frag.metadata.num_rows for frag in dataset.get_fragments())
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"input {path}: cannot read as parquet ({exc})") from exc
    check_columns(
        path,
        {
            f.name: None
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            else str(f.type)
            for f in schema
        },
        cfg,
    )
    if rows == 0:
        raise InputError(f"input {path}: no rows (expected a table of url and caption pairs)")
    return schema


def check_columns(path: str, column_types: dict[str, str | None], cfg: IngestConfig) -> list[str]:
    """Check the mapped columns exist and are strings; returns the input names used.

    `column_types` maps each input column to None if it is a string column, else its type name.
    """
    cols = ingest_columns(cfg)
    found = ", ".join(column_types) or "none"
    wanted = [("url", cols["url_col"]), ("caption", cols["caption_col"])]
    if cols["uid_col"]:
        wanted.append(("uid", cols["uid_col"]))
    for role, name in wanted:
        if name not in column_types:
            raise InputError(
                f"input {path}: missing {role} column {name!r} (columns found: {found}); "
                f"set ingest.{role}_col or ingest.preset"
            )
        if column_types[name] is not None:
            raise InputError(
                f"input {path}: {role} column {name!r} has type {column_types[name]}, expected string"
            )
    return [name for _, name in wanted]
