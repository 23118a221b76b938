"""Kill -9 after a checkpoint, run again: the run resumes from latest.pt and ends with exactly the
weights and optimizer state of an uninterrupted run (CPU, fixed seed, two loader workers)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time

import torch

from pipeline.train.run import run_train
from tests.train.helpers import cli, set_args, subprocess_env, train_config

log = logging.getLogger(__name__)

SETTINGS = [
    "train.steps=12",
    "train.batch_size=8",
    "train.workers=2",
    "train.warmup_steps=3",
    "train.checkpoint_every=4",
    "train.seed=3",
]


def _final(folder):
    return torch.load(folder / "checkpoints" / "latest.pt", map_location="cpu", weights_only=True)


def _kill_after_first_checkpoint(shards, output) -> None:
    args = cli("train", "--shards", str(shards), "--output", str(output), *set_args(*SETTINGS))
    # Own session: the kill reaches the trainer and its loader workers, nothing else.
    proc = subprocess.Popen(
        args,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # latest.pt, not the step file: it is written second, and a kill between the two is the
    # case test_resume_from_step_file_when_latest_is_missing covers.
    first = output / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 240
    try:
        while not first.exists():
            assert proc.poll() is None, f"trainer exited with {proc.returncode} before a checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def test_killed_run_resumes_to_the_same_weights(shards, tmp_path):
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    run_train(shards, reference, train_config(*SETTINGS))

    _kill_after_first_checkpoint(shards, interrupted)
    assert not (interrupted / "checkpoints" / "step_000012.pt").exists(), "killed too late"
    killed_at = _final(interrupted)["step"]
    log.info("killed after the checkpoint of step %d", killed_at)
    assert 4 <= killed_at < 12

    summary = run_train(shards, interrupted, train_config(*SETTINGS))
    assert summary["resumed_from"] == killed_at and summary["step"] == 12

    want, got = _final(reference), _final(interrupted)
    assert got["step"] == want["step"] == 12
    assert got["data"] == want["data"]
    for key, value in want["state_dict"].items():
        assert torch.equal(got["state_dict"][key], value), key
    for index, state in want["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(got["optimizer"]["state"][index][name], value), (index, name)
    # The log has each step once, with the same losses as the uninterrupted run.
    logs = [
        [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
        for folder in (reference, interrupted)
    ]
    assert [e["step"] for e in logs[1]] == list(range(1, 13))
    assert [e["loss"] for e in logs[1]] == [e["loss"] for e in logs[0]]
    assert not list((interrupted / "checkpoints").glob(".*tmp*"))
