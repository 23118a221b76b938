"""Process group set-up under torchrun: NCCL with one GPU per process, gloo on CPU; one process
without torchrun. Rank 0 alone writes checkpoints and metrics."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from pipeline.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: rank, world size and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(setting: str, local_rank: int) -> torch.device:
    """`auto` is cuda when available (the process's own GPU under torchrun), else cpu."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device=cuda but no CUDA device is available (use auto or cpu)")
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def init_distributed(device_setting: str) -> DistEnv:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_setting, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
        log.info(
            "rank %d of %d joined the %s process group on %s", rank, world_size, backend, device
        )
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def sum_across(env: DistEnv, values: list[int]) -> list[int]:
    """Element-wise sum of an integer list over all processes (each fills in its own entries)."""
    if not env.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.long, device=env.device)
    dist.all_reduce(tensor)
    return [int(v) for v in tensor.tolist()]


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
