"""pipeline.api: the example of docs/python_api.md runs as written, and the CLI with the same
settings makes the same run directory; settings from a mapping, a file and keyword overrides
resolve alike; errors are the CLI's exit-2 errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from pipeline import api
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.demo.image_server import ImageServer
from pipeline.errors import ConfigError, InputError
from pipeline.run_dir import RunDir
from pipeline.stages import STAGES

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "docs" / "python_api.md").read_text()
# The example's settings as --set flags.
CLI_SETTINGS = [
    "network.allowed_networks=[127.0.0.1/32]",
    "download.timeout=3",
    "download.processes=2",
    "download.threads=8",
    "clip.enabled=false",
    "shard.samples_per_shard=40",
]


def _blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def _sets(*items: str) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def _snapshot(root: Path) -> dict:
    """What a run directory holds, less what differs between any two runs (times, paths)."""
    stats = json.loads((root / "stats.json").read_text())
    stages = {
        name: {k: v for k, v in entry.items() if k not in ("seconds", "completed_at")}
        for name, entry in stats["stages"].items()
    }
    run = RunDir(root)
    tables = {}
    for stage in STAGES:
        for kind, folder in (("kept", root / stage.output), ("ledger", run.ledger_for(stage.name))):
            files = sorted(str(p) for p in folder.glob("*.parquet")) if folder.is_dir() else []
            if files:
                table = ds.dataset(files, format="parquet").to_table()
                names = [c for c in ("uid", "reason", "detail") if c in table.schema.names]
                rows = sorted(zip(*(table.column(c).to_pylist() for c in names), strict=True))
                tables[f"{stage.name}.{kind}"] = rows
    return {"stages": stages, "tables": tables, "config": (root / "config.yaml").read_text()}


def test_the_documented_example_runs_and_matches_the_cli(spark, tmp_path, monkeypatch):
    # The session starts before the chdir, as in a notebook that changes folder: relative paths
    # must not reach its JVM, which resolves them from where it started.
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in _blocks(EXAMPLE):
        exec(compile(block, "docs/python_api.md", "exec"), namespace)
    result = namespace["result"]
    assert [s.stage for s in result.stages] == [s.name for s in STAGES]
    for outcome in result.stages:
        assert outcome.rows_in == outcome.rows_kept + outcome.rows_dropped
    assert result.stage("ingest").rows_in == 150
    assert Path(result.report).is_file()
    assert namespace["dedup"].figures["max_distance"] == 4
    later = {s.stage: s.status for s in namespace["later"]}
    # Rerunning dedup forgets the stages after it, as `curate dedup` does.
    assert later["dedup"] == "complete" and later["select"] == later["shard"] == "not run"

    # The same settings through the CLI, on the same server address (the uids follow the URLs).
    server, web, pairs = namespace["server"], namespace["web"], namespace["pairs"]
    with ImageServer(web.files_dir, port=server.port):
        assert (
            main(["run", "--input", str(pairs), "--run-dir", "cli-run", *_sets(*CLI_SETTINGS)]) == 0
        )
        radius = _sets(*CLI_SETTINGS, "dedup.max_distance=4")
        assert main(["dedup", "--run-dir", "cli-run", *radius]) == 0
    assert _snapshot(tmp_path / "cli-run") == _snapshot(tmp_path / "api-example" / "run")


def test_settings_resolve_alike_from_a_mapping_a_file_and_overrides(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("ingest:\n  min_words: 2\ndedup:\n  semantic:\n    eps: 0.02\n")
    want = load_config(path, ["clip.enabled=false"])
    mapping = {"ingest": {"min_words": 2}, "dedup": {"semantic": {"eps": 0.02}}}
    assert api.resolve_config(path, clip__enabled=False) == want
    assert api.resolve_config(mapping, clip__enabled=False) == want
    assert (
        api.resolve_config(
            None, ingest__min_words=2, dedup__semantic__eps=0.02, clip__enabled=False
        )
        == want
    )
    assert api.resolve_config(load_config(path), clip__enabled=False) == want
    assert mapping == {"ingest": {"min_words": 2}, "dedup": {"semantic": {"eps": 0.02}}}
    lists = api.resolve_config(None, network__allowed_networks=["127.0.0.1/32", "10.0.0.0/8"])
    assert lists.network.allowed_networks == ("127.0.0.1/32", "10.0.0.0/8")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda d: api.resolve_config(None, ingest__min_wordz=2),
            ConfigError,
            "unknown key ingest.min_wordz",
        ),
        (
            lambda d: api.resolve_config({"ingest": 3}),
            ConfigError,
            "config section ingest: expected a mapping",
        ),
        (lambda d: api.dedup(d), InputError, "no complete annotate stage"),
        (lambda d: api.ingest(d / "missing.parquet", d / "run"), InputError, "missing.parquet"),
    ],
)
def test_errors_are_the_cli_exit_2_errors(tmp_path, call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call(tmp_path)


def test_one_function_per_registry_stage():
    for stage in STAGES:
        function = getattr(api, stage.name)
        assert function.__name__ == stage.name and stage.help in function.__doc__
