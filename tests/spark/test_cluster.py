"""The jobs on a real standalone cluster on 127.0.0.1, submitted with spark-submit, on a run
directory given as a `file://` URL (reached only through the filesystem APIs, as a bucket would
be): ingest through shard give the same outputs as local mode on a plain path, even with one task
failing once in ingest, annotate and shard (retried without duplicated or missing rows), and the
cluster stops cleanly."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.demo.synthetic_web import write_input_parquet
from pipeline.ledger import read_ledger
from pipeline.runner import COMPLETE_MARKER, run_stage
from pipeline.spark.arrow import FAIL_ONCE_ENV, FAIL_ONCE_MARKER
from pipeline.spark.local_cluster import StandaloneCluster, spark_env, start_standalone
from pipeline.spark.packaging import build_pyfiles_zip, project_root
from pipeline.stages import STAGE_NAMES as STAGES
from tests.conftest import LOCAL_DOWNLOAD, NO_CLIP, copy_run

ROOT = project_root()
TIMEOUT = 300  # seconds for the cluster to come up and for a job: the machine is shared
# The settings of the conftest fixtures the local run reuses (`ingested`, `downloaded`,
# `annotated`), plus small output shards so that the shard stage runs several tasks.
SETS = [
    "network.allowed_networks=[127.0.0.1/32]",
    *LOCAL_DOWNLOAD,
    *NO_CLIP,
    "shard.samples_per_shard=16",
]
# What the jobs need beyond that: as many shuffle partitions as the local session.
CLUSTER_SETS = [*SETS, "spark.shuffle_partitions=4"]
# Stages whose job on the cluster has one task fail once. The failures go into the run compared
# with local mode rather than into separate runs: a job costs half a minute of a 2-core machine,
# and equal outputs show that the retries neither lost nor duplicated anything.
FAIL_ONCE_STAGES = ("ingest", "annotate", "shard")
# Short-lived JVMs on a 2-core machine: C1 only and a serial GC halve the CPU a job costs.
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@dataclass
class Runs:
    """Run directories (`local` in-process, `cluster` submitted stage by stage), the fail-once
    marker folder of each stage of FAIL_ONCE_STAGES, and each job's spark-submit log."""

    local: Path
    cluster: Path
    markers: dict[str, Path] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)


def _leftovers(cluster: StandaloneCluster) -> list[str]:
    """Processes that belong to the cluster: run in its folder or name it or its master."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z":
            continue
        workdir = str(cluster.workdir)
        if cluster.master_url in cmdline or workdir in cmdline or cwd.startswith(workdir):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One standalone master and worker (2 cores, 2g) for the module, stopped even on failure."""
    started = start_standalone(
        tmp_path_factory.mktemp("cluster"), cores=2, memory="2g", timeout=TIMEOUT
    )
    try:
        yield started
    finally:
        started.stop()
    assert _leftovers(started) == []


class Submitter:
    """spark-submit of jobs/stage_job.py <stage> against the cluster; kills what is left on close."""

    def __init__(self, cluster: StandaloneCluster, package: Path, logs: Path) -> None:
        self.cluster = cluster
        self.package = package
        self.logs = logs
        self.started: list[subprocess.Popen] = []
        self.closed = False
        self.lock = threading.Lock()

    def start(
        self, stage: str, run_dir: Path | str, args: list[str], fail_once: Path | None = None
    ) -> tuple[subprocess.Popen, Path]:
        """Start the stage's job (the app is named after the stage); returns the process and its
        log file. With `fail_once` (a marker folder), one task of the job fails once."""
        python = sys.executable
        conf = {
            "spark.pyspark.python": python,
            "spark.pyspark.driver.python": python,
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.extraJavaOptions": FAST_JVM,
            "spark.executor.extraJavaOptions": FAST_JVM,
        }
        sets = list(CLUSTER_SETS)
        if fail_once is not None:
            conf[f"spark.executorEnv.{FAIL_ONCE_ENV}"] = str(fail_once)
            # Small batches: the failing task has sent rows downstream before it fails.
            sets.append("spark.max_records_per_batch=8")
        cmd = [str(Path(python).with_name("spark-submit")), "--master", self.cluster.master_url]
        cmd += ["--name", stage, "--py-files", str(self.package)]
        cmd += ["--driver-memory", "1g", "--executor-memory", "1g"]
        cmd += [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]
        cmd += [str(ROOT / "jobs" / "stage_job.py"), stage, *args, "--run-dir", str(run_dir)]
        cmd += [arg for s in sets for arg in ("--set", s)]
        env = spark_env()
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        for var in (
            FAIL_ONCE_ENV,
            "SPARK_MASTER",
            "PYSPARK_GATEWAY_PORT",
            "PYSPARK_GATEWAY_SECRET",
        ):
            env.pop(var, None)
        log_file = self.logs / f"{stage}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.lock, open(log_file, "wb") as out:
            if self.closed:  # the fixture gave up: start nothing more
                raise RuntimeError(f"not starting {stage}: closed")
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
            self.started.append(proc)
        return proc, log_file

    def run(self, job: tuple[subprocess.Popen, Path]) -> None:
        """Wait for a job; RuntimeError with the log's tail if it failed."""
        proc, log_file = job
        try:
            rc = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        if rc != 0:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"spark-submit {log_file.stem} ended with {rc}:\n{tail}")

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for proc in self.started:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


def _cluster_chain(submit: Submitter, src: Path, base: Path, runs: Runs) -> None:
    """ingest through shard on the cluster, one job per stage, one after the other."""
    for stage in STAGES:
        args = ["--input", str(src)] if stage == "ingest" else []
        marker = None
        if stage in FAIL_ONCE_STAGES:
            marker = runs.markers[stage] = base / "fail-once" / stage
        # The run directory as a file:// URL: the driver and the executors reach it only through
        # the filesystem APIs (fsspec, Hadoop's), as they would reach s3:// on a real cluster.
        job = submit.start(stage, f"file://{runs.cluster}", args, marker)
        runs.logs[stage] = job[1]
        submit.run(job)


@pytest.fixture(scope="module")
def runs(spark, cluster, web_and_server, request, tmp_path_factory) -> Runs:
    """One input through every stage in local mode (in-process) and on the cluster.

    The cluster jobs run in a thread while the local stages run here. The local run continues
    conftest's shared `annotated` run, which was made with the same settings (SETS).
    """
    web, server = web_and_server
    base = tmp_path_factory.mktemp("runs")
    package = build_pyfiles_zip(base / "dist" / "curate.zip")
    src = write_input_parquet(web, server.base_url, base / "input.parquet")
    runs = Runs(local=base / "local" / "run", cluster=base / "cluster" / "run")
    submit = Submitter(cluster, package, base / "logs")
    with ThreadPoolExecutor(1) as pool:
        chain = pool.submit(_cluster_chain, submit, src, base, runs)
        try:
            ingested = request.getfixturevalue("ingested")
            # The same input as the cluster's: the same web, server and writer.
            assert pq.read_table(ingested.parent / "input.parquet").equals(pq.read_table(src))
            annotated, _ = request.getfixturevalue("annotated")
            local = copy_run(annotated.root, runs.local)
            config = load_config(None, SETS)
            run_stage("dedup", local.root, config)
            run_stage("select", local.root, config)
            run_stage("balance", local.root, config)
            run_stage("shard", local.root, config)
            chain.result()
        finally:
            submit.close()
    return runs


# --- what is compared ------------------------------------------------------------------------


def _rows(table: pa.Table, drop: tuple[str, ...] = ()) -> list[dict]:
    """A table's rows as a sorted list: the same set of rows in any order compares equal."""
    rows = table.drop_columns(list(drop)).to_pylist()
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _table(folder: Path) -> pa.Table:
    return pq.read_table(folder)


def _downloads(run: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((run / "downloads").glob("*.parquet")))


def _ledger(run: Path, stage: str | None = None) -> pa.Table:
    return read_ledger(run / "ledger" / stage if stage else run / "ledger")


def _stats(run: Path) -> dict:
    """stats.json without timings and the input's path (the local run's is conftest's copy of
    the same table), so without the fingerprints that hash it: the funnel, each stage's counts
    and settings."""
    stats = json.loads((run / "stats.json").read_text())
    skip = ("seconds", "completed_at", "input", "fingerprint")
    entries = {
        name: {k: v for k, v in entry.items() if k not in skip}
        for name, entry in stats["stages"].items()
    }
    for entry in entries.values():
        entry.get("settings", {}).pop("input", None)
    return {"funnel": stats["funnel"], "stages": entries}


def _file_hashes(folder: Path) -> dict[str, str]:
    """Every data file's digest; the runner's _COMPLETE marker holds the fingerprint, which
    hashes the input's path (conftest's copy for the local run), so it is left out."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != COMPLETE_MARKER
    }


def _app_ids(cluster: StandaloneCluster, name: str) -> list[str]:
    state = cluster.master_state()
    return [app["id"] for app in state["completedapps"] if app["name"] == name]


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.cluster
def test_every_stage_ran_on_the_cluster(runs, cluster):
    names = [app["name"] for app in cluster.master_state()["completedapps"]]
    assert sorted(names) == sorted(STAGES)
    for stage in STAGES:
        text = runs.logs[stage].read_text(errors="replace")
        # The session took spark-submit's master: the config says nothing about it.
        assert f"starting Spark (master {cluster.master_url}, from spark-submit)" in text
    # On a cluster master img2dataset distributes the download with Spark.
    assert "download: img2dataset (pyspark)" in runs.logs["download"].read_text(errors="replace")


@pytest.mark.cluster
def test_the_cluster_gives_the_same_outputs_as_local_mode(runs):
    local, remote = runs.local, runs.cluster
    assert _rows(_table(remote / "candidates")) == _rows(_table(local / "candidates"))
    assert _rows(_downloads(remote)) == _rows(_downloads(local))
    # Where an image lies in a download tar is up to img2dataset's threads: everything else about
    # it (key, sizes, sha256, pHash) is the same. The shards read the bytes at those offsets.
    assert _rows(_table(remote / "annotations"), drop=("offset",)) == _rows(
        _table(local / "annotations"), drop=("offset",)
    )
    assert _rows(_table(remote / "dedup")) == _rows(_table(local / "dedup"))
    assert _rows(_table(remote / "selection")) == _rows(_table(local / "selection"))
    assert _rows(_table(remote / "balanced")) == _rows(_table(local / "balanced"))
    assert _rows(_ledger(remote)) == _rows(_ledger(local))
    assert _stats(remote) == _stats(local)
    hashes = _file_hashes(remote / "shards")
    assert hashes == _file_hashes(local / "shards")
    assert sum(name.endswith(".tar") for name in hashes) > 1
    funnel = _stats(remote)["funnel"]
    assert [f["stage"] for f in funnel] == list(STAGES)
    assert funnel[-1]["rows_kept"] == _table(local / "balanced").num_rows > 0


@pytest.mark.cluster
@pytest.mark.parametrize("stage", FAIL_ONCE_STAGES)
def test_a_task_that_fails_once_is_retried_without_duplicates(runs, cluster, stage):
    marker = runs.markers[stage] / FAIL_ONCE_MARKER
    assert marker.is_file(), "no task failed: the fault was not injected"
    assert "attempt 0" in marker.read_text()
    (app_id,) = _app_ids(cluster, stage)
    executor_logs = cluster.workdir.glob(f"work/{app_id}/*/stderr")
    assert any("InjectedFailure" in p.read_text(errors="replace") for p in executor_logs)
    local, remote = runs.local, runs.cluster
    assert _stats(remote)["stages"][stage] == _stats(local)["stages"][stage]
    assert _rows(_ledger(remote, stage)) == _rows(_ledger(local, stage))
    if stage == "ingest":
        output = _table(remote / "candidates")
        assert _rows(output) == _rows(_table(local / "candidates"))
    elif stage == "annotate":
        output = _table(remote / "annotations")
        assert _rows(output, drop=("offset",)) == _rows(
            _table(local / "annotations"), drop=("offset",)
        )
    else:
        assert _file_hashes(remote / "shards") == _file_hashes(local / "shards")
        output = pa.concat_tables(
            pq.read_table(p) for p in sorted((remote / "shards").glob("*.parquet"))
        )
        selection = _table(remote / "balanced").column("uid").to_pylist()
        assert sorted(output.column("uid").to_pylist()) == sorted(selection)
    uids = output.column("uid").to_pylist()
    assert len(uids) == len(set(uids)), "duplicated rows"


@pytest.mark.cluster
def test_stop_leaves_no_process_behind(runs, cluster):
    assert cluster.processes()
    cluster.stop()
    assert cluster.processes() == []
    assert _leftovers(cluster) == []
    assert not (cluster.workdir / "master_url").exists()


def test_package_imports_without_the_source_tree(tmp_path):
    """The --py-files zip alone provides every module the jobs import (executors have no
    checkout): import them with the editable install's finder removed."""
    package = build_pyfiles_zip(tmp_path / "curate.zip")
    stages = list(STAGES)
    probe = f"""
import importlib, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path[:] = [{str(package)!r}] + [p for p in sys.path if p not in ("", {str(ROOT)!r})]
for name in ["pipeline.cli", "pipeline.spark.cluster", "pipeline.runner"] + [f"pipeline.{{s}}.stage" for s in {stages!r}] + [f"pipeline.{{s}}.plan" for s in {stages!r} if s != "download"]:
    importlib.import_module(name)
ours = [m for n, m in sys.modules.items() if n.split(".")[0] in ("pipeline", "schemas")]
outside = [m.__name__ for m in ours if not (getattr(m, "__file__", "") or "").startswith({str(package)!r})]
assert not outside, outside
print(len(ours))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 10
