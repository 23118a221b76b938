"""The shard writer without Spark: its bulk-built headers, json members and tars are byte for byte
what tarfile and json.dumps give, across chunk boundaries, and webdataset reads them."""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from pipeline.shard import writer
from schemas.tables import SHARD_SAMPLE


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid = size, 0, 0o644, 0, 0
    info.uname = info.gname = ""
    return info


def test_headers_are_tarfiles_own():
    names = [b"000001.jpg", b"0000010.json", b"x" * 100, b"a.txt", b"00000123456789.txt"]
    sizes = [0, 1, 511, 512, 8**11 - 1]
    headers = writer.ustar_headers(names, np.array(sizes))
    for row, name, size in zip(headers, names, sizes, strict=True):
        expected = _tarinfo(name.decode(), size).tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
        assert row.tobytes() == expected


def test_headers_refuse_what_ustar_cannot_hold():
    with pytest.raises(ValueError, match="name"):
        writer.ustar_headers([b"x" * 101], np.array([1]))
    with pytest.raises(ValueError, match="8 GiB"):
        writer.ustar_headers([b"x"], np.array([8**11]))


def _record(i: int) -> dict:
    """A SHARD_SAMPLE row with the awkward values: nulls, unicode, escapes, NaN, infinities."""
    captions = [None, 'Ünïcödé "q" \\ \t\x01 ✓ 😀', "plain", ""]
    scores = [0.25, float("nan"), float("inf"), -float("inf"), None, 1e-05, 1.0, 0.1]
    return {
        "key": f"00000{i:03d}",
        "uid": f"{i:032x}",
        "url": f"http://example.com/{i}?q=ä",
        "caption": captions[i % len(captions)],
        "width": None if i == 5 else 100 + i,
        "height": 2**31 - 1 - i,
        "original_width": 0,
        "original_height": -1,
        "lang": "en",
        "lang_score": scores[i % len(scores)],
        "clip_score": scores[(i + 3) % len(scores)],
        "phash": f"{i:016x}",
        "sha256": "ab" * 32,
        "source_key": f"00001/{i:09d}",
    }


@pytest.mark.parametrize("float_type", [pa.float32(), pa.float64()])
def test_json_members_are_json_dumps(float_type):
    records = [_record(i) for i in range(24)]
    table = pa.Table.from_pylist(records, schema=SHARD_SAMPLE)
    table = table.cast(
        pa.schema(
            [f.with_type(float_type) if pa.types.is_floating(f.type) else f for f in SHARD_SAMPLE]
        )
    )
    columns = {name: table.column(name) for name in table.column_names}
    rows = table.to_pylist()  # the values as they arrive (float32 widened as Python sees them)
    expected = [json.dumps(row, sort_keys=True).encode() for row in rows]
    assert writer.json_members(columns) == expected
    # A column of floats with no nulls and no NaN takes the fast path: the same text.
    finite = pa.chunked_array([pa.array([0.1, 1e-05, 1.0, 3.0e20], float_type)])
    assert writer._json_values(finite, finite.to_pylist()) == [
        json.dumps(v) for v in finite.to_pylist()
    ]


def _downloads(tmp_path, count: int, seed: int = 0):
    """Two source tars of random-sized images; rows saying where each image lies."""
    rng = random.Random(seed)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    rows = []
    for source in ("00000", "00001"):
        with tarfile.open(downloads / f"{source}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for j in range(count):
                size = rng.choice([0, 1, 511, 512, 513, rng.randrange(1, 40_000)])
                data = rng.randbytes(size)
                tar.addfile(_tarinfo(f"{j:09d}.jpg", size), io.BytesIO(data))
        with tarfile.open(downloads / f"{source}.tar") as tar:
            for member in tar.getmembers():
                data = tar.extractfile(member).read()
                rows.append(
                    {
                        "uid": hashlib.md5(f"{source}{member.name}".encode()).hexdigest(),
                        "clip_score": rng.random(),
                        "shard": source,
                        "key": member.name[:-4],
                        "offset": member.offset_data,
                        "image_bytes": member.size,
                        "width": rng.randrange(1, 999),
                        "height": rng.randrange(1, 999),
                        "original_width": rng.randrange(1, 9999),
                        "original_height": rng.randrange(1, 9999),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "phash": rng.randrange(-(2**63), 2**63),
                        "url": f"http://example.com/{member.name}",
                        "caption": rng.choice([None, "a caption", "ü ✓"]),
                        "lang": "en",
                        "lang_score": rng.random(),
                    }
                )
    rng.shuffle(rows)
    return downloads, rows


def _reference_tar(records: list[dict], images: list[bytes]) -> bytes:
    """The shard tar as tarfile writes it (the contract the fast writer keeps byte for byte)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for record, image in zip(records, images, strict=True):
            members = [
                (".jpg", image),
                (".json", json.dumps(record, sort_keys=True).encode()),
                (".txt", (record["caption"] or "").encode()),
            ]
            for ext, data in members:
                tar.addfile(_tarinfo(record["key"] + ext, len(data)), io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("chunk_bytes", [1, 4096, 1 << 20])
def test_shards_are_tarfiles_own_bytes_and_webdataset_reads_them(
    tmp_path, monkeypatch, chunk_bytes
):
    # Chunks of one sample each, of a few samples, and of whole shards.
    monkeypatch.setattr(writer, "_CHUNK_BYTES", chunk_bytes)
    downloads, rows = _downloads(tmp_path, count=30)
    per_shard, digits = 25, 2
    for position, row in enumerate(rows):
        row["shard_id"], row["index"] = divmod(position, per_shard)
    table = pa.Table.from_pylist(rows)
    out = tmp_path / "shards"
    out.mkdir()
    # Several shards in one task, arriving in several batches, out of order.
    batches = table.take(np.random.default_rng(1).permutation(len(rows))).to_batches(17)
    (result,) = writer.shard_batches(iter(batches), str(out), str(downloads), digits)
    shards = -(-len(rows) // per_shard)
    assert result.column("count").to_pylist() == [per_shard] * (shards - 1) + [
        len(rows) - per_shard * (shards - 1)
    ]
    for shard_id, size in enumerate(result.column("bytes").to_pylist()):
        name = writer.shard_name(shard_id)
        members = [r for r in rows if r["shard_id"] == shard_id]
        parquet = pq.read_table(out / f"{name}.parquet")
        assert parquet.schema == SHARD_SAMPLE
        records = parquet.to_pylist()
        assert [r["key"] for r in records] == [
            writer.sample_key(shard_id, r["index"], digits) for r in members
        ]
        images = []
        for record, row in zip(records, members, strict=True):
            with open(downloads / f"{row['shard']}.tar", "rb") as source:
                source.seek(row["offset"])
                images.append(source.read(row["image_bytes"]))
            # The json carries the values as they arrived; the parquet holds them as float32.
            record["lang_score"], record["clip_score"] = row["lang_score"], row["clip_score"]
        data = (out / f"{name}.tar").read_bytes()
        assert len(data) == size
        assert data == _reference_tar(records, images)
        samples = list(wds.WebDataset(str(out / f"{name}.tar"), shardshuffle=False))
        assert [s["__key__"] for s in samples] == [r["key"] for r in records]
        for sample, record, image in zip(samples, records, images, strict=True):
            assert sample["jpg"] == image
            assert json.loads(sample["json"]) == record
            assert sample["txt"].decode() == (record["caption"] or "")
        stats = json.loads((out / f"{name}_stats.json").read_text())
        assert stats == {
            "bytes": size,
            "count": len(members),
            "status_dict": {"success": len(members)},
            "successes": len(members),
        }
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_complete_shards_are_skipped_and_nothing_is_reported_for_no_rows(tmp_path):
    downloads, rows = _downloads(tmp_path, count=3)
    for position, row in enumerate(rows):
        row["shard_id"], row["index"] = divmod(position, 4)
    table = pa.Table.from_pylist(rows)
    out = tmp_path / "shards"
    out.mkdir()
    first = list(writer.shard_batches(iter(table.to_batches()), str(out), str(downloads), 1))
    stamp = (out / "00000.tar").stat().st_mtime_ns
    again = list(writer.shard_batches(iter(table.to_batches()), str(out), str(downloads), 1))
    assert (out / "00000.tar").stat().st_mtime_ns == stamp
    assert again[0].to_pylist() == first[0].to_pylist()
    assert list(writer.shard_batches(iter([]), str(out), str(downloads), 1)) == []
    assert math.ceil(len(rows) / 4) == first[0].num_rows


@pytest.mark.parametrize("chunk_bytes", [4096, 1 << 20])
def test_shards_read_from_and_written_to_a_bucket_are_the_same_bytes(
    tmp_path, monkeypatch, s3, chunk_bytes
):
    """Source tars in S3 (moto on 127.0.0.1) read by byte ranges, shards written to S3 whole:
    the same bytes as on disk, and a complete shard in the bucket is not rewritten."""
    monkeypatch.setattr(writer, "_CHUNK_BYTES", chunk_bytes)
    downloads, rows = _downloads(tmp_path, count=12)
    for position, row in enumerate(rows):
        row["shard_id"], row["index"] = divmod(position, 10)
    table = pa.Table.from_pylist(rows)
    local = tmp_path / "shards"
    local.mkdir()
    (expected,) = writer.shard_batches(iter(table.to_batches()), str(local), str(downloads), 2)
    fs = s3.filesystem()
    remote_downloads, remote_out = s3.url("downloads"), s3.url("shards")
    for tar in sorted(downloads.iterdir()):
        fs.put_file(str(tar), f"{remote_downloads.removeprefix('s3://')}/{tar.name}")
    batches = iter(table.to_batches())
    (result,) = writer.shard_batches(batches, remote_out, remote_downloads, 2)
    assert result.to_pylist() == expected.to_pylist()
    out = remote_out.removeprefix("s3://")
    names = sorted(p.name for p in local.iterdir())
    assert sorted(k.rsplit("/", 1)[1] for k in fs.find(out)) == names
    for name in names:
        assert fs.cat_file(f"{out}/{name}") == (local / name).read_bytes(), name
    again = writer.shard_batches(iter(table.to_batches()), remote_out, "s3://no-such/x", 2)
    assert next(again).to_pylist() == expected.to_pylist()  # complete: sources never read
