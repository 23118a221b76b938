"""Shards from the keep-list: a round trip to the downloads, byte-identical output whatever the
partitioning, and open_clip's own trainer reading them without skipping a sample."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.runner import COMPLETE_MARKER, STARTED_MARKER, run_stage
from tests.conftest import NO_CLIP, copy_run

SHARDING = [*NO_CLIP, "shard.samples_per_shard=40"]


@pytest.fixture(scope="module")
def selected(annotated, tmp_path_factory):
    """A run with select and balance complete (pHash-only, no entry list: every dedup survivor
    is selected and kept)."""
    run = copy_run(annotated[0].root, tmp_path_factory.mktemp("selected") / "run")
    run_stage("dedup", run.root, load_config(None, NO_CLIP))
    run_stage("select", run.root, load_config(None, NO_CLIP))
    run_stage("balance", run.root, load_config(None, NO_CLIP))
    return run


@pytest.fixture(scope="module")
def sharded(selected, tmp_path_factory):
    run = copy_run(selected.root, tmp_path_factory.mktemp("sharded") / "run")
    return run, run_stage("shard", run.root, load_config(None, SHARDING))


def _members(tar_path):
    with tarfile.open(tar_path) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


def test_round_trip_every_selected_uid_once_with_its_downloaded_bytes(sharded):
    run, entry = sharded
    selection = set(pq.read_table(run.selection).column("uid").to_pylist())
    annotations = {r["uid"]: r for r in pq.read_table(run.annotations).to_pylist()}
    sizes = json.loads((run.shards / "sizes.json").read_text())
    seen = []
    for tar_name, count in sizes.items():
        members = _members(run.shards / tar_name)
        names = [m.name for m, _ in members]
        assert names == sorted(names) and all("/" not in n and ".." not in n for n in names)
        assert all(m.mtime == 0 for m, _ in members)
        images = {m.name[:-4]: data for m, data in members if m.name.endswith(".jpg")}
        records = {m.name[:-5]: json.loads(data) for m, data in members if m.name.endswith(".json")}
        texts = {m.name[:-4]: data.decode() for m, data in members if m.name.endswith(".txt")}
        assert len(images) == len(records) == len(texts) == count
        table = pq.read_table(run.shards / tar_name.replace(".tar", ".parquet")).to_pylist()
        assert [r["key"] for r in table] == sorted(images)
        for row in table:
            record = records[row["key"]]
            assert record == row
            assert texts[row["key"]] == row["caption"]
            assert (
                hashlib.sha256(images[row["key"]]).hexdigest()
                == annotations[row["uid"]]["sha256"]
                == row["sha256"]
            )
            seen.append(row["uid"])
        stats = json.loads((run.shards / tar_name.replace(".tar", "_stats.json")).read_text())
        assert stats["count"] == count
    assert sorted(seen) == sorted(selection)
    assert entry["rows_in"] == entry["rows_kept"] == len(selection)
    assert entry["shards"] == len(sizes) == -(-len(selection) // 40)


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_keep_list_gives_identical_files_whatever_the_partitioning(
    spark, selected, sharded, tmp_path
):
    reference, _ = sharded
    run = copy_run(selected.root, tmp_path / "run")
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        run_stage("shard", run.root, load_config(None, SHARDING))
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    assert _digests(run.shards) == _digests(reference.shards)


def test_complete_shards_are_not_rewritten(selected, tmp_path):
    run = copy_run(selected.root, tmp_path / "run")
    run_stage("shard", run.root, load_config(None, SHARDING))
    first = run.shards / "00000.tar"
    stamp = first.stat().st_mtime_ns
    # What a kill part-way leaves: no stats entry, the STARTED marker, one shard unfinished.
    run.forget(("shard",))
    (run.shards / COMPLETE_MARKER).rename(run.shards / STARTED_MARKER)
    (run.shards / "00001_stats.json").unlink()  # an interrupted shard: rewritten
    run_stage("shard", run.root, load_config(None, SHARDING))
    assert first.stat().st_mtime_ns == stamp
    assert (run.shards / "00001_stats.json").exists()


_OPEN_CLIP_TRAIN = (
    "import sys, open_clip; open_clip.add_model_config(sys.argv[1]); "
    "from open_clip_train.main import main; main(sys.argv[2:])"
)


def test_open_clip_trainer_reads_our_shards_without_skipping(sharded, tmp_path):
    from pipeline.clip.models import MODEL_CONFIGS

    run, entry = sharded
    pattern = f"{run.shards}/{{00000..{entry['shards'] - 1:05d}}}.tar"
    args = [sys.executable, "-c", _OPEN_CLIP_TRAIN, str(MODEL_CONFIGS)]
    args += ["--dataset-type", "webdataset", "--train-data", pattern, "--epochs", "1"]
    args += [
        "--model",
        "curate-micro-vit",
        "--batch-size",
        "16",
        "--workers",
        "1",
        "--device",
        "cpu",
    ]
    args += ["--precision", "fp32", "--lr", "5e-4", "--warmup", "2", "--zeroshot-frequency", "0"]
    args += [
        "--logs",
        str(tmp_path / "logs"),
        "--name",
        "on-our-shards",
        "--seed",
        "0",
        "--report-to",
        "",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Handling webdataset error" not in output and "skipping" not in output.lower(), output[
        -3000:
    ]
    checkpoints = list((tmp_path / "logs" / "on-our-shards" / "checkpoints").glob("epoch_1.pt"))
    assert checkpoints, output[-2000:]
    # The trainer took its dataset size from sizes.json (no --train-num-samples given).
    assert io.StringIO(output).getvalue().count("Train Epoch: 0") >= 1
