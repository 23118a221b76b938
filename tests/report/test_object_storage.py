"""`curate report` on a run directory in an S3 bucket (moto on 127.0.0.1): stats, ledger and
tables read through fsspec, thumbnails by byte-range requests into the download tars, the page
written to the bucket; the same page as from the same run on disk."""

from __future__ import annotations

import re

from pipeline.config import load_config
from pipeline.report.stage import run_report
from tests.conftest import FINISHED, copy_run

_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


def test_report_reads_a_run_in_a_bucket(finished, s3, tmp_path):
    local = copy_run(finished.root, tmp_path / "run")
    base = s3.url()
    fs = s3.filesystem()
    fs.put(str(local.root), f"{base.removeprefix('s3://')}/", recursive=True)
    config = load_config(None, FINISHED)
    remote_page = run_report(f"{base}/run", config)
    assert str(remote_page) == f"{base}/run/report/index.html"
    remote = fs.cat_file(str(remote_page).removeprefix("s3://")).decode()
    on_disk = run_report(local.root, config).read_text()
    assert remote.count("data:image/jpeg;base64,") > 0
    assert _STAMP.sub("STAMP", remote) == _STAMP.sub("STAMP", on_disk)
