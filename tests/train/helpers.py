"""Helpers of the trainer tests: a small train config, and running `curate` in a subprocess."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipeline.config import Config, load_config

REPO = Path(__file__).resolve().parents[2]


# Small enough for this machine; tests add their own overrides after these.
BASE_SETTINGS = (
    "train.batch_size=16",
    "train.shuffle_buffer=200",
    "train.log_every=1",
    "train.checkpoint_every=0",
    "train.workers=0",
)


def train_config(*overrides: str) -> Config:
    """BASE_SETTINGS plus `overrides`, as a Config."""
    return load_config(None, [*BASE_SETTINGS, *overrides])


def set_args(*overrides: str) -> list[str]:
    """BASE_SETTINGS plus `overrides` as `--set` arguments of the command line."""
    return [a for s in (*BASE_SETTINGS, *overrides) for a in ("--set", s)]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def cli(*args: str) -> list[str]:
    """The `curate` command line in this interpreter."""
    return [sys.executable, "-m", "pipeline", *args]
