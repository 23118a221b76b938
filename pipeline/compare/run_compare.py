"""Train the same model, same steps and seed, on each selection of a run and evaluate each
zero-shot: DataComp's protocol (a fixed training budget, the data is the only variable), with the
tail classes reported on their own (MetaCLIP's point: balancing helps the rare concepts).

Results go to `<run>/comparison.json` (the report's training comparison) and a text table.
A selection's model is retrained only when its shards changed (the fingerprint of the stage
that made them is recorded beside the model).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from pipeline.compare.child_run import child_run
from pipeline.compare.selections import RAW, RUN, Selection, selection_config
from pipeline.compare.tail_classes import caption_counts, class_counts, tail_classes
from pipeline.config import Config
from pipeline.entry_match import entry_match_mode
from pipeline.errors import InputError
from pipeline.files import write_text_atomically
from pipeline.run_dir import RunDir
from pipeline.runner import run_stages

log = logging.getLogger(__name__)
COMPARISON = "comparison.json"
SOURCE = "source.json"
# The stages a selection reruns in its own run directory.
SELECTION_STAGES = ("select", "balance", "shard")


def train_dir(run: RunDir, name: str) -> Path:
    return run.root / "train" / name


def _selection_drops(run: RunDir) -> dict[str, int]:
    """What select and balance dropped in `run`, per reason code."""
    stages = run.stats().get("stages", {})
    drops: dict[str, int] = {}
    for name in ("select", "balance"):
        drops |= stages.get(name, {}).get("dropped_by_reason", {})
    return drops


def selection_shards(run: RunDir, selection: Selection, config: Config) -> tuple[Path, int, str]:
    """(shard folder, pairs in it, fingerprint of the stage that wrote it) for a selection."""
    stages = run.stats().get("stages", {})
    if selection.spec == RAW:
        entry = stages.get("download")
        if entry is None:
            raise InputError(f"compare: {run.root} has no complete download stage")
        return run.downloads, entry["rows_kept"], entry["fingerprint"]
    if selection.spec == RUN:
        entry = stages.get("shard")
        if entry is None:
            raise InputError(f"compare: {run.root} has no complete shard stage (selection run)")
        return run.shards, entry["rows_kept"], entry["fingerprint"]
    child = child_run(run, selection.name)
    run_stages(child.root, selection_config(config, selection), names=list(SELECTION_STAGES))
    entry = child.stats()["stages"]["shard"]
    return child.shards, entry["rows_kept"], entry["fingerprint"]


def train_selection(
    run: RunDir, name: str, shards: Path, source: str, config: Config
) -> dict[str, Any]:
    """Train (or resume, or find finished) the model of selection `name` on `shards`; a model
    trained on other shards than these is thrown away first."""
    from pipeline.train.run import run_train

    folder = train_dir(run, name)
    recorded = folder / SOURCE
    wanted = {"shards": str(shards), "fingerprint": source}
    if folder.exists() and (not recorded.is_file() or json.loads(recorded.read_text()) != wanted):
        log.info("compare: %s's shards changed since its model was trained; retraining", name)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(recorded, json.dumps(wanted) + "\n")
    log.info("compare: training %s on %s (%d steps)", name, shards, config.train.steps)
    return run_train(shards, folder, config)


def _tail_top1(per_class: dict[str, float] | None, tail: list[str]) -> float | None:
    """Mean top-1 over the tail classes (each has the same number of eval images in a balanced
    eval set; with unequal counts this is the mean of per-class accuracies)."""
    if not per_class or not tail:
        return None
    values = [per_class[c] for c in tail if c in per_class]
    return sum(values) / len(values) if values else None


def run_compare(run_dir: Path | str, config: Config, selections: list[Selection]) -> dict[str, Any]:
    """Train and evaluate every selection; write and return comparison.json's content."""
    from pipeline.train.evaluate import load_zero_shot_set

    if not config.train.eval_data:
        raise InputError("compare: needs train.eval_data (a zero-shot set: eval.parquet + images)")
    run = RunDir(Path(run_dir).resolve())
    classes = load_zero_shot_set(config.train.eval_data).classes
    mode = entry_match_mode(config, "compare")
    counts = class_counts(run, classes, mode)
    tail = tail_classes(counts)
    runs: dict[str, dict[str, Any]] = {}
    eval_images = None
    for selection in selections:
        shards, pairs, source = selection_shards(run, selection, config)
        made_by = {RAW: None, RUN: run.root}.get(
            selection.spec, run.root / "compare" / selection.name
        )
        result = train_selection(run, selection.name, shards, source, config)
        metrics = result.get("metrics", {})
        eval_images = metrics.get("zeroshot_images", eval_images)
        # What the selection trains on: the share of its captions that name a tail class.
        named = caption_counts(shards, classes, mode)
        total = sum(named.values())
        runs[selection.name] = {
            "selection": selection.spec,
            "train_dir": str(train_dir(run, selection.name)),
            "training_samples": pairs,
            "steps": result["step"],
            "final_loss": result.get("loss"),
            "zeroshot_top1": metrics.get("zeroshot_top1"),
            "zeroshot_top1_tail": _tail_top1(metrics.get("zeroshot_top1_per_class"), tail),
            "zeroshot_top5": metrics.get("zeroshot_top5"),
            "tail_caption_share": sum(named[c] for c in tail) / total if total else None,
            "dropped": {} if made_by is None else _selection_drops(RunDir(Path(made_by))),
        }
    top1 = {n: r["zeroshot_top1"] for n, r in runs.items()}
    comparison = {
        "model": config.train.model,
        "steps": config.train.steps,
        "batch_size": config.train.batch_size,
        "seed": config.train.seed,
        "eval_images": eval_images,
        "eval_classes": len(classes),
        "tail_classes": tail,
        "class_caption_counts": counts,
        "runs": runs,
        "top1_margin": (
            top1["curated"] - top1["raw"]
            if top1.get("curated") is not None and top1.get("raw") is not None
            else None
        ),
    }
    write_text_atomically(run.root / COMPARISON, json.dumps(comparison, indent=2) + "\n")
    return comparison


def table_lines(comparison: dict[str, Any]) -> list[str]:
    """The DataComp-style table: selection, pairs, the share of its captions naming a tail
    class, zero-shot top-1, top-1 on the tail classes, top-5."""
    lines = [
        f"zero-shot on {comparison['eval_images']} clean images, {comparison['eval_classes']}"
        f" classes, tail = the {len(comparison['tail_classes'])} rarest in the pool's captions"
        f" ({comparison['model']}, {comparison['steps']} steps x {comparison['batch_size']}):",
        f"{'trained on':<14} {'selection':<28} {'pairs':>7} {'tail %':>7} {'top-1':>7}"
        f" {'tail':>7} {'top-5':>7}",
    ]
    for name, r in comparison["runs"].items():
        lines.append(
            f"{name:<14} {r.get('selection', ''):<28} {r['training_samples']:>7}"
            f" {_pct(r.get('tail_caption_share')):>7} {_pct(r['zeroshot_top1']):>7}"
            f" {_pct(r.get('zeroshot_top1_tail')):>7} {_pct(r['zeroshot_top5']):>7}"
        )
    margin = comparison.get("top1_margin")
    if margin is not None:
        lines.append(f"curated - raw top-1: {margin * 100:+.1f} points")
    return lines


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"
