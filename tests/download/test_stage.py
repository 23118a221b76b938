"""The download stage end to end: the synthetic web served on 127.0.0.1, img2dataset with our
guards, every fault ending as its reason code, the accounting identity, resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.demo.synthetic_web import (
    load_ground_truth,
)
from pipeline.download.failures import ledger_counts, read_shard_counts
from pipeline.download.stage import complete_shards, download_input, write_ledger
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.runner import StageContext, run_stage
from pipeline.stages import get_stage
from tests.conftest import LOCAL_DOWNLOAD, copy_run

EXPECTED = {
    "fault_404": "download.http_error",
    "fault_500": "download.http_error",
    "fault_slow": "download.timeout",
    "fault_truncated": "download.decode_error",
    "fault_html": "download.decode_error",
    "fault_empty": "download.decode_error",
    "fault_bomb": "download.too_many_pixels",
    "fault_noai": "download.opted_out",
    "small_image": "download.image_too_small",
    "extreme_aspect": "download.aspect_ratio",
}


def _shard_rows(run: RunDir) -> pa.Table:
    files = sorted(run.downloads.glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f, columns=["uid", "gt_id", "status"]) for f in files])


def test_every_fault_ends_as_its_reason_code(downloaded, web_and_server):
    run, _, _ = downloaded
    web, _ = web_and_server
    noise = dict(
        zip(*load_ground_truth(web).select(["gt_id", "noise"]).to_pydict().values(), strict=True)
    )
    gt_of_uid = dict(
        zip(*_shard_rows(run).select(["uid", "gt_id"]).to_pydict().values(), strict=True)
    )
    reasons = {
        row["uid"]: row["reason"] for row in read_ledger(run.ledger_for("download")).to_pylist()
    }
    seen: dict[str, set] = {}
    for uid, gt_id in gt_of_uid.items():
        seen.setdefault(noise[gt_id], set()).add(reasons.get(uid))
    for kind, code in EXPECTED.items():
        assert seen[kind] == {code}, kind
    for kind in (
        "clean",
        "fault_redirect",
        "exact_duplicate",
        "near_duplicate_resize",
        "near_duplicate_crop",
    ):
        assert seen[kind] == {None}, kind


def test_accounting_identity(downloaded):
    run, entry, _ = downloaded
    n_candidates = pq.read_table(run.candidates).num_rows
    shard_rows = _shard_rows(run)
    successes = shard_rows.filter(pa.compute.equal(shard_rows.column("status"), "success")).num_rows
    ledger = read_ledger(run.ledger_for("download"))
    assert successes + ledger.num_rows == n_candidates
    assert (entry["rows_in"], entry["rows_kept"]) == (n_candidates, successes)
    assert set(ledger.column("stage").to_pylist()) == {"download"}
    # Every candidate is accounted for exactly once.
    uids = shard_rows.column("uid").to_pylist()
    assert sorted(uids) == sorted(pq.read_table(run.candidates).column("uid").to_pylist())


def test_shards_are_webdataset_with_uid_carried(downloaded):
    import tarfile

    run, entry, _ = downloaded
    tars = sorted(run.downloads.glob("*.tar"))
    assert len(tars) == entry["shards"] == len(complete_shards(run.downloads))
    with tarfile.open(tars[0]) as tar:
        names = tar.getnames()
        meta = next(m for m in tar.getmembers() if m.name.endswith(".json"))
        record = __import__("json").loads(tar.extractfile(meta).read())
    assert any(n.endswith(".jpg") for n in names) and any(n.endswith(".txt") for n in names)
    assert len(record["uid"]) == 32 and record["lang"] == "en"
    # In key order, not in the order img2dataset's threads finished: the raw pool's stream is
    # the same in every run (shard_order).
    for tar_path in tars:
        with tarfile.open(tar_path) as tar:
            members = tar.getnames()
        assert members == sorted(members, key=lambda n: (n.split(".", 1)[0], n))
        keys = pq.read_table(tar_path.with_suffix(".parquet"), columns=["key"]).column("key")
        assert keys.to_pylist() == sorted(keys.to_pylist())


def test_finished_run_makes_no_request(downloaded, web_and_server):
    run, entry, requests = downloaded
    _, server = web_and_server
    assert requests > 0
    before = server.request_count
    assert run_stage("download", run.root, load_config(None, LOCAL_DOWNLOAD)) == entry
    assert server.request_count == before


def test_default_config_refuses_loopback(ingested, web_and_server, tmp_path):
    _, server = web_and_server
    run = copy_run(ingested, tmp_path / "run")
    before = server.request_count
    entry = run_stage("download", run.root, load_config(None, ["download.processes=1"]))
    assert entry["rows_kept"] == 0
    assert entry["dropped_by_reason"] == {"download.blocked_address": entry["rows_in"]}
    assert server.request_count == before  # refused before connecting


def test_killed_download_resumes_without_loss_or_duplicates(ingested, downloaded, tmp_path):
    reference, _, _ = downloaded
    run = copy_run(ingested, tmp_path / "run")
    overrides = [
        *LOCAL_DOWNLOAD[:2],
        "download.processes=1",
        "download.threads=2",
        "download.samples_per_shard=8",
    ]
    args = [sys.executable, "-m", "pipeline", "download", "--run-dir", str(run.root)]
    for o in overrides:
        args += ["--set", o]
    proc = subprocess.Popen(
        args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while (
        not complete_shards(run.downloads) and time.monotonic() < deadline and proc.poll() is None
    ):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_candidates = pq.read_table(run.candidates).num_rows
    expected_shards = download_input(run.candidates).shards(8)
    done = len(complete_shards(run.downloads))
    assert 0 < done < expected_shards, "the kill must land part-way"
    assert not run.is_complete("download")

    run_stage("download", run.root, load_config(None, overrides))
    rows = _shard_rows(run)
    uids = rows.column("uid").to_pylist()
    assert len(uids) == len(set(uids)) == n_candidates
    ok = set(
        rows.filter(pa.compute.equal(rows.column("status"), "success")).column("uid").to_pylist()
    )
    ref = _shard_rows(reference)
    assert ok == set(
        ref.filter(pa.compute.equal(ref.column("status"), "success")).column("uid").to_pylist()
    )
    ledger = read_ledger(run.ledger_for("download")).column("uid").to_pylist()
    assert len(ledger) == len(set(ledger)) == n_candidates - len(ok)


def test_download_processes_write_each_shards_ledger_part_with_its_counts(
    downloaded, spark, tmp_path
):
    run, entry, _ = downloaded
    ledger = run.ledger_for("download")
    shards = complete_shards(run.downloads)
    counts = [read_shard_counts(ledger, s) for s in shards]
    assert None not in counts, "every shard's part carries its counts in the footer"
    by_reason: dict = {}
    for c in counts:
        for reason, rows in c.items():
            by_reason[reason] = by_reason.get(reason, 0) + rows
    total = ledger_counts(by_reason)
    assert total.successes == entry["rows_kept"]
    assert total.dropped == entry["dropped_by_reason"]
    assert read_ledger(ledger).num_rows == entry["rows_dropped"]

    # A shard without its part (killed between the shard and the part, or written by an older
    # version): the stage's Spark job writes it, with the same rows and counts.
    copy = copy_run(run.root, tmp_path / "copy")
    before = pq.read_table(copy.ledger_for("download") / f"{shards[0]}.parquet")
    (copy.ledger_for("download") / f"{shards[0]}.parquet").unlink()
    ctx = StageContext(get_stage("download"), copy, load_config(None, LOCAL_DOWNLOAD), _spark=spark)
    result = write_ledger(ctx, [str(copy.downloads / f"{s}.parquet") for s in shards])
    assert result == total
    assert read_shard_counts(copy.ledger_for("download"), shards[0]) == counts[0]
    after = pq.read_table(copy.ledger_for("download") / f"{shards[0]}.parquet")
    assert after.replace_schema_metadata(None).equals(before.replace_schema_metadata(None))


def test_download_input_hands_img2dataset_the_candidate_files_in_name_order(tmp_path):
    folder = tmp_path / "candidates"
    folder.mkdir()
    for name, n in (("part-00001-c000.parquet", 5), ("part-00000-c000.parquet", 12)):
        pq.write_table(
            pa.table(
                {"uid": [f"{i:032x}" for i in range(n)], "url": ["u"] * n, "caption": ["c"] * n}
            ),
            folder / name,
        )
    (folder / "_COMPLETE").write_text("{}\n")
    source = download_input(folder)
    assert [os.path.basename(f) for f in source.files] == [
        "part-00000-c000.parquet",
        "part-00001-c000.parquet",
    ]
    assert (source.rows, source.rows_in, source.carried) == ((12, 5), 17, ("uid",))
    # img2dataset cuts each file on its own: 12 -> 10 + 2, 5 -> 5.
    assert source.shards(10) == 3


def test_download_input_refuses_a_stray_parquet_img2dataset_would_read(tmp_path):
    folder = tmp_path / "candidates"
    folder.mkdir()
    table = pa.table({"uid": ["a" * 32], "url": ["u"], "caption": ["c"]})
    pq.write_table(table, folder / "part-00000.parquet")
    pq.write_table(table, folder / ".part-00001.parquet")
    with pytest.raises(RuntimeError, match=r"\.part-00001\.parquet"):
        download_input(folder)
