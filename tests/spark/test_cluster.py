"""The jobs on a real standalone cluster on 127.0.0.1, submitted with spark-submit: the same outputs
as local mode, a task failure retried without duplicates, and a clean stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.ingest.stage import run_ingest
from pipeline.ledger import read_ledger
from pipeline.spark.arrow import FAIL_ONCE_ENV, FAIL_ONCE_MARKER
from pipeline.spark.cluster import (
    StandaloneCluster,
    build_pyfiles_zip,
    project_root,
    spark_env,
    start_standalone,
)
from tests.conftest import write_parquet
from tests.ingest.test_stage import CASES, OVERRIDES

ROOT = project_root()
TIMEOUT = 300  # seconds for the cluster to come up and for a job: the machine is shared
# What the job needs beyond the tests' overrides: as many shuffle partitions as the local session.
SETS = [*OVERRIDES, "spark.shuffle_partitions=4"]
# Short-lived JVMs on a 2-core machine: C1 only and a serial GC halve the CPU a job costs.
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@dataclass
class Runs:
    local: Path
    cluster: Path
    fail_once: Path
    marker_dir: Path


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


def _submit(
    cluster: StandaloneCluster,
    package: Path,
    src: Path,
    run_dir: Path,
    conf: dict[str, str],
    sets: list[str],
) -> tuple[subprocess.Popen, Path]:
    """Start `spark-submit jobs/ingest_job.py` against the cluster; returns the process and its log."""
    python = sys.executable
    conf = {
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.extraJavaOptions": FAST_JVM,
        "spark.executor.extraJavaOptions": FAST_JVM,
        **conf,
    }
    cmd = [
        str(Path(python).with_name("spark-submit")),
        "--master",
        cluster.master_url,
        "--py-files",
        str(package),
        "--driver-memory",
        "1g",
        "--executor-memory",
        "1g",
        *[arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")],
        str(ROOT / "jobs" / "ingest_job.py"),
        "--input",
        str(src),
        "--run-dir",
        str(run_dir),
        *[arg for s in sets for arg in ("--set", s)],
    ]
    env = spark_env()
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    for var in (FAIL_ONCE_ENV, "SPARK_MASTER", "PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET"):
        env.pop(var, None)
    log_file = run_dir.with_suffix(".log")
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log_file


def _wait(proc: subprocess.Popen, log_file: Path) -> None:
    try:
        rc = proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    if rc != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"spark-submit ended with {rc}:\n{tail}")


@pytest.fixture(scope="module")
def runs(spark, cluster, tmp_path_factory) -> Runs:
    """The same input through ingest three times: local mode in-process, on the cluster, and on
    the cluster with one task failing once. The cluster jobs run while the local one does."""
    base = tmp_path_factory.mktemp("runs")
    package = build_pyfiles_zip(base / "dist" / "curate.zip")
    src = write_parquet(
        base / "input" / "part-0.parquet",
        {
            "url": [c[1] for c in CASES],
            "caption": [c[2] for c in CASES],
            "case": [c[0] for c in CASES],
        },
    )
    marker_dir = base / "fail-once"
    plain = _submit(cluster, package, src, base / "cluster", {}, SETS)
    # Small batches: the failing task has sent rows downstream before it fails.
    failing = _submit(
        cluster,
        package,
        src,
        base / "fail-once-run",
        {f"spark.executorEnv.{FAIL_ONCE_ENV}": str(marker_dir)},
        [*SETS, "spark.max_records_per_batch=8"],
    )
    try:
        run_ingest(str(src), base / "local", load_config(None, OVERRIDES))
        _wait(*plain)
        _wait(*failing)
    finally:
        for proc, _ in (plain, failing):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Runs(base / "local", base / "cluster", base / "fail-once-run", marker_dir)


def _candidates(run_dir: Path) -> pa.Table:
    return pq.read_table(run_dir / "candidates").sort_by("uid")


def _ledger(run_dir: Path) -> pa.Table:
    return read_ledger(run_dir / "ledger" / "ingest").sort_by(
        [("uid", "ascending"), ("reason", "ascending")]
    )


def _counts(run_dir: Path) -> dict:
    stats = json.loads((run_dir / "stats.json").read_text())
    entry = stats["stages"]["ingest"]
    return {
        "funnel": stats["funnel"],
        **{k: entry[k] for k in ("rows_in", "rows_kept", "rows_dropped", "dropped_by_reason")},
    }


@pytest.mark.cluster
def test_ingest_on_the_cluster_equals_local_mode(runs, cluster):
    local = _candidates(runs.local)
    assert local.num_rows == sum(1 for c in CASES if c[3] is None)
    assert _candidates(runs.cluster).equals(local)
    assert _ledger(runs.cluster).equals(_ledger(runs.local))
    assert _counts(runs.cluster) == _counts(runs.local)
    # It ran on the cluster's executors, not in a local-mode driver.
    config = (runs.cluster / "config.yaml").read_text()
    assert f"master: {cluster.master_url}" in config
    assert len(cluster.master_state()["completedapps"]) >= 1


@pytest.mark.cluster
def test_a_task_that_fails_once_is_retried_without_duplicates(runs, cluster):
    marker = runs.marker_dir / FAIL_ONCE_MARKER
    assert marker.is_file(), "no task failed: the fault was not injected"
    executor_logs = [p.read_text(errors="replace") for p in cluster.workdir.glob("work/*/*/stderr")]
    assert any("InjectedFailure" in text for text in executor_logs)
    assert _candidates(runs.fail_once).equals(_candidates(runs.cluster))
    assert _ledger(runs.fail_once).equals(_ledger(runs.cluster))
    assert _counts(runs.fail_once) == _counts(runs.cluster)


@pytest.mark.cluster
def test_stop_leaves_no_process_behind(cluster):
    assert cluster.processes()
    cluster.stop()
    assert cluster.processes() == []
    assert _leftovers(cluster) == []
    assert not (cluster.workdir / "master_url").exists()


def test_package_imports_without_the_source_tree(tmp_path):
    """The --py-files zip alone provides every module the jobs import (executors have no
    checkout): import them with the editable install's finder removed."""
    package = build_pyfiles_zip(tmp_path / "curate.zip")
    stages = [p.stem.removesuffix("_job") for p in sorted((ROOT / "jobs").glob("*_job.py"))]
    probe = f"""
import importlib, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path[:] = [{str(package)!r}] + [p for p in sys.path if p not in ("", {str(ROOT)!r})]
for name in ["pipeline.cli", "pipeline.spark.cluster"] + [f"pipeline.{{s}}.stage" for s in {stages!r}]:
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
