"""One writer per run directory: a second writer exits 2 naming the holder, a killed holder's
lock is broken with a log line, on a local folder (flock) and on S3 (conditional put)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.run_lock import (
    LEASE_SECONDS,
    LOCK_NAME,
    Holder,
    RunDirBusy,
    _ObjectLock,
    run_dir_lock,
)
from pipeline.storage import as_path
from tests.conftest import LOCAL_NETWORK, write_parquet

_HOLD = """
import sys, time
from pipeline.run_lock import run_dir_lock
with run_dir_lock(sys.argv[1], "curate dedup --force (test holder)"):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder_process(run_dir: Path | str) -> subprocess.Popen:
    """Another process holding the lock until it is killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def _sets(settings: list[str]) -> list[str]:
    return [arg for s in settings for arg in ("--set", s)]


@pytest.fixture
def tiny_input(tmp_path) -> Path:
    return write_parquet(
        tmp_path / "input.parquet",
        {
            "url": [f"http://127.0.0.1:9/{i}.jpg" for i in range(3)],
            "caption": [f"a red bird sitting on a branch number {i}" for i in range(3)],
        },
    )


def test_lock_is_released_and_leaves_nothing_in_a_new_folder(tmp_path):
    run_dir = tmp_path / "run"
    with run_dir_lock(run_dir, "curate test"):
        holder = Holder.parse((run_dir / LOCK_NAME).read_text())
        assert (holder.pid, holder.command) == (os.getpid(), "curate test")
    assert not run_dir.exists()  # nothing but the lock was written: no folder left behind
    run_dir.mkdir()
    (run_dir / "stats.json").write_text("{}")
    with run_dir_lock(run_dir, "curate test"):
        pass
    assert (run_dir / LOCK_NAME).read_text() == ""  # emptied, kept: see _LocalLock.release
    with run_dir_lock(run_dir, "curate test again"):  # and taken again
        pass


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    proc = _holder_process(run_dir)
    try:
        with pytest.raises(RunDirBusy) as busy, run_dir_lock(run_dir, "curate report"):
            pass
        message = str(busy.value)
        assert f"pid {proc.pid} on host " in message
        assert "(curate dedup --force (test holder))" in message
        assert "\n" not in message
    finally:
        proc.kill()
        proc.wait()


def test_a_file_url_is_locked_like_its_path(tmp_path):
    """spark-submit jobs get `file://` run directories: the same flock, on a folder not made yet
    (CI caught a conditional put into a missing folder)."""
    run_dir = tmp_path / "new" / "run"
    holder = _holder_process(run_dir.as_uri())
    try:
        text = (run_dir / LOCK_NAME).read_text()
        assert Holder.parse(text).command == "curate dedup --force (test holder)"
        busy = pytest.raises(RunDirBusy, match=f"pid {holder.pid} on host ")
        with busy, run_dir_lock(run_dir, "curate dedup"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with run_dir_lock(run_dir, "curate dedup"):  # free once its holder is gone
        pass


def test_the_lock_is_reentrant_within_a_process_and_freed_by_the_outer_block(tmp_path):
    """The CLI holds the lock around the API function, which takes it again: the inner block
    does not refuse its own process, and leaving the outer block frees the folder."""
    run_dir = tmp_path / "run"
    with run_dir_lock(run_dir, "curate run (outer)"):
        with run_dir_lock(run_dir.as_uri(), "pipeline.api.run (inner)"):
            assert Holder.parse((run_dir / LOCK_NAME).read_text()).command == "curate run (outer)"
        # Still held after the inner block: another process is refused.
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE, str(run_dir)], capture_output=True, text=True
        )
        assert probe.stdout.strip() == "busy"
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, str(run_dir)], capture_output=True, text=True
    )
    assert probe.stdout.strip() == "free"


_PROBE = """
import sys
from pipeline.run_lock import RunDirBusy, run_dir_lock
try:
    with run_dir_lock(sys.argv[1], "probe"):
        print("free")
except RunDirBusy:
    print("busy")
"""


def test_only_rank_0_of_a_torchrun_train_takes_the_lock(tmp_path, monkeypatch):
    """Every torchrun rank runs `curate train`; ranks > 0 must not be refused by rank 0's lock."""
    from pipeline.cli import _writer_lock, build_parser

    args = build_parser().parse_args(
        ["train", "--shards", str(tmp_path / "shards"), "--output", str(tmp_path / "out")]
    )
    holder = _holder_process(tmp_path / "out")  # rank 0, in its own process
    try:
        monkeypatch.setenv("RANK", "1")
        with _writer_lock(args, None):
            pass
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(RunDirBusy), _writer_lock(args, None):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holders_lock_is_broken_by_the_next_run(spark, tmp_path, tiny_input, caplog):
    run_dir = tmp_path / "run"
    proc = _holder_process(run_dir)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == proc.pid  # left behind
    caplog.set_level(logging.WARNING, logger="pipeline.run_lock")
    args = ["ingest", "--input", str(tiny_input), "--run-dir", str(run_dir), *_sets(LOCAL_NETWORK)]
    assert main(args) == 0
    (line,) = [r.getMessage() for r in caplog.records if "stale lock" in r.getMessage()]
    assert f"breaking the stale lock of pid {proc.pid} on host" in line
    assert "(the process is gone)" in line
    assert (run_dir / LOCK_NAME).read_text() == ""


def test_two_commands_started_together_one_wins_one_exits_2(tmp_path, tiny_input):
    """Two real `curate ingest` processes on one run directory, started at the same moment."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "pipeline", "ingest", "--input", str(tiny_input)]
    cmd += ["--run-dir", str(run_dir), *_sets(LOCAL_NETWORK)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = next(p for p, (code, _, _) in zip(procs, results, strict=True) if code == 0)
    (_, _, stderr) = next(r for r in results if r[0] == 2)
    lines = [line for line in stderr.splitlines() if "error" in line]
    assert lines == [
        line for line in stderr.splitlines() if line.startswith("curate ingest: error: ")
    ]
    assert len(lines) == 1, stderr
    assert f"is in use by pid {winner.pid} on host " in lines[0]
    assert "(curate ingest --input" in lines[0]


def test_status_takes_no_lock(tmp_path):
    run_dir = tmp_path / "run"
    proc = _holder_process(run_dir)
    try:
        assert main(["status", "--run-dir", str(run_dir)]) == 0
    finally:
        proc.kill()
        proc.wait()


def test_object_storage_lock_is_a_conditional_put(s3, caplog):
    run_dir = s3.url("run")
    fs = s3.filesystem()
    key = f"{run_dir.removeprefix('s3://')}/{LOCK_NAME}"
    with run_dir_lock(run_dir, "curate dedup"):
        assert Holder.parse(fs.cat_file(key).decode()).pid == os.getpid()
        # A second writer (the lock object itself: run_dir_lock is re-entrant in-process).
        second = _ObjectLock(as_path(run_dir), "curate select")
        busy = rf"in use by pid {os.getpid()} on host .*curate dedup"
        with pytest.raises(RunDirBusy, match=busy):
            second.acquire()
    assert not fs.exists(key)  # released

    # A holder on another host, not renewed for longer than the lease: stale, broken.
    old = Holder("elsewhere", 1, "2026-01-01T00:00:00+00:00", "curate run", time.time() - 1)
    fs.pipe_file(key, old.encode())
    refused = pytest.raises(RunDirBusy, match="pid 1 on host elsewhere")
    with refused, run_dir_lock(run_dir, "curate select"):
        pass
    stale = Holder(**{**old.__dict__, "renewed": time.time() - LEASE_SECONDS - 1})
    fs.pipe_file(key, stale.encode())
    caplog.set_level(logging.WARNING, logger="pipeline.run_lock")
    with run_dir_lock(run_dir, "curate select"):
        assert Holder.parse(fs.cat_file(key).decode()).command == "curate select"
    assert any("not renewed for 600 s" in r.getMessage() for r in caplog.records)
