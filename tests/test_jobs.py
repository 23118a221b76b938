"""The spark-submit entry point: one job for every stage of the registry, named so that it cannot
shadow a module of the standard library (spark-submit puts jobs/ first on sys.path: a
`jobs/select.py` once replaced the stdlib `select` and broke every job)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

import pipeline.cli
from pipeline.cli import COMMANDS
from pipeline.stages import STAGE_NAMES

JOBS = Path(__file__).parent.parent / "jobs"


def test_no_job_shadows_a_standard_module():
    names = {p.stem for p in JOBS.glob("*.py")}
    assert names == {"stage_job"} and not names & set(sys.stdlib_module_names)


@pytest.mark.parametrize("stage", [*STAGE_NAMES, "run"])
def test_the_job_passes_every_stage_to_the_cli_unchanged(monkeypatch, stage):
    """The session, not the job, picks up spark-submit's master."""
    assert stage in COMMANDS
    calls = []

    def fake_main(argv):
        calls.append(list(argv))
        return 3

    monkeypatch.setattr(pipeline.cli, "main", fake_main)
    argv = ["stage_job.py", stage, "--run-dir", "r", "--set", "a.b=c"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(JOBS / "stage_job.py"), run_name="__main__")
    assert done.value.code == 3
    assert calls == [argv[1:]]
