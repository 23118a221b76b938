"""Shared fixtures: one SparkSession per test run, and small parquet builders."""

from __future__ import annotations

import os

# Tests never reach the network: fail fast instead of retrying hub downloads for a minute. Set
# before any import: huggingface_hub (imported by img2dataset) reads it once, at import.
os.environ["HF_HUB_OFFLINE"] = "1"

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.demo.image_server import ImageServer
from pipeline.demo.synthetic_web import NoiseMix, generate_web, write_input_parquet
from pipeline.run_dir import RunDir
from pipeline.runner import run_stage
from pipeline.spark.session import get_spark
from pipeline.spark.settings import SparkConfig
from tests import loopback_only

# pHash-only annotation (no CLIP weights needed); CLIP tests turn it on with their checkpoint.
NO_CLIP = ["clip.enabled=false"]

# The test server's address: allowed by ingest and download alike.
LOCAL_NETWORK = ["network.allowed_networks=[127.0.0.1/32]"]

# Download settings for the synthetic web on 127.0.0.1: a timeout well under the slow route (8 s)
# and well over a normal response on a loaded 2-core machine.
LOCAL_DOWNLOAD = [
    *LOCAL_NETWORK,
    "download.timeout=3",
    "download.processes=2",
    "download.threads=8",
    "download.samples_per_shard=40",
]


def pytest_configure(config: pytest.Config) -> None:
    """No network but loopback, for the whole run (and the processes it forks)."""
    loopback_only.install()


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession of the run: local[2,4] (retries on), few shuffle partitions."""
    session = get_spark(SparkConfig(local_cores="2", shuffle_partitions=4, driver_memory="2g"))
    yield session
    session.stop()


def write_parquet(path: Path, columns: dict[str, list], schema: pa.Schema | None = None) -> Path:
    """Write a small parquet file from columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns, schema=schema), path)
    return path


def copy_run(run: Path, target: Path) -> RunDir:
    """A private copy of a shared run directory, for a test that runs more stages on it."""
    shutil.copytree(run, target)
    return RunDir(target)


@pytest.fixture(scope="session")
def web_and_server(tmp_path_factory):
    """A small synthetic web with every fault kind present, served on 127.0.0.1."""
    base = tmp_path_factory.mktemp("web")
    faults = ("404", "500", "slow", "truncated", "html", "empty", "bomb", "noai", "redirect")
    # Twice the default share of each fault so every kind appears in 200 pairs.
    mix = NoiseMix(clean=0.36, **{f"fault_{k}": 0.02 for k in faults})
    web = generate_web(base / "web", n_pairs=200, seed=3, mix=mix)
    with ImageServer(web.files_dir, slow_seconds=8) as server:
        yield web, server


@pytest.fixture(scope="session")
def ingested(spark, web_and_server, tmp_path_factory):
    """A run directory with ingest and preselect complete (shared: tests copy it before running
    stages)."""
    web, server = web_and_server
    base = tmp_path_factory.mktemp("ingested")
    src = write_input_parquet(web, server.base_url, base / "input.parquet")
    run_stage("ingest", base / "run", load_config(None, LOCAL_NETWORK), input_path=str(src))
    # No select.pool rule: preselect passes every candidate on to the download.
    run_stage("preselect", base / "run", load_config(None, LOCAL_NETWORK))
    return base / "run"


@pytest.fixture(scope="session")
def downloaded(ingested, web_and_server, tmp_path_factory):
    """(run, download stats entry, requests made) with ingest and download complete (shared)."""
    _, server = web_and_server
    run = copy_run(ingested, tmp_path_factory.mktemp("downloaded") / "run")
    before = server.request_count
    entry = run_stage("download", run.root, load_config(None, LOCAL_DOWNLOAD))
    return run, entry, server.request_count - before


@pytest.fixture(scope="session")
def annotated(downloaded, tmp_path_factory):
    """(run, annotate stats entry) with ingest, download and annotate complete (shared)."""
    from pipeline.runner import run_stage

    run = copy_run(downloaded[0].root, tmp_path_factory.mktemp("annotated") / "run")
    return run, run_stage("annotate", run.root, load_config(None, NO_CLIP))


# Settings of the pHash-only run through shard (small shards so that there are several).
FINISHED = [*NO_CLIP, "shard.samples_per_shard=40"]


@pytest.fixture(scope="session")
def finished(annotated, tmp_path_factory):
    """A run with every stage complete, pHash-only (shared: tests copy it)."""
    from pipeline.runner import run_stages

    run = copy_run(annotated[0].root, tmp_path_factory.mktemp("finished") / "run")
    run_stages(run.root, load_config(None, FINISHED), names=["dedup", "select", "balance", "shard"])
    return run


def clip_overrides(checkpoint) -> list[str]:
    return ["clip.model=curate-micro-vit", f"clip.pretrained={checkpoint}", "clip.batch_size=64"]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """curate-micro-vit trained on an 800-pair raw synthetic web (other seed than the test web)."""
    import torch

    from tests.clip.tiny_training import train_tiny_clip

    base = tmp_path_factory.mktemp("tiny_clip")
    web = generate_web(base / "web", n_pairs=800, seed=11)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the JVM and other workers share the 2 cores
    try:
        return train_tiny_clip(web, base)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def scored(downloaded, tiny_checkpoint, tmp_path_factory):
    """(run, config) with annotate run with CLIP scores, then dedup (shared)."""
    from pipeline.runner import run_stage

    run = copy_run(downloaded[0].root, tmp_path_factory.mktemp("scored") / "run")
    config = load_config(None, clip_overrides(tiny_checkpoint))
    run_stage("annotate", run.root, config)
    run_stage("dedup", run.root, config)
    return run, config


# A reduced `curate demo`: a small web, a short training budget, a small eval set.
DEMO_PAIRS = 150
DEMO_ARGS = [
    "--pairs",
    str(DEMO_PAIRS),
    "--eval-per-class",
    "2",
    "--set",
    "download.processes=1",
    "--set",
    "train.steps=20",
    "--set",
    "train.batch_size=32",
    "--set",
    "train.workers=0",
    # Two seeds, not the demo's three (tested on their own): the suite's time.
    "--set",
    "compare.seeds=2",
]


@pytest.fixture(scope="session")
def demo_run(spark, tmp_path_factory) -> RunDir:
    """The reduced demo, run once through the CLI: every stage, both trainings, the report."""
    from pipeline.cli import main

    run = RunDir(tmp_path_factory.mktemp("demo") / "run")
    assert main(["demo", "--run-dir", str(run.root), *DEMO_ARGS]) == 0
    return run


# What `make test-fast` leaves out: the demo, the training runs and CLIP checkpoints they need,
# and the standalone cluster. Marked here by what a test uses, so a new test is marked too.
_SLOW_FIXTURES = {"demo_run", "tiny_checkpoint", "scored"}
_SLOW_FOLDERS = ("tests/train/",)
_CLUSTER_MODULES = ("tests/spark/test_cluster.py",)


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).resolve().parent.parent
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(root).as_posix()
        if where.startswith(_CLUSTER_MODULES):
            item.add_marker(pytest.mark.cluster)
        if where.startswith(_SLOW_FOLDERS) or _SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def s3():
    """moto's S3 server on 127.0.0.1 for the whole run, the environment pointing at it."""
    from tests.s3_server import s3_server

    with s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def spark_s3(spark, s3):
    """The Spark session with its Python workers pointed at the S3 server too (they get the
    environment the session had at start, plus `sc.environment`)."""
    env = spark.sparkContext.environment
    saved = dict(env)
    env.update(s3.env)
    yield spark
    env.clear()
    env.update(saved)
