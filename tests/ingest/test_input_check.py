"""Ingest's footer check before Spark: every hostile input schema exits 2 with one exact line
naming the file and the column, and nothing is written (no run directory, so no `_STARTED` and
no `config.yaml`); the Spark types it compares are the ones Spark's parquet reader reads."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.ingest.input_check import spark_type

URL = "http://example.com/a.jpg"
CAPTION = "a small red car parked on a quiet street"


def _table(**extra) -> pa.Table:
    """One row: url, caption and the given extra columns (arrays or lists)."""
    return pa.table({"url": [URL], "caption": [CAPTION], **extra})


def _raw(columns: dict[str, pa.Array]) -> pa.Table:
    """A table from (name, array) pairs, names as they are (duplicates, empty, any case)."""
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


# (case, {file name: table or bytes}, expected message; {a}, {b}: the files, {input}: the folder)
CASES: list[tuple[str, dict[str, pa.Table | bytes], str]] = [
    (
        "metadata",
        {"a.parquet": _table(_metadata=["x"])},
        "input {a}: column '_metadata' has the name of Spark's hidden file-metadata column;"
        " rename it",
    ),
    (
        "metadata_any_case",
        {"a.parquet": _table(_Metadata=[1])},
        "input {a}: column '_Metadata' has the name of Spark's hidden file-metadata column;"
        " rename it",
    ),
    (
        "row_index_temporary",
        {"a.parquet": _table(_tmp_metadata_row_index=[5])},
        "input {a}: column '_tmp_metadata_row_index' has a name Spark reserves for its parquet"
        " row index; rename it",
    ),
    (
        "backtick",
        {"a.parquet": _table(**{"a`b": [1]})},
        "input {a}: column 'a`b' has a backtick in its name, which Spark cannot quote; rename it",
    ),
    (
        "dot",
        {"a.parquet": _table(**{"meta.score": [0.5]})},
        "input {a}: column 'meta.score' has a '.' in its name, which Spark reads as a struct"
        " field; rename it",
    ),
    (
        "star",
        {"a.parquet": _table(**{"*": [1]})},
        "input {a}: column '*' is named '*', which Spark reads as every column; rename it",
    ),
    (
        "empty_name",
        {"a.parquet": _table(**{"": [1]})},
        "input {a}: column '' has an empty name; rename it",
    ),
    (
        "case_duplicates",
        {
            "a.parquet": _raw(
                {"url": pa.array([URL]), "caption": pa.array([CAPTION]), "URL": pa.array(["x"])}
            )
        },
        "input {a}: columns 'url' and 'URL' differ only in case, which Spark does not tell"
        " apart; rename one",
    ),
    (
        "case_across_files",
        {"a.parquet": _table(Score=[0.1]), "b.parquet": _table(score=[0.2])},
        "input {b}: column 'score' is 'Score' in {a}: names that differ only in case are one"
        " column to Spark; rename one",
    ),
    (
        "url_type_conflict",
        {"a.parquet": _table(), "b.parquet": pa.table({"url": [7], "caption": [CAPTION]})},
        "input {b}: column 'url' is int64 here but string in {a}; give it one type in every file",
    ),
    (
        "extra_type_conflict",
        {
            "a.parquet": _table(n=pa.array([1], pa.int32())),
            "b.parquet": _table(n=pa.array([2**40], pa.int64())),
        },
        "input {b}: column 'n' is int64 here but int32 in {a}; give it one type in every file",
    ),
    (
        "all_null_column_against_strings",
        {"a.parquet": _table(tag=["x"]), "b.parquet": _table(tag=pa.nulls(1))},
        "input {b}: column 'tag' is null here but string in {a}; give it one type in every file",
    ),
    (
        "timestamp_ns",
        {"a.parquet": _table(ts=pa.array([dt.datetime(2024, 1, 2)], pa.timestamp("ns")))},
        "input {a}: column 'ts' has type timestamp[ns], which Spark cannot read; write it as"
        " timestamp[us]",
    ),
    (
        "timestamp_ns_tz",
        {"a.parquet": _table(ts=pa.array([dt.datetime(2024, 1, 2)], pa.timestamp("ns", tz="UTC")))},
        "input {a}: column 'ts' has type timestamp[ns, tz=UTC], which Spark cannot read; write"
        " it as timestamp[us, tz=UTC]",
    ),
    (
        "timestamp_ns_in_a_list",
        {
            "a.parquet": _table(
                ts=pa.array([[dt.datetime(2024, 1, 2)]], pa.list_(pa.timestamp("ns")))
            )
        },
        "input {a}: column 'ts' has type list<element: timestamp[ns]> (timestamp[ns] inside it),"
        " which Spark cannot read; write it as timestamp[us]",
    ),
    (
        "time",
        {"a.parquet": _table(at=pa.array([dt.time(1, 2, 3)], pa.time64("us")))},
        "input {a}: column 'at' has type time64[us], which Spark cannot read; write it as a"
        " string or an integer",
    ),
    (
        "float16",
        {"a.parquet": _table(h=pa.array([1.5], pa.float16()))},
        "input {a}: column 'h' has type halffloat, which Spark cannot read; write it as float32",
    ),
    (
        "decimal_over_38_digits",
        {"a.parquet": _table(d=pa.array([decimal.Decimal("1" * 50)], pa.decimal256(60, 0)))},
        "input {a}: column 'd' has type decimal256(60, 0), which Spark cannot read; write it as"
        " a string (Spark's decimals hold at most 38 digits)",
    ),
    (
        "uuid",
        {
            "a.parquet": _table(
                id=pa.ExtensionArray.from_storage(
                    pa.uuid(), pa.array([uuid.UUID(int=1).bytes], pa.binary(16))
                )
            )
        },
        "input {a}: column 'id' has type extension<arrow.uuid>, which Spark cannot read; write"
        " it as a string or binary",
    ),
    (
        "struct_fields_differing_in_case",
        {"a.parquet": _table(s=pa.array([{"a": 1, "A": 2}]))},
        "input {a}: column 's' has struct fields 'a' and 'A', which differ only in case (Spark"
        " does not tell them apart); rename one",
    ),
    (
        "carried_name_taken",
        {"a.parquet": _table(width=[1], input_width=[2])},
        "input {input}: column 'width' would be carried as 'input_width', but the input has a"
        " column 'input_width' too; rename one",
    ),
    (
        "carried_name_taken_in_another_case",
        {"a.parquet": _table(Uid=["x"], input_uid=["y"])},
        "input {input}: column 'Uid' would be carried as 'input_Uid', but the input has a column"
        " 'input_uid' too; rename one",
    ),
    (
        "url_missing_in_one_file",
        {"a.parquet": _table(), "b.parquet": pa.table({"link": [URL], "caption": [CAPTION]})},
        "input {b}: missing url column 'url' (columns found: link, caption); set ingest.url_col"
        " or ingest.preset",
    ),
    (
        "every_file_empty",
        {"a.parquet": _table().slice(0, 0), "b.parquet": _table().slice(0, 0)},
        "input {input}: no rows (expected a table of url and caption pairs)",
    ),
]


def _write(folder: Path, files: dict[str, pa.Table | bytes]) -> None:
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            pq.write_table(content, folder / name)


def _expected(template: str, folder: Path) -> str:
    return "curate ingest: error: " + template.format(
        a=folder / "a.parquet", b=folder / "b.parquet", input=folder
    )


@pytest.mark.parametrize(("case", "files", "message"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_exits_2_with_one_line_and_writes_nothing(
    spark, tmp_path, capsys, case, files, message
):
    # `spark`: the run's one session, should a defect let the stage reach Spark.
    folder = tmp_path / "in"
    _write(folder, files)
    run_dir = tmp_path / "run"
    code = main(["ingest", "--input", str(folder), "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err == [_expected(message, folder)]
    assert not (run_dir / "candidates" / "_STARTED").exists()
    assert not (run_dir / "config.yaml").exists()
    assert not run_dir.exists()


def test_a_file_that_is_not_parquet_is_named(tmp_path, capsys):
    folder = tmp_path / "in"
    _write(folder, {"a.parquet": _table(), "b.parquet": b"PAR1 this is not parquet"})
    code = main(["ingest", "--input", str(folder), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(
        f"curate ingest: error: input {folder / 'b.parquet'}: cannot read as parquet ("
    )
    assert not (tmp_path / "run").exists()


def test_type_conflict_is_refused_before_the_jvm_starts(tmp_path):
    """The console script in its own process: exit 2 and the one line, no Spark output."""
    folder = tmp_path / "in"
    _write(folder, dict(CASES[[c[0] for c in CASES].index("url_type_conflict")][1]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "ingest",
            "--input",
            str(folder),
            "--run-dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        _expected(
            "input {b}: column 'url' is int64 here but string in {a}; give it one type in every"
            " file",
            folder,
        )
    ]
    assert not (tmp_path / "run").exists()


# Arrow types the check lets through, each with a value: the type Spark reads must be the one
# `spark_type` says, since two files agree exactly when their `spark_type`s agree.
READABLE: dict[str, pa.Array] = {
    "bool": pa.array([True]),
    "i8": pa.array([1], pa.int8()),
    "i16": pa.array([1], pa.int16()),
    "i32": pa.array([1], pa.int32()),
    "i64": pa.array([1], pa.int64()),
    "u8": pa.array([200], pa.uint8()),
    "u16": pa.array([60000], pa.uint16()),
    "u32": pa.array([4_000_000_000], pa.uint32()),
    "u64": pa.array([2**64 - 1], pa.uint64()),
    "f32": pa.array([1.5], pa.float32()),
    "f64": pa.array([1.5]),
    "dec": pa.array([decimal.Decimal("12.50")], pa.decimal128(10, 2)),
    "dec256": pa.array([decimal.Decimal("1.25")], pa.decimal256(30, 2)),
    "str": pa.array(["x"]),
    "large_str": pa.array(["x"], pa.large_string()),
    "dict_str": pa.array(["x"]).dictionary_encode(),
    "json": pa.ExtensionArray.from_storage(pa.json_(), pa.array(['{"a": 1}'])),
    "bin": pa.array([b"\xff"]),
    "large_bin": pa.array([b"\xff"], pa.large_binary()),
    "fixed_bin": pa.array([b"ab"], pa.binary(2)),
    "date": pa.array([dt.date(2024, 1, 2)]),
    "ts_ms": pa.array([dt.datetime(2024, 1, 2)], pa.timestamp("ms")),
    "ts_us": pa.array([dt.datetime(2024, 1, 2)], pa.timestamp("us")),
    "ts_tz": pa.array([dt.datetime(2024, 1, 2)], pa.timestamp("us", tz="Europe/Paris")),
    "duration": pa.array([5], pa.duration("s")),
    "nulls": pa.nulls(1),
    "list": pa.array([[1.0, 2.0]]),
    "large_list": pa.array([[1]], pa.large_list(pa.int64())),
    "fixed_list": pa.array([[1, 2]], pa.list_(pa.int64(), 2)),
    "struct": pa.array([{"a": 1, "b": b"x"}]),
    "map": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
    "nested": pa.array(
        [[{"m": [("k", [decimal.Decimal("1.5")])]}]],
        pa.list_(pa.struct([("m", pa.map_(pa.string(), pa.list_(pa.decimal128(5, 1))))])),
    ),
}


def test_spark_type_is_what_spark_reads(spark, tmp_path):
    path = tmp_path / "types.parquet"
    pq.write_table(pa.table(READABLE), path)
    footer = pq.read_schema(path)
    read = spark.read.parquet(str(path)).schema
    assert {n: spark_type(footer.field(n).type) for n in READABLE} == {
        n: read[n].dataType.simpleString() for n in READABLE
    }
