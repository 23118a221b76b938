"""How many torch threads a training process computes with, next to its loader workers."""

from __future__ import annotations

import pytest
import torch

from pipeline.train.distributed import DistEnv
from pipeline.train.run import compute_threads


@pytest.mark.parametrize(
    ("device", "world_size", "workers", "threads", "cores", "expected"),
    [
        ("cpu", 1, 1, 2, 2, 1),  # the demo: one loader worker leaves one core to torch
        ("cpu", 1, 2, 2, 2, 1),  # never fewer than one
        ("cpu", 1, 2, 16, 16, 14),
        ("cpu", 1, 1, 4, 16, 4),  # a thread count the user lowered is kept
        ("cpu", 1, 0, 2, 2, 2),  # decoding in the training process: its threads unchanged
        ("cpu", 2, 1, 2, 2, 2),  # under torchrun: left to the launcher
        ("cuda", 1, 1, 2, 2, 2),
    ],
)
def test_compute_threads_leave_the_loader_its_cores(
    monkeypatch, device, world_size, workers, threads, cores, expected
):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: set(range(cores)), raising=False)
    env = DistEnv(rank=0, world_size=world_size, local_rank=0, device=torch.device(device))
    assert compute_threads(env, workers, threads) == expected
