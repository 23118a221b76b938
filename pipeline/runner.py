"""The stage runner: what every stage shares, done once.

For a stage of the registry (pipeline.stages) it checks the prerequisite, decides whether the
stage is complete (stats entry, output folder, completion marker and a matching fingerprint),
clears a stale result, times the stage, hands it a StageContext (Spark session, folders, the
decision writer), checks the accounting identity, writes the completion marker and the stats.json
entry (in that order: a kill anywhere leaves the stage incomplete, never half-complete), and
invalidates every later stage when it reran.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline import stages as registry
from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.faults import kill_point
from pipeline.files import write_text_atomically
from pipeline.fingerprint import changed_settings, fingerprint, stage_settings
from pipeline.run_dir import RunDir
from pipeline.stages import Stage
from pipeline.stats import record_stage
from pipeline.storage import (
    StoragePath,
    as_path,
    make_dirs,
    refresh,
    remove_file,
    remove_tree,
    spark_url,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from pipeline.spark.decisions import Decisions

log = logging.getLogger(__name__)

# Written into a stage's output folder: STARTED when the stage begins (so a rerun after a kill
# knows the partial work is its own), COMPLETE when its output is whole (before stats.json).
STARTED_MARKER = "_STARTED"
COMPLETE_MARKER = "_COMPLETE"


@dataclass(frozen=True)
class StageResult:
    """What a stage did: rows in, rows kept, ledger rows per reason, figures for stats.json."""

    rows_in: int
    rows_kept: int
    dropped: dict[str, int]
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageContext:
    """What the runner hands a stage: its config, folders, Spark session and decision writer."""

    stage: Stage
    run: RunDir
    config: Config
    input_path: str | None = None
    _spark: Any = None
    _progress: Any = None

    @property
    def output(self) -> StoragePath:
        return self.run.root / self.stage.output

    @property
    def work(self) -> StoragePath:
        """Scratch space of this stage (removed when it completes)."""
        return self.run.work / self.stage.name

    @property
    def ledger(self) -> StoragePath:
        return self.run.ledger_for(self.stage.name)

    def folder(self, stage: str) -> StoragePath:
        """The output folder of another stage of the run."""
        return self.run.root / registry.get_stage(stage).output

    def stats_entry(self, stage: str) -> dict[str, Any]:
        """The stats.json entry of a complete earlier stage."""
        return self.run.stats()["stages"][stage]

    @property
    def spark(self) -> SparkSession:
        """The Spark session (started on first use), with a progress bar for this stage."""
        if self._spark is None:
            from pipeline.spark.progress import SparkProgress
            from pipeline.spark.session import get_spark

            self._spark = get_spark(self.config.spark)
            self._progress = SparkProgress(self._spark, self.stage.name)
            self._progress.start()
        return self._spark

    def read(self, stage: str) -> DataFrame:
        """Another stage's output folder as a DataFrame."""
        return self.spark.read.parquet(spark_url(self.folder(stage)))

    def write_decisions(
        self,
        decisions: Decisions,
        kept_columns: Sequence[str],
        rows_in: int | None = None,
        figures: dict[str, Any] | None = None,
        dropped: tuple[StoragePath, Sequence[Any]] | None = None,
    ) -> StageResult:
        """Write a plan's decisions (null `reason` = kept): kept rows to the output folder, the
        others to the ledger. `rows_in` defaults to the rows of the decisions; `figures` add
        to the plan's; `dropped` (folder, columns) also writes those columns of the dropped
        rows there."""
        from pipeline.spark.decisions import write_decisions

        written = write_decisions(
            self.spark,
            decisions.frame,
            self.run,
            self.stage.name,
            self.output,
            kept_columns,
            dropped=dropped,
        )
        return StageResult(
            written.rows_in if rows_in is None else rows_in,
            written.rows_kept,
            written.dropped,
            {**decisions.figures, **(figures or {})},
        )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


@dataclass(frozen=True)
class StageState:
    """Where a stage stands: complete, stale, missing output or not run, and why."""

    status: str
    why: str = ""
    entry: dict[str, Any] | None = None


def _read_marker(folder: StoragePath, name: str) -> dict[str, Any] | None:
    refresh(folder / name)  # another process (a killed run, a task) may have written it
    try:
        return json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return None


def _settings_and_fingerprint(
    run: RunDir, stage: Stage, config: Config, input_path: str | None
) -> tuple[dict[str, Any], str]:
    entries = run.stats().get("stages", {})
    upstream = entries.get(stage.needs, {}).get("fingerprint") if stage.needs else None
    if stage.needs is None and input_path is None:
        # `curate status` has no --input: judge ingest by the input it ran on.
        input_path = entries.get(stage.name, {}).get("settings", {}).get("input")
    settings = stage_settings(stage, config, input_path)
    return settings, fingerprint(settings, upstream)


def stage_state(
    run: RunDir, stage: Stage, config: Config, input_path: str | None = None
) -> StageState:
    """Complete only when the stats entry, the output folder, its completion marker and the
    fingerprint of the current settings (and of the recorded stage before it) all agree."""
    entry = run.stats().get("stages", {}).get(stage.name)
    if entry is None:
        return StageState("not run")
    output = run.root / stage.output
    marker = _read_marker(output, COMPLETE_MARKER)
    if not output.is_dir() or marker is None:
        return StageState("missing output", f"{output} or its {COMPLETE_MARKER} marker", entry)
    if entry.get("rows_dropped") and not run.ledger_for(stage.name).is_dir():
        return StageState("missing output", f"{run.ledger_for(stage.name)}", entry)
    settings, expected = _settings_and_fingerprint(run, stage, config, input_path)
    recorded = entry.get("fingerprint")
    if recorded == expected and marker.get("fingerprint") == recorded:
        return StageState("complete", "", entry)
    changes = changed_settings(entry.get("settings"), settings)
    if recorded != expected and not [c for c in changes if c != "no settings recorded"]:
        return StageState("stale", f"{stage.needs} was redone since", entry)
    return StageState("stale", "; ".join(changes) or "marker differs", entry)


def _check_prerequisite(run: RunDir, stage: Stage) -> None:
    if stage.needs is None:
        return
    entry = run.stats().get("stages", {}).get(stage.needs)
    needed = registry.get_stage(stage.needs)
    marker = _read_marker(run.root / needed.output, COMPLETE_MARKER)
    if entry is None or marker is None or marker.get("fingerprint") != entry.get("fingerprint"):
        raise InputError(
            f"run directory {run.root}: no complete {stage.needs} stage"
            f" (run `curate {stage.needs}` first)"
        )


def _prepare_output(ctx: StageContext, fp: str, resume: bool) -> None:
    """Keep a killed run's partial work of the same fingerprint (it resumes); otherwise start
    from an empty output folder and ledger."""
    marker = _read_marker(ctx.output, STARTED_MARKER)
    if not (resume and marker is not None and marker.get("fingerprint") == fp):
        for folder in (ctx.output, ctx.ledger, ctx.work):
            remove_tree(folder)
    make_dirs(ctx.output)
    write_text_atomically(ctx.output / STARTED_MARKER, json.dumps({"fingerprint": fp}) + "\n")


def _function(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def preflight(config: Config, names: Sequence[str], input_path: str | None = None) -> None:
    """Check what every stage in `names` will need before the first one starts: a run must not
    ingest and download for an hour and then find that the CLIP weights cannot load."""
    for name in names:
        stage = registry.get_stage(name)
        if stage.preflight is not None:
            _function(stage.preflight)(config, input_path if stage.needs is None else None)


def _warn_stale_upstream(run: RunDir, stage: Stage, config: Config) -> None:
    """Say so when an earlier stage would rerun under these settings: a single-stage command
    uses the earlier outputs as they are (`curate run` reruns them)."""
    for earlier in registry.STAGES:
        if earlier.name == stage.name:
            return
        state = stage_state(run, earlier, config)
        if state.status == "stale":
            log.warning(
                "%s: %s is stale under these settings (%s); its output is used as it is:"
                " run `curate %s` (or `curate run`) to apply them",
                stage.name,
                earlier.name,
                state.why,
                earlier.name,
            )
            return


def run_stage(
    name: str,
    run_dir: str | os.PathLike[str],
    config: Config,
    *,
    input_path: str | None = None,
    force: bool = False,
    checked: bool = False,
) -> dict[str, Any]:
    """Run stage `name` unless it is complete with these settings; returns its stats entry.

    A rerun (stale, missing output, or `force`) invalidates every later stage. `checked`: the
    caller ran this stage's preflight already.
    """
    stage = registry.get_stage(name)
    run = RunDir(as_path(run_dir))
    if stage.needs is None and input_path is None:
        raise InputError(f"{name}: needs --input")
    state = stage_state(run, stage, config, input_path)
    if state.status == "complete" and not force:
        _warn_stale_upstream(run, stage, config)
        log.info("%s: complete in %s, nothing to do", name, run.root)
        return state.entry or {}
    _check_prerequisite(run, stage)
    if not checked:
        preflight(config, [name], input_path)
    _warn_stale_upstream(run, stage, config)
    redo = [name, *(s.name for s in registry.later_stages(name))]
    if force:
        log.info("%s: --force; running %s", name, ", ".join(redo))
    elif state.status == "stale":
        log.info("%s: settings changed (%s); rerunning %s", name, state.why, ", ".join(redo))
    elif state.status == "missing output":
        log.info("%s: output missing (%s); rerunning %s", name, state.why, ", ".join(redo))
    run.forget(tuple(redo))
    for later in registry.later_stages(name):
        remove_file(run.root / later.output / COMPLETE_MARKER)
    settings, fp = _settings_and_fingerprint(run, stage, config, input_path)
    ctx = StageContext(stage, run, config, input_path)
    remove_file(ctx.output / COMPLETE_MARKER)
    _prepare_output(ctx, fp, resume=state.status == "not run" and not force)
    started = time.monotonic()
    log.info("%s: running in %s", name, run.root)
    kill_point(name, "started")
    try:
        result = _function(stage.entry)(ctx)
    finally:
        ctx.close()
    kill_point(name, "output_written")
    write_text_atomically(ctx.output / COMPLETE_MARKER, json.dumps({"fingerprint": fp}) + "\n")
    remove_file(ctx.output / STARTED_MARKER)
    kill_point(name, "marked")
    entry = record_stage(
        run,
        name,
        result.rows_in,
        result.rows_kept,
        result.dropped,
        time.monotonic() - started,
        {**result.figures, "settings": settings, "fingerprint": fp},
    )
    remove_tree(ctx.work)
    log.info(
        "%s: %d in, %d kept, %d dropped (%.1f s)",
        name,
        result.rows_in,
        result.rows_kept,
        result.rows_in - result.rows_kept,
        entry["seconds"],
    )
    return entry


def run_stages(
    run_dir: str | os.PathLike[str],
    config: Config,
    input_path: str | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run `names` (default: every stage) in pipeline order; returns stats.json's content."""
    wanted = [s.name for s in registry.STAGES if names is None or s.name in names]
    preflight(config, wanted, input_path)
    for name in wanted:
        run_stage(
            name,
            run_dir,
            config,
            input_path=input_path if registry.get_stage(name).needs is None else None,
            checked=True,
        )
    return RunDir(as_path(run_dir)).stats()


def stage_states(run_dir: str | os.PathLike[str], config: Config) -> list[tuple[str, StageState]]:
    """(stage, state) for every stage of the registry: complete / stale (which setting changed)
    / missing output / not run. A stage after one that would rerun is stale too."""
    run = RunDir(as_path(run_dir))
    states = []
    upstream: str | None = None
    for stage in registry.STAGES:
        state = stage_state(run, stage, config)
        if state.status == "complete" and upstream is not None:
            state = StageState("stale", f"{upstream} would rerun", state.entry)
        if state.status != "complete" and upstream is None:
            upstream = stage.name
        states.append((stage.name, state))
    return states


def status_lines(run_dir: str | os.PathLike[str], config: Config) -> list[str]:
    """`curate status`: one line per stage, with rows in and kept and why it is not complete."""
    lines = [f"{'stage':<10} {'status':<15} {'rows in':>10} {'kept':>10}  why"]
    for name, state in stage_states(run_dir, config):
        entry = state.entry or {}
        rows_in, kept = entry.get("rows_in", ""), entry.get("rows_kept", "")
        lines.append(
            f"{name:<10} {state.status:<15} {rows_in!s:>10} {kept!s:>10}  {state.why}".rstrip()
        )
    return lines
