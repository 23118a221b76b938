"""torchrun with 2 gloo processes against 1 process with the same global batch: with as many
data slots (2 processes x 1 stream, 1 process x 2 loader workers) both see the same batches, and
gathering features for the loss makes the steps the same, so the loss curves match step by step."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import torch

from pipeline.train.run import run_train
from tests.train.helpers import set_args, subprocess_env, train_config

log = logging.getLogger(__name__)
STEPS = 12


def _log(folder):
    return [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]


def test_two_processes_match_one_process(shards, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args += ["-m", "pipeline", "train", "--shards", str(shards), "--output", str(two)]
    args += set_args(f"train.steps={STEPS}", "train.workers=0", "train.warmup_steps=3")
    done = subprocess.run(args, env=subprocess_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1 of 2 joined the gloo process group" in done.stderr

    run_train(
        shards, one, train_config(f"train.steps={STEPS}", "train.workers=2", "train.warmup_steps=3")
    )

    curves = [[e["loss"] for e in _log(folder)] for folder in (one, two)]
    log.info("1 process: %s", " ".join(f"{v:.4f}" for v in curves[0]))
    log.info("2 processes: %s", " ".join(f"{v:.4f}" for v in curves[1]))
    assert len(curves[0]) == len(curves[1]) == STEPS
    gaps = [abs(a - b) for a, b in zip(*curves, strict=True)]
    log.info("largest step-wise loss gap %.2e", max(gaps))
    assert max(gaps) < 1e-3
    weights = [
        torch.load(f / "checkpoints" / "latest.pt", weights_only=True)["state_dict"]
        for f in (one, two)
    ]
    assert all(torch.allclose(weights[0][k], v, atol=1e-4) for k, v in weights[1].items())
