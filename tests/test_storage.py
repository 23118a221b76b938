"""Locations: plain paths stay pathlib, URLs become fsspec paths with Spark's scheme beside them;
atomic writes, data files and folder moves on a real S3 API (moto on 127.0.0.1) and on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.files import data_files, replace_dir, write_atomically, write_text_atomically
from pipeline.storage import (
    arrow_filesystem,
    as_path,
    is_local,
    is_url,
    remove_file,
    remove_tree,
    renames_atomically,
    spark_url,
)


def _objects(s3, root) -> list[str]:
    """Every object under `root`, listed from the bucket (s3fs's `find` of an empty prefix
    answers with the prefix itself)."""
    prefix = root.path + "/"
    return sorted(k[len(prefix) :] for k in s3.filesystem().find(s3.bucket) if k.startswith(prefix))


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("s3://bucket/run", True),
        ("gs://bucket/run", True),
        ("hdfs://namenode:8020/run", True),
        ("file:///data/run", True),
        ("/data/run", False),
        ("runs/demo", False),
        ("C:/runs/demo", False),
    ],
)
def test_is_url(text, url):
    assert is_url(text) is url


def test_plain_paths_stay_resolved_pathlib_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = as_path("runs/demo")
    assert isinstance(path, Path) and is_local(path)
    assert path == tmp_path / "runs" / "demo"
    assert spark_url(path) == str(tmp_path / "runs" / "demo")
    assert arrow_filesystem(path) == (None, str(path))


@pytest.mark.parametrize(
    ("url", "spark"),
    [
        ("s3://bucket/run/candidates", "s3a://bucket/run/candidates"),
        ("file:///data/run/candidates", "file:///data/run/candidates"),
        ("memory://bucket/run", "memory://bucket/run"),
    ],
)
def test_spark_url_maps_s3_to_s3a_and_keeps_the_rest(url, spark):
    path = as_path(url)
    assert not is_local(path)
    assert str(path) == url
    assert spark_url(path) == spark
    assert spark_url(path / "x") == f"{spark}/x"


def test_which_stores_rename_atomically(tmp_path):
    assert renames_atomically(tmp_path)
    assert renames_atomically(as_path(f"file://{tmp_path}"))
    assert not renames_atomically(as_path("memory://bucket/run"))


def test_atomic_text_write_on_s3_leaves_one_whole_object(s3):
    run = as_path(s3.url("run"))
    write_text_atomically(run / "stats.json", json.dumps({"stages": {}}))
    write_text_atomically(run / "stats.json", json.dumps({"stages": {"ingest": {}}}))
    assert json.loads((run / "stats.json").read_text()) == {"stages": {"ingest": {}}}
    assert _objects(s3, run) == ["stats.json"]  # no temporary left behind


def test_failed_write_on_s3_leaves_nothing(s3):
    run = as_path(s3.url("run"))

    def half(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("killed half-way")

    with pytest.raises(OSError, match="half-way"):
        write_atomically(run / "_SUCCESS", half)
    assert not (run / "_SUCCESS").exists()
    assert _objects(s3, run) == []


def test_atomic_write_on_a_file_url_renames_a_temporary(tmp_path):
    target = as_path(f"file://{tmp_path}/run/_COMPLETE")
    write_text_atomically(target, "{}\n")
    assert (tmp_path / "run" / "_COMPLETE").read_text() == "{}\n"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["_COMPLETE"]


def test_data_files_on_s3_leave_markers_and_temporaries_out(s3):
    folder = as_path(s3.url("ledger"))
    table = pa.table({"a": [1]})
    for name in ("b/part-1.parquet", "a/part-0.parquet", "_temporary/x.parquet", ".p.tmp.parquet"):
        write_atomically(folder / name, lambda tmp: pq.write_table(table, tmp))
    write_text_atomically(folder / "_COMPLETE", "{}")
    assert data_files(folder, "**/*.parquet") == [
        str(folder / "a" / "part-0.parquet"),
        str(folder / "b" / "part-1.parquet"),
    ]
    assert data_files(folder) == []  # `*.parquet` does not descend


def test_replace_dir_and_remove_on_s3(s3):
    root = as_path(s3.url("run"))
    write_text_atomically(root / "_work" / "ledger" / "part-0", "new")
    write_text_atomically(root / "ledger" / "old", "old")
    replace_dir(root / "_work" / "ledger", root / "ledger")
    assert _objects(s3, root) == ["ledger/part-0"]
    remove_file(root / "ledger" / "part-0")
    remove_file(root / "ledger" / "absent")
    write_text_atomically(root / "x" / "y", "y")
    remove_tree(root / "x")
    remove_tree(root / "never-there")
    assert _objects(s3, root) == []
