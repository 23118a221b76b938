"""Progress of a Spark stage a person can see: the Spark UI address at start, then a tqdm bar of
finished tasks fed by Spark's status tracker (polled from a daemon thread), one bar per stage of
the pipeline."""

from __future__ import annotations

import logging
import threading

from py4j.protocol import Py4JError
from pyspark.sql import SparkSession
from tqdm import tqdm

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


class SparkProgress:
    """Counts tasks of every Spark job started while it runs; `stop` closes the bar."""

    def __init__(self, spark: SparkSession, label: str) -> None:
        self._sc = spark.sparkContext
        self._label = label
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: tqdm | None = None
        self._done: dict[int, int] = {}
        self._total: dict[int, int] = {}

    def start(self) -> None:
        url = self._sc.uiWebUrl
        log.info("%s: Spark UI at %s", self._label, url or "(disabled: spark.ui.enabled=false)")
        self._bar = tqdm(desc=f"{self._label} tasks", unit="task", total=0, leave=False)
        self._thread = threading.Thread(target=self._poll, name="spark-progress", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        tracker = self._sc.statusTracker()
        while not self._stop.wait(POLL_SECONDS):
            try:
                for stage_id in tracker.getActiveStageIds():
                    info = tracker.getStageInfo(stage_id)
                    if info is None:
                        continue
                    self._total[stage_id] = info.numTasks
                    self._done[stage_id] = info.numCompletedTasks
            except Py4JError:  # the context is stopping: a progress bar must never fail a stage
                return
            self._refresh()

    def _refresh(self) -> None:
        if self._bar is None:
            return
        self._bar.total = sum(self._total.values())
        self._bar.n = sum(self._done.values())
        self._bar.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._bar is not None:
            self._bar.close()
