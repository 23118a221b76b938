"""Kill anywhere: each stage, killed with SIGKILL at a point the test chooses, then run again,
ends with exactly the output of an uninterrupted run.

The stage runs as `python -m pipeline STAGE` in a session of its own, with
CURATE_KILL_AT=<stage>:<point> (pipeline.faults.kill_point): the process group (driver, Spark's
JVM, its Python workers) dies at that point. The same command without the variable must then exit
0 and leave what the `finished` run (every stage run once, in-process, same settings) has:
parquet outputs and ledgers equal as tables sorted by uid (part-file names differ between runs),
the same marker files, shards/ byte for byte, the same stats.json entry but for its timing, unique
ledger uids and rows in = kept + ledger. Per stage one point inside the stage's own work and one
in the runner's commit sequence (pipeline.runner, pipeline.spark.decisions).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.faults import KILL_AT_ENV
from pipeline.run_dir import RunDir
from pipeline.runner import COMPLETE_MARKER, STARTED_MARKER
from pipeline.shard.writer import is_complete
from pipeline.stages import get_stage, later_stages
from tests.conftest import FINISHED, LOCAL_NETWORK, NO_CLIP, copy_run

pytestmark = pytest.mark.slow

# The settings each stage of the `finished` run ran with (so the fingerprints match).
SETTINGS = {
    "ingest": LOCAL_NETWORK,
    "annotate": NO_CLIP,
    "dedup": FINISHED,
    "select": FINISHED,
    "balance": FINISHED,
    "shard": FINISHED,
}

# Spark of the subprocess: small, no web UI. Stage fingerprints leave the spark section out.
SUBPROCESS_SPARK = [
    "spark.local_cores=2",
    "spark.shuffle_partitions=4",
    "spark.driver_memory=1g",
    "spark.ui=false",
]
# Kill points inside a Spark task (a Python worker) rather than in the driver.
TASK_POINTS = {"batch", "shard_written"}
# For those, Python workers started by the JVM itself: pyspark's daemon (the default) puts its
# workers in a process group of their own (pyspark/daemon.py: os.setpgid(0, 0)), so there the
# kill would take only the workers, and Spark would retry the task. Without the daemon workers
# are not reused (a fresh Python per task: slower), hence only where needed.
WORKERS_IN_GROUP = "spark.conf={spark.python.use.daemon: 'false'}"

# (stage, kill point, what the kill leaves of the stage): where the process group dies, and
# which of its markers, its output data and its ledger are there then (stats.json has no entry).
STARTED, COMPLETE, DATA, LEDGER = STARTED_MARKER, COMPLETE_MARKER, "data", "ledger"
CASES = [
    # In a decision task (pipeline/ingest/decide.py), after its first batch: part files half
    # written under _work/ingest/decisions.
    ("ingest", "batch", {STARTED}),
    # candidates/ moved into place (replacing the folder, _STARTED with it), the ledger not.
    ("ingest", "output_moved", {DATA}),
    # In an annotate task (pipeline/annotate/annotate_shard.py), after its first batch of shards.
    ("annotate", "batch", {STARTED}),
    # Decisions, kept rows and ledger written under _work/annotate, nothing moved yet.
    ("annotate", "decisions_written", {STARTED}),
    # _STARTED written, Spark not started yet.
    ("dedup", "started", {STARTED}),
    # Output, ledger and _COMPLETE in place; only the stats.json entry missing.
    ("dedup", "marked", {COMPLETE, DATA, LEDGER}),
    # Output and ledger in place, no _COMPLETE marker.
    ("select", "output_written", {DATA, LEDGER}),
    # Decisions, kept rows and ledger written under _work/balance, nothing moved yet.
    ("balance", "decisions_written", {STARTED}),
    # Output moved, ledger not.
    # In a shard task (pipeline/shard/writer.py), after its first whole shard: the rerun keeps
    # the shards complete at the kill and writes the others.
    ("shard", "shard_written", {STARTED, DATA}),
    # Every shard and sizes.json written, no _COMPLETE marker: the rerun resumes.
    ("shard", "output_written", {STARTED, DATA}),
]

# Spark's checksum of a part file (.part-<uuid>...crc) is named after it: a fresh uuid per run.
_PART_CRC = ".part-"


def _command(stage: str, point: str, run: RunDir, input_path: str | None) -> list[str]:
    args = [sys.executable, "-m", "pipeline", stage, "--run-dir", str(run.root)]
    if input_path is not None:
        args += ["--input", input_path]
    spark = [*SUBPROCESS_SPARK, *([WORKERS_IN_GROUP] if point in TASK_POINTS else [])]
    for override in [*SETTINGS[stage], *spark]:
        args += ["--set", override]
    return args


def _run(args: list[str], log: Path, kill_at: str | None) -> tuple[int, int]:
    """Run the stage command in a session of its own: (exit status, negative for a signal;
    its process group)."""
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_ENV}
    if kill_at is not None:
        env[KILL_AT_ENV] = kill_at
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, start_new_session=True, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        try:
            return proc.wait(timeout=300), proc.pid
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _group_gone(pgid: int, timeout: float = 10.0) -> bool:
    """Whether no process of group `pgid` is left (orphans are reaped by init meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _before(finished: RunDir, stage: str, target: Path) -> RunDir:
    """A copy of the finished run with `stage` and every later stage never run."""
    if get_stage(stage).needs is None:
        return RunDir(target)
    run = copy_run(finished.root, target)
    redo = (stage, *(s.name for s in later_stages(stage)))
    run.forget(redo)
    for name in redo:
        shutil.rmtree(run.root / get_stage(name).output)
        shutil.rmtree(run.ledger_for(name), ignore_errors=True)
    shutil.rmtree(run.work, ignore_errors=True)
    return run


def _table(folder: Path, keys: list[str]) -> tuple[int, list[str], str]:
    """(rows, uids in order, sha256 over schema and rows) of a parquet folder sorted by `keys`."""
    table = pq.read_table(folder).sort_by([(k, "ascending") for k in keys])
    digest = hashlib.sha256(str(table.schema.remove_metadata()).encode())
    for row in table.to_pylist():
        digest.update(json.dumps(row, sort_keys=True, default=repr).encode() + b"\n")
    return table.num_rows, table.column("uid").to_pylist(), digest.hexdigest()


def _markers(folder: Path) -> list[str]:
    """The non-parquet files of a Spark output folder, part-file checksums left out."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if not p.name.endswith(".parquet") and not p.name.startswith(_PART_CRC)
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _timeless(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if k not in ("seconds", "completed_at")}


def _complete_shards(folder: Path) -> dict[str, tuple[int, int]]:
    """Shard name -> (inode, mtime) of its tar, for the shards complete in `folder`."""
    names = sorted(p.name[: -len("_stats.json")] for p in folder.glob("*_stats.json"))
    return {
        n: ((folder / f"{n}.tar").stat().st_ino, (folder / f"{n}.tar").stat().st_mtime_ns)
        for n in names
        if is_complete(folder, n)
    }


def _left(run: RunDir, stage: str) -> set[str]:
    """Which of its markers, output data and ledger a stage has on disk."""
    output = run.root / get_stage(stage).output
    names = {p.name for p in output.iterdir()} if output.is_dir() else set()
    data = any(n.endswith((".parquet", ".tar")) and not n.startswith((".", "_")) for n in names)
    return (
        (names & {STARTED, COMPLETE})
        | ({DATA} if data else set())
        | ({LEDGER} if run.ledger_for(stage).exists() else set())
    )


@pytest.mark.parametrize(("stage", "point", "left"), CASES, ids=[f"{s}:{p}" for s, p, _ in CASES])
def test_killed_stage_reruns_to_the_uninterrupted_output(finished, tmp_path, stage, point, left):
    reference = finished
    run = _before(reference, stage, tmp_path / "run")
    input_path = None
    if get_stage(stage).needs is None:
        input_path = reference.stats()["stages"][stage]["settings"]["input"]
    args = _command(stage, point, run, input_path)
    output = run.root / get_stage(stage).output

    killed_log = tmp_path / "killed.log"
    code, group = _run(args, killed_log, f"{stage}:{point}")
    assert code == -signal.SIGKILL, killed_log.read_text()[-3000:]
    assert _group_gone(group), "the JVM (or a Python worker) outlived the kill"
    assert run.completed_entry(stage) is None
    assert _left(run, stage) == left
    written_at_kill = _complete_shards(output) if stage == "shard" else {}
    if point == "shard_written":
        total = reference.stats()["stages"]["shard"]["shards"]
        assert 0 < len(written_at_kill) < total, "the kill must land part-way"

    rerun_log = tmp_path / "rerun.log"
    assert _run(args, rerun_log, None)[0] == 0, rerun_log.read_text()[-3000:]

    ref_stats, stats = reference.stats()["stages"], run.stats()["stages"]
    order = list(ref_stats)
    assert list(stats) == order[: order.index(stage) + 1]
    entry = stats[stage]
    assert _timeless(entry) == _timeless(ref_stats[stage])
    assert not (run.work / stage).exists()
    assert not (output / STARTED_MARKER).exists()

    if stage == "shard":
        _check_shards(run, reference, written_at_kill)
    else:
        _check_tables(run, reference, stage)


def _check_shards(run: RunDir, reference: RunDir, written_at_kill: dict) -> None:
    """shards/ byte for byte as the reference's; shards complete at the kill not rewritten."""
    assert _files(run.shards) == _files(reference.shards)
    kept = _complete_shards(run.shards)
    assert {n: kept[n] for n in written_at_kill} == written_at_kill
    entry = run.stats()["stages"]["shard"]
    sizes = json.loads((run.shards / "sizes.json").read_text())
    parquets = [str(p) for p in sorted(run.shards.glob("*.parquet"))]
    uids = pq.read_table(parquets).column("uid").to_pylist()
    assert len(uids) == len(set(uids)) == sum(sizes.values()) == entry["rows_kept"]
    assert entry["rows_in"] == entry["rows_kept"]
    assert not run.ledger_for("shard").exists()


def _check_tables(run: RunDir, reference: RunDir, stage: str) -> None:
    """Output and ledger as the reference's (same rows, same marker files), ledger uids unique
    and apart from the kept ones, rows in = kept + ledger."""
    folder = get_stage(stage).output
    output, ref_output = run.root / folder, reference.root / folder
    ledger, ref_ledger = run.ledger_for(stage), reference.ledger_for(stage)
    assert _markers(output) == _markers(ref_output)
    assert _markers(ledger) == _markers(ref_ledger)
    n_kept, kept_uids, kept_digest = _table(output, ["uid"])
    n_dropped, ledger_uids, ledger_digest = _table(ledger, ["uid", "reason"])
    assert (n_kept, kept_uids, kept_digest) == _table(ref_output, ["uid"])
    assert (n_dropped, ledger_uids, ledger_digest) == _table(ref_ledger, ["uid", "reason"])
    assert len(set(ledger_uids)) == n_dropped
    assert len(set(kept_uids)) == n_kept
    assert not set(kept_uids) & set(ledger_uids)
    entry = run.stats()["stages"][stage]
    assert entry["rows_in"] == n_kept + n_dropped
    assert (entry["rows_kept"], entry["rows_dropped"]) == (n_kept, n_dropped)
