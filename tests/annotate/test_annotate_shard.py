"""Annotating one shard without Spark: good images, corrupt members, missing members and a
truncated tar each end as an annotation row or their exact reason code."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.annotate.annotate_shard import annotate_shard
from pipeline.annotate.phash import phash_bytes


def _jpeg(color, size=(300, 260)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _write_shard(folder: Path, shard: str, members: dict[str, bytes], rows: list[dict]) -> None:
    with tarfile.open(folder / f"{shard}.tar", "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    pq.write_table(
        pa.table(
            {
                "uid": [r["uid"] for r in rows],
                "key": [r["key"] for r in rows],
                "status": [r.get("status", "success") for r in rows],
                "original_width": pa.array([600] * len(rows), pa.int32()),
                "original_height": pa.array([520] * len(rows), pa.int32()),
            }
        ),
        folder / f"{shard}.parquet",
    )


def _annotate(folder: Path, shard: str) -> dict[str, dict]:
    rows = pa.Table.from_batches(list(annotate_shard(folder, shard, batch_rows=2))).to_pylist()
    return {r["uid"]: r for r in rows}


def test_good_corrupt_and_missing_members(tmp_path):
    good = _jpeg((200, 20, 20))
    members = {
        "000000000.jpg": good,
        "000000000.txt": b"a red square",
        "000000001.jpg": b"\xff\xd8 not really a jpeg",
        "000000002.txt": b"caption without an image",
    }
    rows = [
        {"uid": "u0", "key": "000000000"},
        {"uid": "u1", "key": "000000001"},
        {"uid": "u2", "key": "000000002"},
        {"uid": "u3", "key": "000000003", "status": "failed_to_download"},  # not a sample
    ]
    _write_shard(tmp_path, "00000", members, rows)
    out = _annotate(tmp_path, "00000")
    assert set(out) == {"u0", "u1", "u2"}
    phash, width, height = phash_bytes(good)
    assert out["u0"]["reason"] is None
    assert (out["u0"]["phash"], out["u0"]["width"], out["u0"]["height"]) == (phash, width, height)
    assert out["u0"]["sha256"] == hashlib.sha256(good).hexdigest()
    assert (out["u0"]["original_width"], out["u0"]["original_height"]) == (600, 520)
    with open(tmp_path / "00000.tar", "rb") as f:  # the offset lets later stages seek
        f.seek(out["u0"]["offset"])
        assert f.read(out["u0"]["image_bytes"]) == good
    assert out["u1"]["reason"] == "annotate.decode_error"
    assert out["u2"]["reason"] == "annotate.missing_image"


def test_truncated_tar_accounts_for_every_sample(tmp_path):
    members = {f"00000000{i}.jpg": _jpeg((40 * i, 90, 90)) for i in range(4)}
    _write_shard(
        tmp_path, "00001", members, [{"uid": f"u{i}", "key": f"00000000{i}"} for i in range(4)]
    )
    tar = tmp_path / "00001.tar"
    with tarfile.open(tar) as t:
        second = t.getmembers()[1]
    tar.write_bytes(tar.read_bytes()[: second.offset_data + 100])  # cut inside the second image
    out = _annotate(tmp_path, "00001")
    assert {uid: r["reason"] for uid, r in out.items()} == {
        "u0": None,
        "u1": "annotate.unreadable_shard",
        "u2": "annotate.unreadable_shard",
        "u3": "annotate.unreadable_shard",
    }
    assert out["u1"]["detail"].startswith("ReadError: ")
