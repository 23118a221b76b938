"""The `spark` config section: where and how Spark runs (read by pipeline/spark/session.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class SparkConfig:
    """Where and how Spark runs. `master` empty means $SPARK_MASTER, else local mode with retries."""

    master: str = ""
    app_name: str = "curate"
    # local[N,F]: F attempts per task; plain local[N] never retries a failed task.
    local_cores: str = "*"
    task_max_failures: int = 4
    shuffle_partitions: int = 8
    max_records_per_batch: int = 10_000
    driver_memory: str = "4g"
    # The Spark web UI (its address is logged when a stage starts): jobs, stages, tasks, memory.
    ui: bool = True
    conf: Mapping[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.task_max_failures < 1:
            raise ConfigError("config spark.task_max_failures: must be at least 1")
