"""Fixtures of the trainer tests: small synthetic shards and eval set (64 px), one torch thread.

The machine has 2 shared cores: one intra-op thread per process is several times faster here
than two threads fighting other processes, and makes CPU results independent of the thread count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.demo.synthetic_web import generate_eval_set
from tests.train.shards import write_shards


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    """1600 pairs in 5 tars with sizes.json."""
    return write_shards(tmp_path_factory.mktemp("shards"), n_samples=1600, n_shards=5, seed=0)


@pytest.fixture(scope="session")
def eval_set(tmp_path_factory) -> Path:
    """5 held-out pictures per class (180), 64 px, as generate_eval_set writes them."""
    folder = tmp_path_factory.mktemp("eval")
    generate_eval_set(folder, n_per_class=5, seed=1, image_size=(64, 64))
    return folder
