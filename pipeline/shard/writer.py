"""Write one LAION-style webdataset shard: `NNNNN.tar` (KEY.jpg, KEY.json, KEY.txt in key order,
fixed mtime and owner, image bytes copied from the source tar without re-encoding), its
`NNNNN.parquet` and `NNNNN_stats.json`, each written whole (pipeline.files), the stats last.

A shard is built column-wise, never row by row (the per-sample Python cost was the bottleneck):
the tar layout is computed up front, USTAR headers are stamped from one tarfile-made template
with numpy, image bytes are read with `preadv` (byte ranges on object storage) straight into a reused write
buffer, the json
members come from one format string over per-column fragments, the parquet from Arrow columns."""

from __future__ import annotations

import itertools
import json
import math
import os
import tarfile
from collections.abc import Iterator
from json.encoder import encode_basestring_ascii

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.faults import kill_point
from pipeline.files import write_atomically, write_bytes_atomically
from pipeline.shard.sources import SourceTars
from pipeline.storage import StoragePath, as_path, filesystem
from schemas.tables import SHARD_SAMPLE

SHARD_RESULT = pa.schema([("shard", pa.string()), ("count", pa.int64()), ("bytes", pa.int64())])
_MTIME = 0  # fixed: the same keep-list gives byte-identical tars
_BLOCK = tarfile.BLOCKSIZE
# The members of one sample, in sorted name order: KEY.jpg < KEY.json < KEY.txt.
_EXTENSIONS = (".jpg", ".json", ".txt")
_PHASH_MASK = 0xFFFF_FFFF_FFFF_FFFF


def shard_name(shard_id: int) -> str:
    return f"{shard_id:05d}"


def sample_key(shard_id: int, index: int, index_digits: int) -> str:
    """img2dataset/LAION keys: 5 digits of shard id, then the index zero-padded."""
    return f"{shard_id:05d}{index:0{index_digits}d}"


def is_complete(out: StoragePath, name: str) -> bool:
    return all((out / f"{name}{suffix}").exists() for suffix in (".tar", ".parquet", "_stats.json"))


# ---- tar headers ----------------------------------------------------------------------------

_NAME_LENGTH = 100  # USTAR name field; no prefix field needed for our short flat names


def _header_template() -> np.ndarray:
    """tarfile's own USTAR header for a plain 0644 file (mtime, uid, gid 0, no owner names),
    with name and size blanked, and the checksum field as spaces, as the checksum counts it."""
    info = tarfile.TarInfo("x")
    info.mtime, info.mode, info.uid, info.gid = _MTIME, 0o644, 0, 0
    info.uname = info.gname = ""
    header = np.frombuffer(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"), np.uint8)
    header = header.copy()
    header[:_NAME_LENGTH] = 0
    header[124:136] = 0
    header[148:156] = ord(" ")
    return header


_TEMPLATE = _header_template()
_TEMPLATE_SUM = int(_TEMPLATE.sum(dtype=np.int64))
_OCTAL_11 = 3 * np.arange(10, -1, -1)  # bit shifts of 11 octal digits, most significant first
_OCTAL_6 = 3 * np.arange(5, -1, -1)


def _octal(values: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Zero-padded octal ASCII digits of each value, one row per value."""
    return ((values[:, None] >> shifts) & 7).astype(np.uint8) + ord("0")


def ustar_headers(names: list[bytes], sizes: np.ndarray) -> np.ndarray:
    """One 512-byte USTAR header per member, as rows of a uint8 array: byte for byte what
    `tarfile.TarInfo.tobuf(USTAR_FORMAT)` gives a 0644 file with mtime, uid and gid 0."""
    sizes = np.asarray(sizes, np.int64)
    if any(len(name) > _NAME_LENGTH for name in names):
        raise ValueError(f"tar member name longer than {_NAME_LENGTH} bytes")
    if len(sizes) and int(sizes.max()) >= 8**11:
        raise ValueError("tar member of 8 GiB or more: a USTAR header cannot hold its size")
    padded = b"".join(name.ljust(_NAME_LENGTH, b"\0") for name in names)
    name_fields = np.frombuffer(padded, np.uint8).reshape(-1, _NAME_LENGTH)
    size_fields = _octal(sizes, _OCTAL_11)  # "%011o\0"
    # Only the name and size differ from the template: the checksum needs no pass over 512 bytes.
    checksums = (
        _TEMPLATE_SUM
        + name_fields.sum(axis=1, dtype=np.int64)
        + size_fields.sum(axis=1, dtype=np.int64)
    )
    headers = np.repeat(_TEMPLATE[None, :], len(names), axis=0)
    headers[:, :_NAME_LENGTH] = name_fields
    headers[:, 124:135] = size_fields
    headers[:, 148:154] = _octal(checksums, _OCTAL_6)  # "%06o\0 ", as tarfile writes it
    headers[:, 154] = 0
    return headers


# ---- json members ---------------------------------------------------------------------------


def _json_number(value: float | None) -> str:
    """What json.dumps writes for an int, a float (NaN and infinities included) or None."""
    if value is None:
        return "null"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (math.inf, -math.inf):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return int.__repr__(value)


def _json_values(column: pa.ChunkedArray | pa.Array, values: list) -> list[str]:
    """json.dumps of each value of a column. The common case (no nulls, finite floats) maps one
    C function over the list; anything else takes the general per-value path."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if column.null_count == 0:
            return list(map(encode_basestring_ascii, values))
        return ["null" if v is None else encode_basestring_ascii(v) for v in values]
    if column.null_count == 0:
        if pa.types.is_integer(kind):
            return list(map(int.__repr__, values))
        if pa.types.is_floating(kind) and pc.all(pc.is_finite(column)).as_py() is not False:
            return list(map(float.__repr__, values))
    return list(map(_json_number, values))


# `json.dumps(record, sort_keys=True)` of the fields of SHARD_SAMPLE, as one format string.
_JSON_FIELDS = sorted(SHARD_SAMPLE.names)
_JSON_FORMAT = "{" + ", ".join(f'"{name}": %s' for name in _JSON_FIELDS) + "}"


def json_members(columns: dict[str, pa.ChunkedArray | pa.Array]) -> list[bytes]:
    """Each sample's KEY.json (its SHARD_SAMPLE fields), built column by column. The values are
    the columns' own, as they arrive: a float32 score stays the float32 value it is."""
    fragments = [_json_values(columns[name], columns[name].to_pylist()) for name in _JSON_FIELDS]
    return [(_JSON_FORMAT % row).encode("ascii") for row in zip(*fragments, strict=True)]


# ---- one shard ------------------------------------------------------------------------------


# One write per MiB or so: the buffer stays in cache and a task's memory stays flat, whatever the
# shard size (a 10,000-sample shard is hundreds of MB).
_CHUNK_BYTES = 1 << 20


def _layout(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each member's header goes (rows: samples, columns: members), and where each
    sample ends: every member is a header block, then its data padded to whole blocks."""
    spans = _BLOCK + sizes + (-sizes % _BLOCK)
    ends = np.cumsum(spans.reshape(-1))
    return (ends - spans.reshape(-1)).reshape(sizes.shape), ends[2::3]


def write_tar(
    path: str,
    keys: list[str],
    jsons: list[bytes],
    texts: list[bytes],
    images: pa.Table,
    downloads: str,
) -> int:
    """Write the tar of one shard: per sample KEY.jpg (its bytes read from `images`'
    shard/offset/image_bytes in `downloads`, a folder or a URL), KEY.json, KEY.txt; then the two zero blocks and
    the padding to whole records that tarfile ends an archive with. Returns its size.

    The samples go out a chunk at a time through one reused buffer: zeroed, headers stamped in
    by block index, json and txt copied in, images read straight into their slots."""
    image_sizes = images.column("image_bytes").to_pylist()
    sources = images.column("shard").to_pylist()
    offsets = images.column("offset").to_pylist()
    count = len(keys)
    sizes = np.empty((count, 3), np.int64)
    sizes[:, 0] = image_sizes
    sizes[:, 1] = [len(d) for d in jsons]
    sizes[:, 2] = [len(d) for d in texts]
    starts, sample_ends = _layout(sizes)
    names = [f"{key}{ext}".encode() for key in keys for ext in _EXTENSIONS]
    headers = ustar_headers(names, sizes.reshape(-1))
    body = int(sample_ends[-1]) if count else 0
    tail = 2 * _BLOCK
    tail += -(body + tail) % tarfile.RECORDSIZE
    biggest = int(np.diff(sample_ends, prepend=0).max()) if count else 0
    buffer = bytearray(max(_CHUNK_BYTES, biggest))
    view, flat = memoryview(buffer), np.frombuffer(buffer, np.uint8)
    slots = starts.tolist()
    tars = SourceTars(downloads)
    try:
        with open(path, "wb") as out:
            first = 0
            while first < count:
                base = slots[first][0]
                last = int(np.searchsorted(sample_ends, base + len(buffer), "right"))
                length = int(sample_ends[last - 1]) - base
                flat[:length] = 0  # the padding
                blocks = flat[:length].reshape(-1, _BLOCK)
                blocks[(starts[first:last].reshape(-1) - base) // _BLOCK] = headers[
                    3 * first : 3 * last
                ]
                for i in range(first, last):
                    _, json_at, text_at = slots[i]
                    json_at += _BLOCK - base
                    text_at += _BLOCK - base
                    buffer[json_at : json_at + len(jsons[i])] = jsons[i]
                    buffer[text_at : text_at + len(texts[i])] = texts[i]
                reads = []
                for i in range(first, last):
                    at = slots[i][0] + _BLOCK - base
                    reads.append((sources[i], offsets[i], view[at : at + image_sizes[i]]))
                tars.read_into(reads)
                out.write(view[:length])
                first = last
            out.write(bytes(tail))
    finally:
        tars.close()
    return body + tail


def _as(column: pa.ChunkedArray, kind: pa.DataType) -> pa.ChunkedArray:
    return column if column.type == kind else column.cast(kind)


def write_shard(
    out: StoragePath | str,
    downloads: StoragePath | str,
    shard_id: int,
    samples: pa.Table,
    index_digits: int,
) -> int:
    """Write shard `shard_id` from its samples (joined rows, sorted by `index`); returns the
    tar's size in bytes."""
    name = shard_name(shard_id)
    key_format = f"{shard_id:05d}%0{index_digits}d"  # sample_key's spelling, one format per shard
    keys = [key_format % i for i in samples.column("index").to_pylist()]
    phashes = [f"{p & _PHASH_MASK:016x}" for p in samples.column("phash").to_pylist()]
    shard, source_key = samples.column("shard"), samples.column("key")
    columns = {
        "key": pa.array(keys, pa.string()),
        "phash": pa.array(phashes, pa.string()),
        "source_key": pc.binary_join_element_wise(shard, source_key, "/"),
    }
    for field in SHARD_SAMPLE.names:
        if field not in columns:
            columns[field] = samples.column(field)
    texts = [(c or "").encode() for c in columns["caption"].to_pylist()]
    out = as_path(out)
    members = json_members(columns)
    sizes: list[int] = []
    write_atomically(
        out / f"{name}.tar",
        lambda tmp: sizes.append(
            write_tar(os.fspath(tmp), keys, members, texts, samples, str(downloads))
        ),
    )
    size = sizes[0]
    table = pa.Table.from_arrays(
        [_as(columns[f.name], f.type) for f in SHARD_SAMPLE], schema=SHARD_SAMPLE
    )
    # Built in memory and written at once: the same bytes as writing to the path, in one write.
    parquet = pa.BufferOutputStream()
    pq.write_table(table, parquet)
    write_bytes_atomically(out / f"{name}.parquet", parquet.getvalue())
    count = len(keys)
    stats = {"count": count, "successes": count, "bytes": size, "status_dict": {"success": count}}
    # The stats file goes last: it marks the shard complete (img2dataset's convention).
    write_bytes_atomically(
        out / f"{name}_stats.json", (json.dumps(stats, sort_keys=True) + "\n").encode()
    )
    return size


def shard_batches(
    batches: Iterator[pa.RecordBatch], out: str, downloads: str, index_digits: int
) -> Iterator[pa.RecordBatch]:
    """`mapInArrow` body over rows partitioned by `shard_id`: writes every shard of the partition
    (skipping shards already complete) and reports (shard, count, bytes)."""
    received = list(batches)
    if not received:
        return
    order = [("shard_id", "ascending"), ("index", "ascending")]
    table = pa.Table.from_batches(received).sort_by(order)
    shard_ids = table.column("shard_id").to_numpy()
    bounds = [0, *(np.flatnonzero(np.diff(shard_ids)) + 1).tolist(), len(shard_ids)]
    target, results = as_path(out), []
    for start, stop in itertools.pairwise(bounds):
        if start == stop:
            continue
        shard_id = int(shard_ids[start])
        name = shard_name(shard_id)
        if is_complete(target, name):
            fs, tar = filesystem(target / f"{name}.tar")
            size = fs.size(tar)
        else:
            samples = table.slice(start, stop - start)
            size = write_shard(out, downloads, shard_id, samples, index_digits)
            kill_point("shard", "shard_written")  # one whole shard on disk, the others not
        results.append({"shard": name, "count": stop - start, "bytes": size})
    if results:
        yield pa.RecordBatch.from_pylist(results, schema=SHARD_RESULT)
