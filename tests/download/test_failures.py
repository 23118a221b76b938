"""Failed shard rows become ledger rows: exact reason, stage, detail cut to its bound."""

from __future__ import annotations

import pyarrow as pa

from pipeline.download.failures import DETAIL_CHARS, ledger_batch, ledger_batches
from schemas.tables import LEDGER


def _failed(messages: list[str | None], statuses: list[str | None]) -> pa.RecordBatch:
    uids = [f"{i:032x}" for i in range(len(messages))]
    return pa.record_batch(
        {"uid": uids, "status": statuses, "error_message": messages},
        schema=pa.schema(
            [("uid", pa.string()), ("status", pa.string()), ("error_message", pa.string())]
        ),
    )


def test_ledger_batch_classifies_and_bounds_the_detail():
    batch = _failed(
        ["HTTP Error 404: Not Found", None, "é" * (DETAIL_CHARS + 10)],
        ["failed_to_download", "failed_to_resize", None],
    )
    out = ledger_batch(batch)
    assert out.schema == LEDGER
    assert out.to_pylist() == [
        {
            "uid": f"{0:032x}",
            "stage": "download",
            "reason": "download.http_error",
            "detail": "HTTP Error 404: Not Found",
        },
        {"uid": f"{1:032x}", "stage": "download", "reason": "download.resize_error", "detail": ""},
        {
            "uid": f"{2:032x}",
            "stage": "download",
            "reason": "download.failed",
            "detail": "é" * DETAIL_CHARS,
        },
    ]


def test_ledger_batches_maps_every_batch_and_keeps_empty_ones():
    batches = [_failed(["timed out"], ["failed_to_download"]), _failed([], [])]
    out = list(ledger_batches(iter(batches)))
    assert [b.num_rows for b in out] == [1, 0]
    assert out[0].column("reason").to_pylist() == ["download.timeout"]


def test_write_shard_ledgers_writes_a_part_per_shard_and_reports_counts(tmp_path):
    import pyarrow.parquet as pq

    from pipeline.download.failures import write_shard_ledgers
    from pipeline.ledger import read_ledger

    shard = tmp_path / "downloads" / "00003.parquet"
    shard.parent.mkdir()
    batch = _failed(
        [None, "HTTP Error 500: x", None, "image too small"],
        ["success", "failed_to_download", "success", "failed_to_resize"],
    )
    pq.write_table(pa.Table.from_batches([batch]), shard)
    paths = pa.record_batch({"path": [str(shard)]})
    out = pa.Table.from_batches(list(write_shard_ledgers(str(tmp_path / "ledger"), iter([paths]))))
    assert sorted(out.to_pylist(), key=lambda r: r["reason"] or "") == [
        {"reason": None, "rows": 2},
        {"reason": "download.http_error", "rows": 1},
        {"reason": "download.image_too_small", "rows": 1},
    ]
    assert sorted(p.name for p in (tmp_path / "ledger").iterdir()) == ["00003.parquet"]
    assert read_ledger(tmp_path / "ledger").column("uid").to_pylist() == [
        f"{1:032x}",
        f"{3:032x}",
    ]
