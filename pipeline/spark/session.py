"""Builds the SparkSession: local mode with task retries by default, any master by config or env.

All Spark configuration lives here. Tests share one session per run (getOrCreate).
"""

from __future__ import annotations

import logging
import os
import sys

from pyspark.sql import SparkSession

from pipeline.config import SparkConfig

log = logging.getLogger(__name__)


def resolve_master(cfg: SparkConfig) -> str:
    """`spark.master` from config, else $SPARK_MASTER, else local[N,F] (F attempts per task)."""
    if cfg.master:
        return cfg.master
    env = os.environ.get("SPARK_MASTER", "").strip()
    if env:
        return env
    return f"local[{cfg.local_cores},{cfg.task_max_failures}]"


def is_cluster(master: str) -> bool:
    """True for spark://, yarn, k8s:// and mesos masters; False for local modes."""
    return not master.startswith("local")


def spark_conf(cfg: SparkConfig) -> dict[str, str]:
    """The settings every session gets; `spark.conf` entries override them."""
    conf = {
        "spark.app.name": cfg.app_name,
        "spark.task.maxFailures": str(cfg.task_max_failures),
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.max_records_per_batch),
        "spark.sql.session.timeZone": "UTC",
        # Stages write tars and ledgers as side effects: a speculative duplicate must not race.
        "spark.speculation": "false",
        # Python workers are reused, so models load once per worker, not once per task.
        "spark.python.worker.reuse": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        "spark.driver.memory": cfg.driver_memory,
        "spark.sql.parquet.compression.codec": "zstd",
    }
    conf.update(cfg.conf)
    return conf


def get_spark(cfg: SparkConfig) -> SparkSession:
    """The active session if there is one, else a new one built from `cfg`."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    master = resolve_master(cfg)
    # Executors in local mode must run this interpreter (the one with our packages installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if not is_cluster(master):
        # Local mode talks to itself only: bind to loopback, never to a routable interface.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master)
    for key, value in spark_conf(cfg).items():
        builder = builder.config(key, value)
    log.info("starting Spark (master %s)", master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
