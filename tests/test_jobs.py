"""The spark-submit entry points: one thin job per Spark stage, named so that it cannot shadow a
module of the standard library (spark-submit puts jobs/ first on sys.path: a `jobs/select.py`
once replaced the stdlib `select` and broke every job)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

import pipeline.cli
from pipeline.cli import COMMANDS
from pipeline.run_dir import STAGES

JOBS = Path(__file__).parent.parent / "jobs"


def test_no_job_shadows_a_standard_module():
    names = {p.stem for p in JOBS.glob("*.py")}
    assert names and not names & set(sys.stdlib_module_names)


@pytest.mark.parametrize("stage", STAGES)
def test_every_spark_stage_has_a_job_that_only_calls_the_cli(monkeypatch, stage):
    """The job passes its arguments to `curate <stage>` unchanged: the session, not the job,
    picks up spark-submit's master."""
    assert stage in COMMANDS
    calls = []

    def fake_main(argv):
        calls.append(list(argv))
        return 3

    monkeypatch.setattr(pipeline.cli, "main", fake_main)
    monkeypatch.setattr(sys, "argv", [f"{stage}_job.py", "--run-dir", "r", "--set", "a.b=c"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(JOBS / f"{stage}_job.py"), run_name="__main__")
    assert done.value.code == 3
    assert calls == [[stage, "--run-dir", "r", "--set", "a.b=c"]]
