"""Extra input columns of every value type reach the shard `.json` safely: ingest stores them as
JSON-safe types (pipeline.ingest.json_safe), the download writes them with img2dataset, and each
sample's `.json` holds the documented values (base64 bytes, decimal and ISO strings, null for
NaN and infinities, maps as [key, value] pairs)."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.config import load_config
from pipeline.demo.image_server import ImageServer
from pipeline.ingest.json_safe import json_safe_type, to_json_safe
from pipeline.ingest.normalize import make_uid
from pipeline.ledger import read_ledger
from pipeline.runner import run_stage
from tests.conftest import LOCAL_DOWNLOAD, LOCAL_NETWORK, write_parquet

NAN = float("nan")
INF = float("inf")
PARIS = "Europe/Paris"
CAPTIONS = ["a small red car parked on a quiet street", "a brown horse standing in a green field"]

# name: (Arrow array of two rows, the values the two samples' .json must hold)
HOSTILE: dict[str, tuple[pa.Array, list]] = {
    "raw": (pa.array([b"\xff\xfe\x00\x80", None], pa.binary()), ["//4AgA==", None]),
    "blob": (pa.array([b"\xc3\x28", b""], pa.large_binary()), ["wyg=", ""]),
    "dec": (
        pa.array([decimal.Decimal("12.50"), decimal.Decimal("0.00")], pa.decimal128(10, 2)),
        ["12.50", "0.00"],
    ),
    "ubig": (pa.array([2**64 - 1, 0], pa.uint64()), ["18446744073709551615", "0"]),
    "big": (pa.array([2**62, -1], pa.int64()), [2**62, -1]),
    "ts": (
        pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 6), None], pa.timestamp("us")),
        ["2024-01-02T03:04:05.000006", None],
    ),
    "ts_tz": (
        pa.array(
            [dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC), dt.datetime(1, 1, 2, tzinfo=dt.UTC)],
            pa.timestamp("ms", tz=PARIS),
        ),
        ["2024-06-01T12:00:00.000000Z", "0001-01-02T00:00:00.000000Z"],
    ),
    "day": (pa.array([dt.date(2024, 1, 2), dt.date(1, 1, 1)]), ["2024-01-02", "0001-01-01"]),
    "score": (pa.array([NAN, 0.25]), [None, 0.25]),
    "score32": (pa.array([-INF, 1.5], pa.float32()), [None, 1.5]),
    "st": (
        pa.array(
            [{"a": 1, "b": b"\x00", "c": NAN}, None],
            pa.struct([("a", pa.int64()), ("b", pa.binary()), ("c", pa.float64())]),
        ),
        [{"a": 1, "b": "AA==", "c": None}, None],
    ),
    "tags": (pa.array([[1.5, NAN, INF], []]), [[1.5, None, None], []]),
    "attrs": (
        pa.array([[("k", b"\xff")], None], pa.map_(pa.string(), pa.binary())),
        [[["k", "/w=="]], None],
    ),
    "flag": (pa.array([True, None]), [True, None]),
    # Carried under input_<name>: a name of ours in another case, and a leading underscore.
    "Width": (pa.array(["w0", "w1"]), ["w0", "w1"]),
    "_private": (pa.array([1, 2], pa.int32()), [1, 2]),
}
CARRIED_AS = {"Width": "input_Width", "_private": "input__private"}


def test_every_value_converts_to_its_documented_json():
    """The conversion alone, over Arrow arrays: the values and the declared types."""
    for name, (array, expected) in HOSTILE.items():
        safe = to_json_safe(array)
        assert safe.type == json_safe_type(array.type), name
        values = json.loads(json.dumps(safe.to_pylist(), allow_nan=False))
        if pa.types.is_map(array.type):  # Arrow gives map entries as (key, value) tuples
            values = [None if v is None else [list(e) for e in v] for v in values]
        assert values == expected, name


def test_json_safe_types_hold_no_bytes_decimal_or_time():
    assert json_safe_type(pa.binary()) == pa.string()
    assert json_safe_type(pa.decimal128(10, 2)) == pa.string()
    assert json_safe_type(pa.timestamp("us", tz="UTC")) == pa.string()
    assert json_safe_type(pa.date32()) == pa.string()
    assert json_safe_type(pa.list_(pa.binary())) == pa.list_(pa.string())
    assert json_safe_type(pa.int64()) == pa.int64()
    assert json_safe_type(pa.float32()) == pa.float32()


def _jpeg(color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), color).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def downloaded(spark, tmp_path_factory):
    """Two image pairs with every hostile extra column, through ingest, preselect, download."""
    base = tmp_path_factory.mktemp("extra_columns")
    files = base / "web"
    files.mkdir()
    (files / "red.jpg").write_bytes(_jpeg((200, 30, 30)))
    (files / "brown.jpg").write_bytes(_jpeg((120, 80, 40)))
    with ImageServer(files) as server:
        urls = [f"{server.base_url}/red.jpg", f"{server.base_url}/brown.jpg"]
        src = write_parquet(
            base / "input.parquet",
            {"url": urls, "caption": CAPTIONS, **{n: a for n, (a, _) in HOSTILE.items()}},
        )
        run = base / "run"
        ingest = run_stage("ingest", run, load_config(None, LOCAL_NETWORK), input_path=str(src))
        run_stage("preselect", run, load_config(None, LOCAL_NETWORK))
        download = run_stage("download", run, load_config(None, LOCAL_DOWNLOAD))
        # The images, and the origin's robots.txt once (download.respect_robots_txt).
        assert server.requests.count("/robots.txt") == 1
        fetched = server.request_count - 1
    return run, urls, ingest, download, fetched


def _samples(run) -> dict[str, dict]:
    out = {}
    for tar in sorted((run / "downloads").glob("*.tar")):
        with tarfile.open(tar) as archive:
            for member in archive.getmembers():
                if member.name.endswith(".json"):
                    meta = json.load(archive.extractfile(member))
                    out[meta["uid"]] = meta
    return out


def test_candidates_hold_json_safe_types(downloaded):
    run, _, ingest, _, _ = downloaded
    assert ingest["rows_in"] == 2 and ingest["rows_kept"] == 2
    schema = pq.read_schema(next((run / "candidates").glob("*.parquet")))
    for name, (array, _) in HOSTILE.items():
        assert schema.field(CARRIED_AS.get(name, name)).type == json_safe_type(array.type), name


def test_every_sample_json_holds_the_documented_values(downloaded):
    run, urls, _, download, fetched = downloaded
    assert fetched == 2
    assert download["rows_in"] == 2 and download["rows_kept"] == 2, download
    assert read_ledger(run / "ledger" / "download").num_rows == 0
    samples = _samples(run)
    for row, (url, caption) in enumerate(zip(urls, CAPTIONS, strict=True)):
        meta = samples[make_uid(url, caption)]
        got = {name: meta[CARRIED_AS.get(name, name)] for name in HOSTILE}
        assert got == {name: values[row] for name, (_, values) in HOSTILE.items()}


def test_sample_json_is_strict_json(downloaded):
    """No NaN or Infinity tokens: every .json parses with a parser that refuses them."""
    run = downloaded[0]

    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    for tar in sorted((run / "downloads").glob("*.tar")):
        with tarfile.open(tar) as archive:
            for member in archive.getmembers():
                if member.name.endswith(".json"):
                    text = archive.extractfile(member).read().decode("utf-8")
                    meta = json.loads(text, parse_constant=refuse)
                    assert not any(isinstance(v, float) and math.isnan(v) for v in meta.values())
