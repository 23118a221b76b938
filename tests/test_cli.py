"""`curate` exit statuses: 2 with one clear line and nothing written for bad input or config."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from pipeline.cli import main
from tests.conftest import write_parquet


@pytest.fixture
def inputs(tmp_path):
    good = write_parquet(
        tmp_path / "good.parquet",
        {"url": ["http://example.com/a.jpg"], "caption": ["a red car on the road"]},
    )
    no_url = write_parquet(
        tmp_path / "no_url.parquet", {"link": ["http://example.com/a.jpg"], "caption": ["x"]}
    )
    int_url = write_parquet(tmp_path / "int_url.parquet", {"url": [1], "caption": ["x"]})
    empty = write_parquet(
        tmp_path / "empty.parquet",
        {"url": [], "caption": []},
        schema=pa.schema([("url", pa.string()), ("caption", pa.string())]),
    )
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("this is not parquet")
    (tmp_path / "empty_dir").mkdir()
    return {
        "good": good,
        "no_url": no_url,
        "int_url": int_url,
        "empty": empty,
        "garbage": garbage,
        "empty_dir": tmp_path / "empty_dir",
        "missing": tmp_path / "missing.parquet",
    }


@pytest.mark.parametrize(
    ("which", "extra", "message"),
    [
        ("no_url", [], "missing url column 'url' (columns found: link, caption)"),
        ("int_url", [], "url column 'url' has type int64, expected string"),
        ("empty", [], "no rows"),
        ("garbage", [], "cannot read as parquet"),
        ("empty_dir", [], "no data files"),
        ("missing", [], "no such file"),
        ("good", ["--set", "ingest.min_wrods=3"], "unknown key ingest.min_wrods"),
        (
            "good",
            ["--set", "ingest.langid_model=/nope/lid.bin"],
            "no fastText model at /nope/lid.bin",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    inputs, tmp_path, capsys, which, extra, message
):
    run_dir = tmp_path / "run"
    code = main(["ingest", "--input", str(inputs[which]), "--run-dir", str(run_dir), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0], err
    assert err[0].startswith("curate ingest: error: ")
    assert not run_dir.exists()


def test_a_yaml_error_is_one_line(inputs, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest:\n  min_words: 3\n dedup: {}\n")
    run_dir = tmp_path / "run"
    code = main(
        ["ingest", "--input", str(inputs["good"]), "--run-dir", str(run_dir), "--config", str(bad)]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"curate ingest: error: config file {bad}: not valid YAML: line 3 column 2: while parsing a"
        " block mapping, expected <block end>, but found '<block mapping start>'"
    ]
    assert not run_dir.exists()


def test_console_script_reports_missing_column(inputs, tmp_path):
    """The real entry point, in its own process: exit 2, one line on stderr, no JVM started."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "ingest",
            "--input",
            str(inputs["no_url"]),
            "--run-dir",
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"curate ingest: error: input {inputs['no_url']}: missing url column 'url' "
        "(columns found: link, caption); set ingest.url_col or ingest.preset"
    ]
    assert not run_dir.exists()


def test_ingest_succeeds_through_main(spark, inputs, tmp_path):
    run_dir = tmp_path / "run"
    assert main(["ingest", "--input", str(inputs["good"]), "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "candidates").is_dir()
    assert (run_dir / "stats.json").is_file()
