"""The input check before Spark starts: every input file's footer (never a row) is read and
checked, so that anything Spark would choke on is refused with exit 2 and one line naming the file
and the column, before the run directory is touched.

Refused (InputError): a file that is not parquet; a name Spark cannot address (empty, `*`, a dot
or a backtick in it, Spark's hidden `_metadata` column or its `_tmp_metadata_` row-index names);
two names that differ only in case, in one file or across files, top level or inside a struct
(Spark does not tell them apart); a type Spark's parquet reader cannot read (timestamp[ns], time,
float16, decimals over 38 digits, uuid); a column whose type differs between files; a file without
the mapped url/caption/uid columns, or with them not strings; an input with no rows; and a carried
column whose candidates name (`input_<name>`) another column already has. Files with no rows are
not read at all (their footers are not compared), so an empty part file never blocks a run.

Inputs on a scheme the Python side has no filesystem for (hdfs:// without libhdfs) are left to
Spark, which reads them with the same name rules applied to its schema.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError
from pipeline.files import data_files, is_data_file
from pipeline.ingest import decide as row_rules
from pipeline.ingest.settings import IngestConfig, ingest_columns
from pipeline.storage import arrow_filesystem, as_path, is_url
from schemas.tables import INGEST_WORK, RESERVED_COLUMNS

log = logging.getLogger(__name__)

# Names a carried input column may not keep (compared case-insensitively, as Spark does): the
# pipeline's own and img2dataset's (schemas.tables.RESERVED_COLUMNS) and the stage's working
# columns. Such a column, and any whose name starts with "_", is carried as `input_<name>`.
INTERNAL_NAMES = frozenset(
    n.lower()
    for n in (
        *RESERVED_COLUMNS,
        *INGEST_WORK.names,
        row_rules.CAPTION_REPEATS,
        row_rules.URL_CAPTIONS,
        row_rules.RARE_TOKEN,
    )
)
CARRIED_PREFIX = "input_"
# Footers read at once (object stores answer each in tens of milliseconds).
FOOTER_THREADS = 16


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


def remote_files(path: str) -> list[str] | None:
    """The data files a URL (file, folder or glob) names, as URLs, sorted; None when the Python
    side has no filesystem for its scheme (Spark then lists and reads it alone)."""
    try:
        location = as_path(path)
        fs = location.fs
    except (ImportError, OSError, ValueError) as exc:
        log.warning("ingest: no Python filesystem for %s (%s): Spark checks it alone", path, exc)
        return None
    inner = location.path
    if any(ch in inner for ch in "*?["):
        found = sorted(fs.glob(inner, detail=True).items())
        files = [
            fs.unstrip_protocol(name)
            for name, info in found
            if info.get("type") == "file" and is_data_file(Path(name))
        ]
    elif fs.isdir(inner):
        files = data_files(location, "**/*")
    elif fs.exists(inner) and is_data_file(Path(inner)):
        files = [path]
    else:
        files = []
    if not files:
        raise InputError(f"input {path}: no such file, or no data files in it")
    return files


def input_files(path: str) -> list[str] | None:
    """The data files of the input, the ones ingest reads; None: Spark lists them (see above)."""
    return local_files(path) if is_local(path) else remote_files(path)


@dataclass(frozen=True)
class CheckedInput:
    """What the check found: the files Spark reads (those with rows, sorted), the row count, every
    column in order of first appearance, and whether every file has the same columns."""

    files: tuple[str, ...]
    rows: int
    columns: tuple[str, ...]
    uniform: bool


def check_input(path: str, cfg: IngestConfig) -> CheckedInput | None:
    """Check the input's files from their footers; None when Spark must list them itself.

    Raises InputError, one line naming the file and the column, for anything Spark would fail on.
    """
    files = input_files(path)
    if files is None:
        return None
    footers = _read_footers(files)
    with_rows = [(f, schema) for f, (rows, schema) in zip(files, footers, strict=True) if rows]
    if not with_rows:
        raise InputError(f"input {path}: no rows (expected a table of url and caption pairs)")
    columns: dict[str, tuple[str, pa.Field, str]] = {}  # lower name -> (file, field, Spark type)
    for file, schema in with_rows:
        check_names(file, schema.names)
        for field in schema:
            spark = spark_type_of(file, field)
            seen = columns.setdefault(field.name.lower(), (file, field, spark))
            other, first, first_spark = seen
            if first.name != field.name:
                raise InputError(
                    f"input {file}: column {field.name!r} is {first.name!r} in {other}: names"
                    " that differ only in case are one column to Spark; rename one"
                )
            if first_spark != spark:
                raise InputError(
                    f"input {file}: column {field.name!r} is {field.type} here but"
                    f" {first.type} in {other}; give it one type in every file"
                )
    types = {f.name: None if spark == "string" else str(f.type) for _, f, spark in columns.values()}
    used = check_columns(path, types, cfg)
    for file, schema in with_rows:
        missing = [name for name in used if name not in schema.names]
        if missing:
            check_columns(file, {n: types[n] for n in schema.names}, cfg)
    names = [f.name for _, f, _ in columns.values()]
    carried_columns(path, names, used)
    first_names = set(with_rows[0][1].names)
    return CheckedInput(
        files=tuple(f for f, _ in with_rows),
        rows=sum(rows for rows, _ in footers),
        columns=tuple(names),
        uniform=all(set(schema.names) == first_names for _, schema in with_rows),
    )


def _read_footer(file: str) -> tuple[int, pa.Schema]:
    fs, inner = arrow_filesystem(as_path(file)) if is_url(file) else (None, file)
    try:
        meta = pq.read_metadata(inner, filesystem=fs)
        return meta.num_rows, meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise InputError(f"input {file}: cannot read as parquet ({first})") from exc


def _read_footers(files: Sequence[str]) -> list[tuple[int, pa.Schema]]:
    """Every file's row count and schema, in file order (the first bad file is the one named)."""
    if len(files) == 1:
        return [_read_footer(files[0])]
    with ThreadPoolExecutor(min(FOOTER_THREADS, len(files))) as pool:
        return list(pool.map(_read_footer, files))


def name_problem(name: str) -> str | None:
    """Why Spark cannot address a column of this name, or None when it can."""
    lower = name.lower()
    if not name:
        return "has an empty name"
    if lower == "_metadata":
        return "has the name of Spark's hidden file-metadata column"
    if lower.startswith("_tmp_metadata_"):
        return "has a name Spark reserves for its parquet row index"
    if name == "*":
        return "is named '*', which Spark reads as every column"
    if "." in name:
        return "has a '.' in its name, which Spark reads as a struct field"
    if "`" in name:
        return "has a backtick in its name, which Spark cannot quote"
    return None


def check_names(where: str, names: Iterable[str]) -> None:
    """Refuse a name Spark cannot address, and two names that differ only in case."""
    seen: dict[str, str] = {}
    for name in names:
        problem = name_problem(name)
        if problem:
            raise InputError(f"input {where}: column {name!r} {problem}; rename it")
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise InputError(
                f"input {where}: columns {other!r} and {name!r} differ only in case, which Spark"
                " does not tell apart; rename one"
            )


class _Unreadable(Exception):
    """A type Spark's parquet reader refuses: (the type, what to write instead)."""

    def __init__(self, dtype: pa.DataType, instead: str) -> None:
        super().__init__(f"{dtype}: write it as {instead}")
        self.dtype = dtype
        self.instead = instead


class _FieldClash(Exception):
    """Struct fields whose names differ only in case."""


def spark_type_of(file: str, field: pa.Field) -> str:
    """What Spark reads the column as (two files agree when this agrees); InputError for a type
    it cannot read."""
    try:
        return spark_type(field.type)
    except _Unreadable as exc:
        inner = "" if exc.dtype == field.type else f" ({exc.dtype} inside it)"
        raise InputError(
            f"input {file}: column {field.name!r} has type {field.type}{inner}, which Spark"
            f" cannot read; write it as {exc.instead}"
        ) from exc
    except _FieldClash as exc:
        raise InputError(
            f"input {file}: column {field.name!r} has struct fields {exc}, which differ only in"
            " case (Spark does not tell them apart); rename one"
        ) from exc


def spark_type(t: pa.DataType) -> str:
    """Spark's type (simpleString) for an Arrow type from a parquet footer, as Spark's parquet
    reader maps it (tested against Spark 4: tests/ingest/test_input_check.py)."""
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            raise _Unreadable(t, "a string or binary")
        return "string" if t.extension_name == "arrow.json" else spark_type(t.storage_type)
    if pa.types.is_dictionary(t):
        return spark_type(t.value_type)
    if pa.types.is_null(t):
        return "int"  # an all-null column is stored as INT32 with the null annotation
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return {
            pa.int8(): "tinyint",
            pa.int16(): "smallint",
            pa.uint8(): "smallint",
            pa.int32(): "int",
            pa.uint16(): "int",
            pa.int64(): "bigint",
            pa.uint32(): "bigint",
            pa.uint64(): "decimal(20,0)",
        }[t]
    if pa.types.is_float16(t):
        raise _Unreadable(t, "float32")
    if pa.types.is_floating(t):
        return "float" if pa.types.is_float32(t) else "double"
    if pa.types.is_decimal(t):
        if t.precision > 38:
            raise _Unreadable(t, "a string (Spark's decimals hold at most 38 digits)")
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        return "binary"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        if t.unit == "ns":
            raise _Unreadable(t, f"timestamp[us{', tz=' + t.tz if t.tz else ''}]")
        return "timestamp" if t.tz else "timestamp_ntz"
    if pa.types.is_duration(t):
        return "bigint"  # stored as INT64 (pyarrow keeps the unit in its own metadata)
    if pa.types.is_time(t):
        raise _Unreadable(t, "a string or an integer")
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        return f"array<{spark_type(t.value_type)}>"
    if pa.types.is_map(t):
        return f"map<{spark_type(t.key_type)},{spark_type(t.item_type)}>"
    if pa.types.is_struct(t):
        seen: dict[str, str] = {}
        for f in t:
            other = seen.setdefault(f.name.lower(), f.name)
            if other != f.name:
                raise _FieldClash(f"{other!r} and {f.name!r}")
        return "struct<" + ",".join(f"{f.name}:{spark_type(f.type)}" for f in t) + ">"
    raise _Unreadable(t, "a supported type (string, number, binary, date, timestamp[us], nested)")


def carried_name(name: str) -> str:
    """The name an input column that is not mapped gets in candidates/: its own, or
    `input_<name>` when it starts with "_" or is (in any case) a name the pipeline uses."""
    if name.startswith("_") or name.lower() in INTERNAL_NAMES:
        return CARRIED_PREFIX + name
    return name


def carried_columns(where: str, names: Sequence[str], used: Iterable[str]) -> list[tuple[str, str]]:
    """(input name, candidates name) of every column carried along, in input order; refuses two
    that would end up with one name (in any case)."""
    used = set(used)
    out: list[tuple[str, str]] = []
    taken: dict[str, tuple[str, str]] = {}  # lower candidates name -> (input name, its name)
    for name in names:
        if name in used:
            continue
        target = carried_name(name)
        other, other_target = taken.setdefault(target.lower(), (name, target))
        if other != name:
            renamed, as_name, kept = (
                (name, target, other) if target != name else (other, other_target, name)
            )
            raise InputError(
                f"input {where}: column {renamed!r} would be carried as {as_name!r}, but the"
                f" input has a column {kept!r} too; rename one"
            )
        out.append((name, target))
    return out


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
