"""`curate train --shards s3://...`: shards listed, sizes.json read and tars streamed from a
bucket (moto's S3 API on 127.0.0.1) through fsspec, which webdataset's own opener lacks."""

from __future__ import annotations

import json
import subprocess

import pytest

from pipeline.train.data import complete_samples
from pipeline.train.shards import resolve_shards
from tests.train.helpers import cli, set_args, subprocess_env


@pytest.fixture(scope="module")
def s3_shards(s3, shards) -> str:
    """The trainer's test shards and their sizes.json, uploaded to a bucket prefix."""
    url = s3.url("shards")
    fs = s3.filesystem()
    for path in sorted(shards.iterdir()):
        fs.put_file(str(path), f"{url.removeprefix('s3://')}/{path.name}")
    return url


def test_shards_in_a_bucket_resolve_with_their_sizes(s3_shards, shards):
    local, remote = resolve_shards(shards), resolve_shards(s3_shards)
    assert remote.urls == tuple(f"{s3_shards}/{u.rsplit('/', 1)[1]}" for u in local.urls)
    assert remote.num_samples == local.num_samples == 1600


def test_samples_stream_from_the_bucket_as_from_disk(s3_shards, shards):
    local, remote = resolve_shards(shards), resolve_shards(s3_shards)
    keys = [s["__key__"] for s in complete_samples(list(local.urls[:2]))]
    assert [s["__key__"] for s in complete_samples(list(remote.urls[:2]))] == keys
    assert len(keys) > 0


@pytest.mark.slow
def test_curate_train_reads_shards_from_a_bucket(s3, s3_shards, tmp_path):
    output = tmp_path / "out"
    args = cli("train", "--shards", s3_shards, "--output", str(output))
    args += set_args("train.steps=3", "train.eval_every=0", "train.holdout_shards=0")
    proc = subprocess.run(
        args, env={**subprocess_env(), **s3.env}, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = [
        json.loads(line)["step"] for line in (output / "train_log.jsonl").read_text().splitlines()
    ]
    assert steps[-1] == 3
