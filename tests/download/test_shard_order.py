"""A finished download shard in key order: tar members and parquet rows, contents unchanged."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.download import runner
from pipeline.download.runner import guarded_components
from pipeline.download.settings import DownloadConfig
from pipeline.download.shard_order import sort_shard

# Completion order, as img2dataset's threads finish: not the keys' order.
KEYS = ["000000003", "000000000", "000000002"]


def _write_shard(folder: Path, keys: list[str]) -> None:
    with tarfile.open(folder / "00000.tar", "w") as tar:
        for key in keys:
            for ext, body in (("jpg", b"\xff\xd8" + key.encode()), ("json", b'{"k": 1}')):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    table = pa.table(
        {"key": keys + ["000000001"], "status": ["success"] * 3 + ["failed_to_download"]}
    )
    pq.write_table(table, folder / "00000.parquet")


def _members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def test_a_shard_in_completion_order_is_rewritten_in_key_order(tmp_path: Path) -> None:
    _write_shard(tmp_path, KEYS)
    before = dict(_members(tmp_path / "00000.tar"))
    assert sort_shard(str(tmp_path), "00000") == 6
    after = _members(tmp_path / "00000.tar")
    assert [name for name, _ in after] == [
        "000000000.jpg",
        "000000000.json",
        "000000002.jpg",
        "000000002.json",
        "000000003.jpg",
        "000000003.json",
    ]
    assert dict(after) == before
    rows = pq.read_table(tmp_path / "00000.parquet")
    assert rows.column("key").to_pylist() == ["000000000", "000000001", "000000002", "000000003"]
    assert rows.column("status").to_pylist()[1] == "failed_to_download"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000.parquet", "00000.tar"]


def test_a_shard_already_in_order_is_not_rewritten(tmp_path: Path) -> None:
    _write_shard(tmp_path, sorted(KEYS))
    table = pq.read_table(tmp_path / "00000.parquet").sort_by("key")
    pq.write_table(table, tmp_path / "00000.parquet")
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert sort_shard(str(tmp_path), "00000") == 6
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps


def test_a_shard_with_no_tar_is_left_alone(tmp_path: Path) -> None:
    assert sort_shard(str(tmp_path), "00007") == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key_order", [True, False])
def test_the_setting_reaches_every_download_process(key_order: bool) -> None:
    with guarded_components(DownloadConfig(key_order=key_order), ()):
        assert runner.img2dataset_main.Downloader.keywords["key_order"] is key_order
