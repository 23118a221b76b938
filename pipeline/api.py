"""The Python API: everything `curate` does, as functions that return small typed results
instead of printing (the CLI is a thin layer over it; docs/python_api.md has a worked example).

    from pipeline import api
    result = api.run("pairs.parquet", "runs/r1", ingest__min_words=2, clip__enabled=False)
    result.stage("dedup").dropped   # {"dedup.near_duplicate": 12, ...}

`config` is a Config, a YAML file, or a mapping shaped like one ({"ingest": {"min_words": 2}});
keyword overrides name a setting with `__` for each dot (`dedup__semantic__eps=0.02` is
`--set dedup.semantic.eps=0.02`) and are applied on top. Bad settings or inputs raise the
`ConfigError` / `InputError` the CLI maps to exit 2. Every function that writes holds the run
directory's lock (pipeline.run_lock), as the CLI does; there is one function per stage of the
registry (`api.ingest`, `api.dedup`, ...), made from it, so a new stage gets one too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Config, load_config, to_dict
from pipeline.stages import STAGES, Stage

ConfigLike = Config | str | os.PathLike[str] | Mapping[str, Any] | None


@dataclass(frozen=True)
class StageOutcome:
    """One stage of a run as stats.json records it."""

    stage: str
    rows_in: int
    rows_kept: int
    # Ledger rows per reason code.
    dropped: dict[str, int]
    seconds: float
    # The stage's output folder (a path or a URL).
    output: str
    # The stage's own figures (its stats.json entry less the counts above).
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())


@dataclass(frozen=True)
class RunOutcome:
    """A run: its stages in pipeline order, and the report when one was written."""

    run_dir: str
    stages: tuple[StageOutcome, ...]
    report: str | None = None
    # stats.json's whole content (the demo's comparison under "comparison").
    stats: dict[str, Any] = field(repr=False, default_factory=dict)

    def stage(self, name: str) -> StageOutcome:
        for outcome in self.stages:
            if outcome.stage == name:
                return outcome
        raise KeyError(f"no stage {name!r} in this run ({', '.join(s.stage for s in self.stages)})")


@dataclass(frozen=True)
class StageStatus:
    """One line of `curate status`."""

    stage: str
    # complete, stale, missing output or not run.
    status: str
    why: str
    rows_in: int | None
    rows_kept: int | None


@dataclass(frozen=True)
class TrainOutcome:
    """What `curate train` ended with."""

    step: int
    resumed_from: int | None
    loss: float | None
    # The final evaluation: zero-shot top-1/top-5, retrieval recall, ...
    metrics: dict[str, Any]
    checkpoint: str
    samples_per_s: float


@dataclass(frozen=True)
class CompareOutcome:
    """`curate compare`: one row per selection, and where comparison.json is."""

    rows: dict[str, dict[str, Any]]
    path: str
    # comparison.json's whole content (model, steps, tail classes, ...).
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


def resolve_config(config: ConfigLike = None, **overrides: Any) -> Config:
    """The Config of `config` (see the module docstring) with `overrides` applied, validated."""
    # JSON is YAML: each value reaches the setting's type check as --set would give it.
    sets = [
        f"{key.replace('__', '.')}={json.dumps(value, default=str)}"
        for key, value in overrides.items()
    ]
    if isinstance(config, Config):
        return load_config(None, sets, values=to_dict(config)) if sets else config
    if isinstance(config, Mapping):
        return load_config(None, sets, values=config)
    return load_config(config, sets)


def _local_absolute(path: str | os.PathLike[str]) -> str:
    """A local path made absolute (a URL as it is): the JVM of a Spark session started before
    the caller's os.chdir resolves relative paths from where it started."""
    text = os.fspath(path)
    return text if "://" in text else os.path.abspath(text)


def _command(name: str) -> str:
    """What a refused second writer is told this process is doing."""
    return f"pipeline.api.{name} ({' '.join(sys.argv)[:200]})"


def _locked(folder: str | os.PathLike[str], name: str) -> Any:
    from pipeline.run_lock import run_dir_lock

    return run_dir_lock(folder, _command(name))


def _outcome(run_dir: str | os.PathLike[str], name: str, entry: Mapping[str, Any]) -> StageOutcome:
    from pipeline.stages import get_stage
    from pipeline.storage import as_path

    counts = ("rows_in", "rows_kept", "rows_dropped", "dropped_by_reason", "seconds")
    return StageOutcome(
        stage=name,
        rows_in=int(entry["rows_in"]),
        rows_kept=int(entry["rows_kept"]),
        dropped=dict(entry.get("dropped_by_reason", {})),
        seconds=float(entry.get("seconds", 0.0)),
        output=str(as_path(run_dir) / get_stage(name).output),
        figures={k: v for k, v in entry.items() if k not in counts},
    )


def _run_outcome(
    run_dir: str | os.PathLike[str], stats: Mapping[str, Any], report: Any
) -> RunOutcome:
    entries = stats.get("stages", {})
    return RunOutcome(
        run_dir=str(run_dir),
        stages=tuple(
            _outcome(run_dir, s.name, entries[s.name]) for s in STAGES if s.name in entries
        ),
        report=None if report is None else str(report),
        stats=dict(stats),
    )


def run(
    input: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    config: ConfigLike = None,
    *,
    report: bool = True,
    **overrides: Any,
) -> RunOutcome:
    """`curate run`: every stage in order (complete ones skipped), then the report."""
    from pipeline.run_all import run_all
    from pipeline.storage import as_path

    resolved = resolve_config(config, **overrides)
    with _locked(run_dir, "run"):
        stats = run_all(_local_absolute(input), run_dir, resolved, report=report)
    path = as_path(run_dir) / "report" / "index.html" if report else None
    return _run_outcome(run_dir, stats, path)


def run_stage(
    name: str,
    run_dir: str | os.PathLike[str],
    config: ConfigLike = None,
    *,
    input: str | os.PathLike[str] | None = None,
    force: bool = False,
    **overrides: Any,
) -> StageOutcome:
    """One stage of the registry (`curate NAME`); `input` for the first stage only."""
    from pipeline import runner

    resolved = resolve_config(config, **overrides)
    with _locked(run_dir, name):
        entry = runner.run_stage(
            name,
            run_dir,
            resolved,
            input_path=None if input is None else _local_absolute(input),
            force=force,
        )
    return _outcome(run_dir, name, entry)


def _stage_function(stage: Stage) -> Callable[..., StageOutcome]:
    def stage_function(
        run_dir: str | os.PathLike[str],
        config: ConfigLike = None,
        *,
        force: bool = False,
        **overrides: Any,
    ) -> StageOutcome:
        return run_stage(stage.name, run_dir, config, force=force, **overrides)

    def first_stage_function(
        input: str | os.PathLike[str],
        run_dir: str | os.PathLike[str],
        config: ConfigLike = None,
        *,
        force: bool = False,
        **overrides: Any,
    ) -> StageOutcome:
        return run_stage(stage.name, run_dir, config, input=input, force=force, **overrides)

    made = first_stage_function if stage.needs is None else stage_function
    made.__name__ = made.__qualname__ = stage.name
    made.__doc__ = f"`curate {stage.name}`: {stage.help}."
    return made


# One function per stage of the registry: api.ingest(input, run_dir, ...), api.dedup(run_dir, ...).
for _stage in STAGES:
    globals()[_stage.name] = _stage_function(_stage)


def status(
    run_dir: str | os.PathLike[str], config: ConfigLike = None, **overrides: Any
) -> list[StageStatus]:
    """`curate status`: where each stage stands under these settings (reads only, no lock)."""
    from pipeline.runner import stage_states

    resolved = resolve_config(config, **overrides)
    return [
        StageStatus(
            name,
            state.status,
            state.why,
            (state.entry or {}).get("rows_in"),
            (state.entry or {}).get("rows_kept"),
        )
        for name, state in stage_states(run_dir, resolved)
    ]


def report(run_dir: str | os.PathLike[str], config: ConfigLike = None, **overrides: Any) -> Path:
    """`curate report`: write report/index.html, return its path."""
    from pipeline.report.stage import run_report

    resolved = resolve_config(config, **overrides)
    with _locked(run_dir, "report"):
        return Path(str(run_report(run_dir, resolved)))


def train(
    shards: str | os.PathLike[str],
    output: str | os.PathLike[str],
    config: ConfigLike = None,
    **overrides: Any,
) -> TrainOutcome:
    """`curate train`: train (or resume) the bundled CLIP trainer on webdataset shards."""
    from pipeline.train.run import run_train

    resolved = resolve_config(config, **overrides)
    # Under torchrun every rank trains: the job holds the output's lock through rank 0.
    rank_zero = os.environ.get("RANK", "0") == "0"
    with _locked(output, "train") if rank_zero else contextlib.nullcontext():
        done = run_train(str(shards), Path(output), resolved)
    return TrainOutcome(
        step=int(done["step"]),
        resumed_from=done.get("resumed_from"),
        loss=done.get("loss"),
        metrics=dict(done.get("metrics", {})),
        checkpoint=str(done["checkpoint"]),
        samples_per_s=float(done.get("samples_per_s", 0.0)),
    )


def compare(
    run_dir: str | os.PathLike[str],
    selections: Mapping[str, str] | Sequence[str],
    config: ConfigLike = None,
    **overrides: Any,
) -> CompareOutcome:
    """`curate compare`: train the same model on each selection ({name: spec}, or "NAME=SPEC"
    strings as `--selections` takes them; SPEC: raw, run, or select rules and balance joined by
    +) and evaluate it on train.eval_data."""
    from pipeline.compare.run_compare import COMPARISON, run_compare
    from pipeline.compare.selections import parse_selections

    resolved = resolve_config(config, **overrides)
    texts = (
        [f"{name}={spec}" for name, spec in selections.items()]
        if isinstance(selections, Mapping)
        else list(selections)
    )
    specs = parse_selections(texts)
    with _locked(run_dir, "compare"):
        comparison = run_compare(run_dir, resolved, specs)
    path = Path(run_dir).resolve() / COMPARISON
    return CompareOutcome(rows=dict(comparison.get("runs", {})), path=str(path), raw=comparison)


def demo(
    run_dir: str | os.PathLike[str] = "runs/demo",
    config: ConfigLike = None,
    *,
    pairs: int | None = None,
    seed: int = 0,
    eval_per_class: int | None = None,
    port: int | None = None,
    **overrides: Any,
) -> RunOutcome:
    """`curate demo`: the synthetic web on 127.0.0.1, the whole pipeline and the training
    comparison (in `.stats["comparison"]`); `pairs`, `eval_per_class` and `port` (the web's
    loopback port, 0 for any free one) default to the demo's."""
    from pipeline.demo.run_demo import run_demo

    resolved = resolve_config(config, **overrides)
    # Unset sizes keep run_demo's own defaults (DEMO_PAIRS, EVAL_PER_CLASS): one place for them.
    sizes = {"pairs": pairs, "eval_per_class": eval_per_class, "port": port}
    with _locked(run_dir, "demo"):
        stats = run_demo(
            run_dir, resolved, seed=seed, **{k: v for k, v in sizes.items() if v is not None}
        )
    return _run_outcome(
        Path(run_dir).resolve(), stats, Path(run_dir).resolve() / "report" / "index.html"
    )
