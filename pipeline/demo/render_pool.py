"""Render the demo's pictures on every core: drawing and JPEG-encoding a picture is pure Python
and numpy on one thread, and each picture comes from its own seeded random stream, so the work
splits across processes with byte-identical results in any order."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

from pipeline.cores import usable_cores

log = logging.getLogger(__name__)
Job = TypeVar("Job")
Result = TypeVar("Result")
# Below this many pictures a pool's start (spawned interpreters importing numpy and PIL, about
# 1 s each) costs more than it saves.
MIN_POOLED_JOBS = 500
# Jobs per task sent to a worker: large enough that pickling is noise next to rendering.
CHUNK = 64


def render_all(
    work: Callable[[Job], Result], jobs: Sequence[Job], desc: str, workers: int | None = None
) -> list[Result]:
    """`[work(j) for j in jobs]`, in order, on `workers` processes (default: the usable cores).

    `work` must be a module-level function. Spawned, not forked: the demo renders while Spark's
    gateway and the image server hold threads, and a fork copies their locks mid-use.
    """
    workers = workers or usable_cores()
    if workers < 2 or len(jobs) < MIN_POOLED_JOBS:
        return list(_progress(map(work, jobs), len(jobs), desc))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(_progress(pool.map(work, jobs, chunksize=CHUNK), len(jobs), desc))


def _progress(results: Iterable[Result], total: int, desc: str) -> Iterable[Result]:
    return tqdm(results, total=total, desc=desc, unit="img", disable=None)
