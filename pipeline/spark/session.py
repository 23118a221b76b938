"""Builds the SparkSession: local mode with task retries by default, any master by config or env,
and under spark-submit the master and settings that spark-submit was given.

All Spark configuration lives here. Tests share one session per run (getOrCreate).
"""

from __future__ import annotations

import logging
import os
import re
import sys

from pyspark.sql import SparkSession

from pipeline.spark.settings import SparkConfig

log = logging.getLogger(__name__)

# spark-submit's PythonRunner sets this for the driver it starts: the JVM is already running.
SUBMIT_ENV = "PYSPARK_GATEWAY_PORT"
# Settings the driver JVM reads when it starts: under spark-submit it has started already.
LAUNCH_ONLY = frozenset({"spark.driver.memory"})
# local, local[N], local[*]: local modes that never retry a failed task.
_LOCAL_WITHOUT_RETRIES = re.compile(r"local(?:\[(\d+|\*)\])?")


def submitted_conf() -> dict[str, str] | None:
    """The settings spark-submit started this driver with (`--master`, `--conf` ...), or None
    outside spark-submit."""
    if SUBMIT_ENV not in os.environ:
        return None
    return _launch_conf()


def _launch_conf() -> dict[str, str]:
    from pyspark import SparkConf, SparkContext

    # Connects to spark-submit's JVM (the session later reuses it); a SparkConf made before
    # that would not see the settings spark-submit put in the JVM's system properties.
    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def with_retries(master: str, attempts: int) -> str:
    """A local master that never retries (`local`, `local[N]`, `local[*]`) as `local[N,F]`;
    any other master unchanged."""
    match = _LOCAL_WITHOUT_RETRIES.fullmatch(master)
    if match is None:
        return master
    return f"local[{match.group(1) or 1},{attempts}]"


def resolve_master(cfg: SparkConfig) -> str:
    """The master a session gets: spark-submit's `--master` under spark-submit, else
    `spark.master` from config, else $SPARK_MASTER, else local[N,F] (F attempts per task)."""
    return _resolve_master(cfg, submitted_conf())


def _resolve_master(cfg: SparkConfig, submitted: dict[str, str] | None) -> str:
    if submitted is not None and submitted.get("spark.master"):
        # Task retries are what make a stage survive a failed task; spark-submit's default
        # master (plain local[*]) has none, and a cluster master keeps spark.task.maxFailures.
        master = with_retries(submitted["spark.master"], cfg.task_max_failures)
        if cfg.master and cfg.master != submitted["spark.master"]:
            log.warning(
                "spark.master=%s from the config is ignored: spark-submit was given --master %s",
                cfg.master,
                submitted["spark.master"],
            )
        return master
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
        "spark.ui.enabled": "true" if cfg.ui else "false",
        "spark.driver.memory": cfg.driver_memory,
        "spark.sql.parquet.compression.codec": "zstd",
    }
    conf.update(cfg.conf)
    return conf


def session_settings(
    cfg: SparkConfig, submitted: dict[str, str] | None
) -> tuple[str | None, dict[str, str]]:
    """(master to set or None, settings to set) for a new session.

    Outside spark-submit: the resolved master and every setting of `spark_conf`. Under
    spark-submit, what it was given stands: no master unless a local one needs retries added,
    and only the settings it left unset (none that the running driver JVM has fixed already).
    """
    master = _resolve_master(cfg, submitted)
    conf = spark_conf(cfg)
    if submitted is None:
        return master, conf
    keep = {k: v for k, v in conf.items() if k not in submitted and k not in LAUNCH_ONLY}
    return (master if master != submitted.get("spark.master") else None), keep


def get_spark(cfg: SparkConfig) -> SparkSession:
    """The active session if there is one, else a new one built from `cfg` (under spark-submit,
    from what spark-submit was given, with `cfg` filling in the rest)."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    submitted = submitted_conf()
    master, conf = session_settings(cfg, submitted)
    # Executors in local mode must run this interpreter (the one with our packages installed);
    # spark-submit's spark.pyspark.python, when given, has set these already.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    effective = master or (submitted or {}).get("spark.master", "")
    if not is_cluster(effective) and submitted is None:
        # Local mode talks to itself only: bind to loopback, never to a routable interface.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder
    if master is not None:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    log.info("starting Spark (master %s%s)", effective, ", from spark-submit" if submitted else "")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
