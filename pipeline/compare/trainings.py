"""A comparison's trainings, one after another or `compare.parallel` at once.

Each training is one `run_train` in its own folder. Run at once, each goes to a spawned process
(no fork: the parent holds a Spark JVM and torch threads) computing with its share of the cores
(usable cores / parallel torch threads, its loader workers beside them). It pays where one
training cannot keep every core busy (a small model on many cores); on 2 cores two of the
demo's trainings at once took 1.03x as long as one after another (`make bench-compare-parallel`:
96.7 s against 93.8 s for four), each already using both cores (one torch thread, one loader
worker). A folder whose shards changed is cleared before any training starts, in the
order the trainings are listed, as one after another would: a selection's first seed owns the
folder its other seeds live in.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.cores import usable_cores
from pipeline.files import write_text_atomically

log = logging.getLogger(__name__)
SOURCE = "source.json"


@dataclass(frozen=True)
class Training:
    """One model to train: selection `name`'s `shards` (made by the stage of fingerprint
    `source`) into `folder` with `config` (its train.seed included)."""

    name: str
    shards: Path
    source: str
    config: Config
    folder: Path


def prepare_folder(training: Training) -> None:
    """Clear the folder of a model trained on other shards than these, and record these."""
    folder, recorded = training.folder, training.folder / SOURCE
    wanted = {"shards": str(training.shards), "fingerprint": training.source}
    if folder.exists() and (not recorded.is_file() or json.loads(recorded.read_text()) != wanted):
        log.info(
            "compare: %s's shards changed since its model was trained; retraining", training.name
        )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(recorded, json.dumps(wanted) + "\n")


def _train(training: Training) -> dict[str, Any]:
    from pipeline.train.run import run_train

    log.info(
        "compare: training %s (seed %d) on %s (%d steps)",
        training.name,
        training.config.train.seed,
        training.shards,
        training.config.train.steps,
    )
    return run_train(training.shards, training.folder, training.config)


def _start_child(threads: int, verbose: bool) -> None:
    import torch

    from pipeline.logs import setup_logging

    setup_logging(verbose)
    torch.set_num_threads(threads)


def run_trainings(trainings: list[Training], parallel: int) -> list[dict[str, Any]]:
    """Train every model (a finished one is found, not retrained); the summaries in order."""
    for training in trainings:
        prepare_folder(training)
    at_once = min(parallel, len(trainings))
    if at_once <= 1:
        return [_train(t) for t in trainings]
    threads = max(1, usable_cores() // at_once)
    log.info(
        "compare: %d trainings, %d at once, %d torch threads each", len(trainings), at_once, threads
    )
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    with ProcessPoolExecutor(
        max_workers=at_once,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_child,
        initargs=(threads, verbose),
    ) as pool:
        return list(pool.map(_train, trainings))
