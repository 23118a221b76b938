"""A run directory in an S3 bucket (moto's S3 API on 127.0.0.1, no AWS account).

Spark here has no S3 connector (hadoop-aws and the AWS SDK are jars that cannot be fetched
offline), so a stage whose Spark job reads or writes tables through Hadoop (ingest, annotate's
and the later stages' `write_decisions`) cannot run on `s3a://` in these tests; what runs in
Python through fsspec does, Spark tasks included: the download stage whole (img2dataset writes
its shards straight to the bucket, the ledger's tasks read them and write the ledger there, the
runner's markers and stats.json), annotate's shard reading, and a kill and rerun.
docs/object_storage.md shows the Hadoop settings a real cluster uses for the rest.
"""

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
from pipeline.download.stage import complete_shards, download_input
from pipeline.ledger import read_ledger
from pipeline.run_dir import RunDir
from pipeline.runner import COMPLETE_MARKER, run_stage, stage_state, status_lines
from pipeline.stages import get_stage
from pipeline.storage import arrow_filesystem, as_path
from tests.conftest import LOCAL_DOWNLOAD

pytestmark = pytest.mark.slow


def upload_run(
    s3, local: RunDir, stages: tuple[str, ...] = ("candidates", "preselected", "ledger")
) -> RunDir:
    """The run's stats.json, config and the named folders, copied into a fresh bucket prefix."""
    run = RunDir(as_path(s3.url("run")))
    fs = s3.filesystem()
    for name in ("stats.json", "config.yaml"):
        if (local.root / name).exists():
            fs.put_file(str(local.root / name), f"{run.root.path}/{name}")
    for folder in stages:
        fs.put(str(local.root / folder), f"{run.root.path}/", recursive=True)
    return run


def shard_rows(run: RunDir) -> pa.Table:
    """uid and status of every row of the run's download shards (read from the bucket)."""
    tables = []
    for shard in complete_shards(run.downloads):
        fs, path = arrow_filesystem(run.downloads / f"{shard}.parquet")
        tables.append(pq.read_table(path, columns=["uid", "status"], filesystem=fs))
    return pa.concat_tables(tables)


def successes(rows: pa.Table) -> set[str]:
    return set(rows.filter(pa.compute.equal(rows["status"], "success"))["uid"].to_pylist())


@pytest.fixture(scope="module")
def downloaded_to_s3(spark_s3, s3, ingested):
    """(run in the bucket, its download entry): the download stage run on an s3:// run dir."""
    run = upload_run(s3, RunDir(ingested))
    entry = run_stage("download", str(run.root), load_config(None, LOCAL_DOWNLOAD))
    return run, entry


def test_download_writes_shards_ledger_and_markers_to_the_bucket(downloaded_to_s3, downloaded):
    run, entry = downloaded_to_s3
    _, ref_entry, _ = downloaded
    assert str(run.root).startswith("s3://")
    # The same candidates from the same web: the same funnel as the local run.
    assert (entry["rows_in"], entry["rows_kept"], entry["dropped_by_reason"]) == (
        ref_entry["rows_in"],
        ref_entry["rows_kept"],
        ref_entry["dropped_by_reason"],
    )
    assert entry["shards"] == ref_entry["shards"]
    # Everything lives in the bucket: shards, their stats, the ledger, the markers, stats.json.
    shards = complete_shards(run.downloads)
    assert len(shards) == entry["shards"]
    for shard in shards:
        assert (run.downloads / f"{shard}.tar").exists()
    assert (run.downloads / COMPLETE_MARKER).exists()
    assert run.is_complete("download")
    ledger = read_ledger(run.ledger_for("download"))
    assert ledger.num_rows == entry["rows_dropped"]
    rows = shard_rows(run)
    assert successes(rows) | set(ledger["uid"].to_pylist()) == set(rows["uid"].to_pylist())
    # The status command reads it back from the bucket.
    lines = status_lines(str(run.root), load_config(None, LOCAL_DOWNLOAD))
    assert lines[3].split()[:2] == ["download", "complete"], lines


def test_rerun_of_a_complete_stage_in_the_bucket_does_nothing(downloaded_to_s3, web_and_server):
    run, entry = downloaded_to_s3
    _, server = web_and_server
    before = server.request_count
    assert run_stage("download", str(run.root), load_config(None, LOCAL_DOWNLOAD)) == entry
    assert server.request_count == before


def test_annotate_reads_shards_from_the_bucket(downloaded_to_s3, downloaded, spark_s3):
    """Annotate's tasks read the tars and parquet in the bucket through fsspec and see what
    they see on disk."""
    from pipeline.annotate.plan import decide, shard_table

    run, _ = downloaded_to_s3
    reference, _, _ = downloaded
    config = load_config(None, ["clip.enabled=false"])

    def annotations(downloads) -> list[tuple]:
        shards = complete_shards(downloads)
        frame = decide({"shards": shard_table(spark_s3, downloads, shards)}, config).frame
        rows = frame.select("uid", "offset", "image_bytes", "phash", "reason").collect()
        return sorted(tuple(r) for r in rows)

    remote = annotations(run.downloads)
    # The byte offsets are each tar's own (img2dataset's threads write members in the order
    # they finish): every other column is the same.
    assert [r[:1] + r[2:] for r in remote] == [
        r[:1] + r[2:] for r in annotations(reference.downloads)
    ]
    assert len(remote) > 0 and all(r[1] > 0 for r in remote if r[4] is None)


def test_killed_download_in_the_bucket_resumes_without_loss_or_duplicates(
    s3, spark_s3, ingested, downloaded
):
    reference, _, _ = downloaded
    run = upload_run(s3, RunDir(ingested))
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
        args,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **s3.env},
    )
    deadline = time.monotonic() + 180
    while (
        not complete_shards(run.downloads) and time.monotonic() < deadline and proc.poll() is None
    ):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    expected = download_input(run.root / "preselected").shards(8)
    done = len(complete_shards(run.downloads))
    assert 0 < done < expected, "the kill must land part-way"
    assert not run.is_complete("download")

    entry = run_stage("download", str(run.root), load_config(None, overrides))
    rows = shard_rows(run)
    uids = rows["uid"].to_pylist()
    n_candidates = download_input(run.root / "preselected").rows_in
    assert len(uids) == len(set(uids)) == n_candidates == entry["rows_in"]
    assert successes(rows) == successes(shard_rows(reference))
    ledger = read_ledger(run.ledger_for("download"))["uid"].to_pylist()
    assert len(ledger) == len(set(ledger)) == n_candidates - entry["rows_kept"]


def test_a_whole_run_in_a_file_url_goes_through_the_filesystem_api(downloaded, tmp_path, spark):
    """Every stage after download, the report and status on a `file://` run directory: the
    driver and the tasks reach it only as a URL (fsspec on the Python side, Hadoop's file://
    in Spark), and the funnel is the one of the same run on a plain path."""
    from pipeline.report.stage import run_report
    from pipeline.runner import run_stages
    from tests.conftest import FINISHED, copy_run

    plain = copy_run(downloaded[0].root, tmp_path / "plain")
    url_run = copy_run(downloaded[0].root, tmp_path / "url")
    url = f"file://{url_run.root}"
    config = load_config(None, FINISHED)
    names = ["annotate", "dedup", "select", "balance", "shard"]
    by_url = run_stages(url, config, names=names)
    by_path = run_stages(plain.root, config, names=names)
    for stage in names:
        a, b = by_url["stages"][stage], by_path["stages"][stage]
        assert (a["rows_in"], a["rows_kept"], a["dropped_by_reason"]) == (
            b["rows_in"],
            b["rows_kept"],
            b["dropped_by_reason"],
        ), stage
    for name in sorted(p.name for p in plain.shards.iterdir()):
        assert (url_run.shards / name).read_bytes() == (plain.shards / name).read_bytes(), name
    assert str(run_report(url, config)) == f"{url}/report/index.html"
    # The markers and stats.json read back through the URL: complete under these settings.
    run = RunDir(as_path(url))
    assert [stage_state(run, get_stage(n), config).status for n in names] == ["complete"] * 5
