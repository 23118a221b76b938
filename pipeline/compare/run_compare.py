"""Train the same model, same steps and seeds, on each selection of a run and evaluate each
zero-shot: DataComp's protocol (a fixed training budget, the data is the only variable), with the
tail classes reported on their own (MetaCLIP's point: balancing helps the rare concepts). With
compare.seeds > 1 each selection is trained once per seed, and each is measured against the
baseline by its paired difference with a bootstrap interval (pipeline/compare/intervals.py).

Results go to `<run>/comparison.json` (the report's training comparison) and a text table.
A selection's model is retrained only when its shards changed (the fingerprint of the stage
that made them is recorded beside the model).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.compare.child_run import child_run
from pipeline.compare.intervals import describe, paired_difference
from pipeline.compare.selections import RAW, RUN, Selection, selection_config
from pipeline.compare.tail_classes import caption_counts, class_counts, tail_classes
from pipeline.compare.trainings import Training, run_trainings
from pipeline.config import Config
from pipeline.entry_match import entry_match_mode
from pipeline.errors import InputError
from pipeline.files import write_text_atomically
from pipeline.run_dir import RunDir
from pipeline.runner import run_stages

log = logging.getLogger(__name__)
COMPARISON = "comparison.json"
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


def seed_dir(run: RunDir, name: str, index: int, seed: int) -> Path:
    """Where selection `name`'s model of the index-th seed lives: train/<name> for the first
    (as a one-seed comparison always had it), train/<name>/seeds/<seed> for the others (thrown
    away with the first when the selection's shards change)."""
    folder = train_dir(run, name)
    return folder if index == 0 else folder / "seeds" / str(seed)


def train_selection(
    run: RunDir,
    name: str,
    shards: Path,
    source: str,
    config: Config,
    folder: Path | None = None,
) -> dict[str, Any]:
    """Train (or resume, or find finished) the model of selection `name` on `shards` in
    `folder` (default train/<name>); a model trained on other shards than these is thrown away
    first."""
    training = Training(name, shards, source, config, folder or train_dir(run, name))
    return run_trainings([training], 1)[0]


def _tail_top1(per_class: dict[str, float] | None, tail: list[str]) -> float | None:
    """Mean top-1 over the tail classes (each has the same number of eval images in a balanced
    eval set; with unequal counts this is the mean of per-class accuracies)."""
    if not per_class or not tail:
        return None
    values = [per_class[c] for c in tail if c in per_class]
    return sum(values) / len(values) if values else None


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known and len(known) == len(values) else None


def _sd(values: list[float | None]) -> float | None:
    """Sample standard deviation across seeds; None for one seed."""
    known = [v for v in values if v is not None]
    return float(np.std(known, ddof=1)) if len(known) > 1 and len(known) == len(values) else None


def _retrieval_summary(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread over seeds of recall@1/5 on the eval set's captions, where it has them."""
    out: dict[str, Any] = {}
    for key in ("eval_i2t_r1", "eval_i2t_r5", "eval_t2i_r1", "eval_t2i_r5"):
        values = [m.get(key) for m in metrics]
        if all(v is not None for v in values):
            out[key] = _mean(values)
            out[f"{key}_sd"] = _sd(values)
    if out:
        out["eval_gallery_size"] = metrics[0].get("eval_gallery_size")
    return out


def _seed_trainings(
    run: RunDir, selection: Selection, shards: Path, source: str, config: Config
) -> list[Training]:
    """The selection's trainings, one per seed of compare.seeds (train.seed, train.seed + 1,
    ...)."""
    trainings = []
    for index in range(config.compare.seeds):
        seed = config.train.seed + index
        seeded = config.replace(train=dataclasses.replace(config.train, seed=seed))
        folder = seed_dir(run, selection.name, index, seed)
        trainings.append(Training(selection.name, shards, source, seeded, folder))
    return trainings


# The per-image results a comparison pairs (metrics key -> the name its difference is stored
# under): zero-shot top-1, and recall@1 both ways on the eval set's own captions where it has
# them (DataComp evaluates retrieval next to classification).
PAIRED_RESULTS = {
    "zeroshot_hits": "top1",
    "eval_i2t_hits": "i2t_r1",
    "eval_t2i_hits": "t2i_r1",
}
# How a conclusion line names each difference.
METRIC_LABELS = {
    "top1": "top-1",
    "top1_tail": "tail top-1",
    "i2t_r1": "image->text R@1",
    "t2i_r1": "text->image R@1",
}


def _differences(
    hits: dict[str, dict[str, np.ndarray]], baseline: str, tail_images: np.ndarray, config: Config
) -> tuple[dict[str, Any], list[str]]:
    """Each selection against the baseline on every paired result (top-1 also on the tail
    classes' images alone): the paired differences with their intervals, and the lines that say
    what they support. hits: selection -> difference name -> (seeds, images) array."""
    out: dict[str, Any] = {}
    lines: list[str] = []
    cfg = config.compare
    base = hits[baseline]
    for name, results in hits.items():
        if name == baseline:
            continue
        wanted = [(m, m, slice(None)) for m in results if m in base]
        if "top1" in results and "top1" in base:
            wanted.insert(1, ("top1_tail", "top1", tail_images))
        entry = {}
        for metric, source, columns in wanted:
            d = paired_difference(
                results[source][:, columns], base[source][:, columns], cfg.bootstrap, cfg.confidence
            )
            entry[metric] = d.as_dict() | {"label": METRIC_LABELS[metric]}
            lines.append(describe(name, baseline, METRIC_LABELS[metric], d))
        out[name] = entry
    return out, lines


def _paired_hits(name: str, metrics: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The selection's per-image results, one row a seed, for each result every seed has."""
    found = {}
    for key, metric in PAIRED_RESULTS.items():
        if all(key in m for m in metrics):
            found[metric] = np.array([m[key] for m in metrics])
    if "top1" not in found:  # a model evaluated by a version that kept no per-image results
        log.warning("compare: %s has no per-image results; no interval for it", name)
    return found


def run_compare(run_dir: Path | str, config: Config, selections: list[Selection]) -> dict[str, Any]:
    """Train and evaluate every selection (compare.seeds times each); write and return
    comparison.json's content, with each selection's paired difference to the baseline."""
    from pipeline.train.evaluate import load_zero_shot_set

    if not config.train.eval_data:
        raise InputError("compare: needs train.eval_data (a zero-shot set: eval.parquet + images)")
    baseline = config.compare.baseline or selections[0].name
    if baseline not in {s.name for s in selections}:
        raise InputError(
            f"compare.baseline: {baseline!r} is not one of the selections "
            f"({', '.join(s.name for s in selections)})"
        )
    run = RunDir(Path(run_dir).resolve())
    zero_shot = load_zero_shot_set(config.train.eval_data)
    classes = zero_shot.classes
    mode = entry_match_mode(config, "compare")
    counts = class_counts(run, classes, mode)
    tail = tail_classes(counts)
    tail_images = np.array([label in tail for label in zero_shot.labels])
    runs: dict[str, dict[str, Any]] = {}
    hits: dict[str, dict[str, np.ndarray]] = {}
    eval_images = None
    # Every selection's shards first (Spark, in this process), then every training, so that
    # compare.parallel trainings can run at once across selections.
    planned, trainings = [], []
    for selection in selections:
        shards, pairs, source = selection_shards(run, selection, config)
        seeds = _seed_trainings(run, selection, shards, source, config)
        planned.append((selection, shards, pairs, seeds))
        trainings += seeds
    done = iter(run_trainings(trainings, config.compare.parallel))
    for selection, shards, pairs, seeds in planned:
        made_by = {RAW: None, RUN: run.root}.get(
            selection.spec, run.root / "compare" / selection.name
        )
        results = [next(done) for _ in seeds]
        metrics = [r.get("metrics", {}) for r in results]
        eval_images = metrics[0].get("zeroshot_images", eval_images)
        hits[selection.name] = _paired_hits(selection.name, metrics)
        top1 = [m.get("zeroshot_top1") for m in metrics]
        tail_top1 = [_tail_top1(m.get("zeroshot_top1_per_class"), tail) for m in metrics]
        # What the selection trains on: the share of its captions that name a tail class.
        named = caption_counts(shards, classes, mode)
        total = sum(named.values())
        runs[selection.name] = {
            "selection": selection.spec,
            "train_dir": str(train_dir(run, selection.name)),
            "training_samples": pairs,
            "steps": results[0]["step"],
            "seeds": [config.train.seed + i for i in range(len(results))],
            "final_loss": _mean([r.get("loss") for r in results]),
            "zeroshot_top1": _mean(top1),
            "zeroshot_top1_sd": _sd(top1),
            "zeroshot_top1_by_seed": top1,
            "zeroshot_top1_tail": _mean(tail_top1),
            "zeroshot_top1_tail_sd": _sd(tail_top1),
            "zeroshot_top1_tail_by_seed": tail_top1,
            "zeroshot_top5": _mean([m.get("zeroshot_top5") for m in metrics]),
            **_retrieval_summary(metrics),
            "tail_caption_share": sum(named[c] for c in tail) / total if total else None,
            "dropped": {} if made_by is None else _selection_drops(RunDir(Path(made_by))),
        }
    differences, conclusions = (
        _differences(hits, baseline, tail_images, config) if hits.get(baseline) else ({}, [])
    )
    top1 = {n: r["zeroshot_top1"] for n, r in runs.items()}
    comparison = {
        "model": config.train.model,
        "steps": config.train.steps,
        "batch_size": config.train.batch_size,
        "seed": config.train.seed,
        "seeds": config.compare.seeds,
        "eval_images": eval_images,
        "eval_classes": len(classes),
        "tail_classes": tail,
        "class_caption_counts": counts,
        "runs": runs,
        "baseline": baseline,
        "differences": differences,
        "conclusions": conclusions,
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
    class, zero-shot top-1, top-1 on the tail classes, top-5, and recall@1 both ways on the
    eval set's captions where it has them; mean +- sd with more than one seed."""
    runs = comparison["runs"]
    retrieval = all("eval_i2t_r1" in r for r in runs.values()) and bool(runs)
    seeds = comparison.get("seeds", 1)
    width = 12 if seeds > 1 else 7
    lines = [
        f"zero-shot on {comparison['eval_images']} clean images, {comparison['eval_classes']}"
        f" classes, tail = the {len(comparison['tail_classes'])} rarest in the pool's captions"
        f" ({comparison['model']}, {comparison['steps']} steps x {comparison['batch_size']}):",
    ]
    if retrieval:
        gallery = next(iter(runs.values())).get("eval_gallery_size")
        lines.append(
            f"retrieval: recall@1 between those images and their captions, each among the"
            f" {gallery} pairs of its gallery (one picture a class)"
        )
    header = (
        f"{'trained on':<14} {'selection':<28} {'pairs':>7} {'tail %':>7} {'top-1':>{width}}"
        f" {'tail':>{width}} {'top-5':>7}"
    )
    lines.append(header + (f" {'i2t@1':>{width}} {'t2i@1':>{width}}" if retrieval else ""))
    for name, r in runs.items():
        top1 = _pct(r["zeroshot_top1"], r.get("zeroshot_top1_sd"))
        tail = _pct(r.get("zeroshot_top1_tail"), r.get("zeroshot_top1_tail_sd"))
        line = (
            f"{name:<14} {r.get('selection', ''):<28} {r['training_samples']:>7}"
            f" {_pct(r.get('tail_caption_share')):>7} {top1:>{width}}"
            f" {tail:>{width}} {_pct(r['zeroshot_top5']):>7}"
        )
        if retrieval:
            i2t = _pct(r["eval_i2t_r1"], r.get("eval_i2t_r1_sd"))
            t2i = _pct(r["eval_t2i_r1"], r.get("eval_t2i_r1_sd"))
            line += f" {i2t:>{width}} {t2i:>{width}}"
        lines.append(line)
    if seeds > 1:
        lines.append(f"(mean +- sd over {seeds} seeds)")
    margin = comparison.get("top1_margin")
    conclusions = comparison.get("conclusions", [])
    if margin is not None and not conclusions:
        # Only without per-image results (an older model's metrics): the lines below otherwise
        # say it with its interval, and a bare point estimate is not a conclusion.
        lines.append(f"curated - raw top-1: {margin * 100:+.1f} points")
    lines += conclusions
    return lines


def _pct(value: float | None, sd: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}%" if sd is None else f"{value * 100:.1f}+-{sd * 100:.1f}%"
