"""The download ledger's Spark job over img2dataset-shaped shard parquet files: every failure
once with its exact reason, successes counted, nothing collected but counts."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.download.plan import write_ledger
from pipeline.ledger import read_ledger


def _shard(path, uids, statuses, messages) -> str:
    table = pa.table(
        {
            "url": [f"http://127.0.0.1/{u}.jpg" for u in uids],
            "caption": ["a picture"] * len(uids),
            "uid": uids,
            "key": [f"{i:09d}" for i in range(len(uids))],
            "status": statuses,
            "error_message": messages,
            "width": pa.array([64 if s == "success" else None for s in statuses], pa.int32()),
        },
        schema=pa.schema(
            [
                ("url", pa.string()),
                ("caption", pa.string()),
                ("uid", pa.string()),
                ("key", pa.string()),
                ("status", pa.string()),
                ("error_message", pa.string()),
                ("width", pa.int32()),
            ]
        ),
    )
    pq.write_table(table, path)
    return str(path)


def test_ledger_job_writes_each_failure_once_with_its_reason(spark, tmp_path):
    uid = [f"{i:032x}" for i in range(6)]
    files = [
        _shard(
            tmp_path / "00000.parquet",
            uid[:3],
            ["success", "failed_to_download", "failed_to_resize"],
            [None, "HTTP Error 404: Not Found", "image too small"],
        ),
        _shard(
            tmp_path / "00001.parquet",
            uid[3:],
            ["success", None, "failed_to_download"],
            [None, None, "<urlopen error [Errno 111] Connection refused>"],
        ),
    ]
    counts = write_ledger(spark, files, str(tmp_path / "ledger"))
    assert (counts.rows, counts.successes) == (6, 2)
    assert counts.dropped == {
        "download.failed": 1,
        "download.http_error": 1,
        "download.image_too_small": 1,
        "download.network_error": 1,
    }
    rows = read_ledger(tmp_path / "ledger").sort_by("uid").to_pylist()
    assert [(r["uid"], r["stage"], r["reason"]) for r in rows] == [
        (uid[1], "download", "download.http_error"),
        (uid[2], "download", "download.image_too_small"),
        (uid[4], "download", "download.failed"),
        (uid[5], "download", "download.network_error"),
    ]
    assert rows[0]["detail"] == "HTTP Error 404: Not Found"


def test_ledger_job_with_no_failure_writes_an_empty_ledger(spark, tmp_path):
    files = [_shard(tmp_path / "00000.parquet", [f"{0:032x}"], ["success"], [None])]
    counts = write_ledger(spark, files, str(tmp_path / "ledger"))
    assert (counts.rows, counts.successes, counts.dropped) == (1, 1, {})
    assert read_ledger(tmp_path / "ledger").num_rows == 0
