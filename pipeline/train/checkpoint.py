"""Checkpoints: plain data only (loads with torch.load(weights_only=True), and open_clip reads its
"state_dict"), written to a temporary name and renamed, so a killed run never leaves a torn file.

Keys: state_dict (unwrapped model), optimizer, scheduler (its parameters; the schedule is a pure
function of the step), step, model, config, data (per-slot stream positions and the slot layout),
rng (torch RNG states), format.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import InputError
from pipeline.files import write_atomically

log = logging.getLogger(__name__)

FORMAT = "curate-clip-checkpoint-v1"
LATEST = "latest.pt"
_STEP_FILE = re.compile(r"^step_(\d{6,})\.pt$")


def step_name(step: int) -> str:
    return f"step_{step:06d}.pt"


def plain(value: Any) -> Any:
    """Tensors, numbers, strings, None, lists and dicts only: tuples become lists."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"checkpoint value of type {type(value).__name__} is not plain data")


def _link_or_copy(src: Path, dst: Path) -> None:
    """dst becomes the same file as src (a hard link, or a copy where links are not possible)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def save(folder: Path, state: dict, keep: int = 0) -> Path:
    """Write step_XXXXXX.pt and point latest.pt at it; keep the newest `keep` step files (0: all)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / step_name(int(state["step"]))
    write_atomically(path, functools.partial(torch.save, plain({**state, "format": FORMAT})))
    write_atomically(folder / LATEST, functools.partial(_link_or_copy, path))
    if keep > 0:
        for old in step_files(folder)[:-keep]:
            old.unlink(missing_ok=True)
    log.info("checkpoint %s", path)
    return path


def step_files(folder: Path) -> list[Path]:
    """Step checkpoints in step order."""
    found = [
        (int(m.group(1)), p) for p in folder.glob("step_*.pt") if (m := _STEP_FILE.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def resume_path(folder: Path) -> Path | None:
    """The checkpoint a run resumes from: latest.pt, or None when there is no checkpoint. A kill
    between writing a step file and pointing latest.pt at it (save's two writes) is finished here:
    latest.pt is pointed at the newest step file, with a log line."""
    latest = folder / LATEST
    if latest.exists():
        return latest
    steps = step_files(folder)
    if not steps:
        return None
    log.warning("%s is missing: pointing it at %s, the newest step file", latest, steps[-1].name)
    write_atomically(latest, functools.partial(_link_or_copy, steps[-1]))
    return latest


def remove_partial(folder: Path) -> None:
    """Delete temporary files a killed run left behind."""
    for tmp in folder.glob(".*.pt.*.tmp"):
        tmp.unlink(missing_ok=True)


def load(path: Path) -> dict:
    """A checkpoint file as plain data; InputError when it cannot be read."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a torn, foreign or missing file
        raise InputError(
            f"checkpoint {path}: cannot read it ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from exc
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputError(f"checkpoint {path}: expected a dict with a 'state_dict' key")
    return state
