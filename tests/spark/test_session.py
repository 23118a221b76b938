"""Which master and settings a session gets: config, $SPARK_MASTER or local mode with retries
outside spark-submit; under spark-submit, its `--master` and `--conf` stand."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.spark import session
from pipeline.spark.local_cluster import spark_env
from pipeline.spark.packaging import project_root
from pipeline.spark.session import (
    SUBMIT_ENV,
    resolve_master,
    session_settings,
    submitted_conf,
    with_retries,
)
from pipeline.spark.settings import SparkConfig

CLUSTER = "spark://127.0.0.1:7077"


@pytest.fixture
def outside_submit(monkeypatch):
    """No spark-submit: the JVM must not even be looked at."""
    monkeypatch.delenv(SUBMIT_ENV, raising=False)
    monkeypatch.delenv("SPARK_MASTER", raising=False)

    def no_jvm() -> dict[str, str]:
        raise AssertionError("looked for a spark-submit JVM outside spark-submit")

    monkeypatch.setattr(session, "_launch_conf", no_jvm)


def submitted_with(monkeypatch, conf: dict[str, str]) -> None:
    """As under spark-submit: the gateway port is set and the JVM holds `conf`."""
    monkeypatch.setenv(SUBMIT_ENV, "12345")
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    monkeypatch.setattr(session, "_launch_conf", lambda: dict(conf))


@pytest.mark.parametrize(
    ("master", "expected"),
    [
        ("local", "local[1,4]"),
        ("local[2]", "local[2,4]"),
        ("local[*]", "local[*,4]"),
        ("local[2,3]", "local[2,3]"),
        ("local-cluster[2,1,1024]", "local-cluster[2,1,1024]"),
        (CLUSTER, CLUSTER),
        ("yarn", "yarn"),
        ("k8s://https://host:6443", "k8s://https://host:6443"),
    ],
)
def test_with_retries_only_touches_local_masters_without_them(master, expected):
    assert with_retries(master, 4) == expected


def test_outside_spark_submit_the_config_decides(outside_submit, monkeypatch):
    assert submitted_conf() is None
    assert resolve_master(SparkConfig(local_cores="2", task_max_failures=3)) == "local[2,3]"
    assert resolve_master(SparkConfig(master="yarn")) == "yarn"
    monkeypatch.setenv("SPARK_MASTER", CLUSTER)
    assert resolve_master(SparkConfig()) == CLUSTER
    master, conf = session_settings(SparkConfig(driver_memory="3g"), None)
    assert master == CLUSTER
    assert conf["spark.driver.memory"] == "3g" and conf["spark.app.name"] == "curate"


def test_under_spark_submit_its_master_and_conf_stand(monkeypatch, caplog):
    submitted_with(
        monkeypatch,
        {
            "spark.master": CLUSTER,
            "spark.app.name": "ingest_job.py",
            "spark.sql.shuffle.partitions": "16",
            "spark.driver.memory": "1g",
        },
    )
    cfg = SparkConfig(master="local[2,4]", shuffle_partitions=4, driver_memory="8g")
    assert submitted_conf() is not None
    with caplog.at_level(logging.WARNING, logger="pipeline.spark.session"):
        assert resolve_master(cfg) == CLUSTER
    assert "spark.master=local[2,4] from the config is ignored" in caplog.text
    master, conf = session_settings(cfg, submitted_conf())
    assert master is None  # the builder keeps the submitted master
    for key in ("spark.master", "spark.app.name", "spark.sql.shuffle.partitions"):
        assert key not in conf
    # Too late for the driver JVM's memory; everything spark-submit left unset comes from cfg.
    assert "spark.driver.memory" not in conf
    assert conf["spark.task.maxFailures"] == "4"
    assert conf["spark.speculation"] == "false"


def test_download_picks_the_pyspark_distributor_under_a_submitted_cluster(monkeypatch):
    from pipeline.config import load_config
    from pipeline.download.stage import resolve_distributor

    submitted_with(monkeypatch, {"spark.master": CLUSTER})
    assert resolve_distributor(load_config()) == "pyspark"
    submitted_with(monkeypatch, {"spark.master": "local[*]"})
    assert resolve_distributor(load_config()) == "multiprocessing"


def test_a_submitted_local_master_gets_task_retries(monkeypatch):
    submitted_with(monkeypatch, {"spark.master": "local[*]"})
    master, conf = session_settings(SparkConfig(task_max_failures=4), submitted_conf())
    assert master == "local[*,4]"
    assert "spark.driver.memory" not in conf


@pytest.mark.slow
def test_a_real_spark_submit_keeps_its_master_and_conf(tmp_path):
    """spark-submit --master local[1] --conf ...: the session sees the submitted settings (with
    retries added to the local master), not the config's local[N,F]."""
    probe = tmp_path / "probe_job.py"
    probe.write_text(
        textwrap.dedent(
            """
            import json, sys
            from pipeline.spark.settings import SparkConfig
            from pipeline.spark.session import get_spark
            spark = get_spark(SparkConfig(local_cores="2", shuffle_partitions=4))
            conf = spark.sparkContext.getConf()
            print("PROBE " + json.dumps({
                "master": spark.sparkContext.master,
                "partitions": spark.conf.get("spark.sql.shuffle.partitions"),
                "app": conf.get("spark.app.name"),
                "speculation": conf.get("spark.speculation"),
            }))
            spark.stop()
            """
        )
    )
    env = spark_env()
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env.pop(SUBMIT_ENV, None)
    env.pop("SPARK_MASTER", None)
    fast_jvm = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    done = subprocess.run(
        [str(Path(sys.executable).with_name("spark-submit")), "--master", "local[1]"]
        + ["--name", "probe", "--conf", "spark.sql.shuffle.partitions=7"]
        + ["--conf", f"spark.pyspark.python={sys.executable}"]
        + ["--conf", f"spark.driver.extraJavaOptions={fast_jvm}", str(probe)],
        cwd=project_root(),
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("PROBE "))
    seen = json.loads(line.removeprefix("PROBE "))
    assert seen == {
        "master": "local[1,4]",
        "partitions": "7",
        "app": "probe",
        "speculation": "false",
    }
