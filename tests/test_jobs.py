"""The spark-submit entry points: one thin job per Spark stage, named so that it cannot shadow a
module of the standard library (spark-submit puts jobs/ first on sys.path: a `jobs/select.py`
once replaced the stdlib `select` and broke every job)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.cli import COMMANDS

JOBS = Path(__file__).parent.parent / "jobs"


def test_no_job_shadows_a_standard_module():
    names = {p.stem for p in JOBS.glob("*.py")}
    assert names and not names & set(sys.stdlib_module_names)


def test_every_spark_stage_has_a_job_calling_the_cli():
    for stage in ("ingest", "download", "annotate", "dedup", "select"):
        assert stage in COMMANDS
        text = (JOBS / f"{stage}_job.py").read_text()
        assert f'job_argv("{stage}", sys.argv[1:])' in text
