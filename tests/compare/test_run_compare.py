"""`curate compare` with compare.seeds: K trainings per selection (train.seed, train.seed + 1,
...), means and spreads over them, and each selection's paired difference to the baseline with
its interval and its conclusion line; a baseline that names no selection is refused."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from pipeline.compare.intervals import paired_difference
from pipeline.compare.run_compare import run_compare, table_lines
from pipeline.compare.selections import parse_selections
from pipeline.config import load_config
from pipeline.errors import InputError
from tests.conftest import copy_run

TRAIN = ["train.steps=20", "train.batch_size=32", "train.workers=0"]


@pytest.fixture(scope="module")
def compared(demo_run, tmp_path_factory):
    run = copy_run(demo_run.root, tmp_path_factory.mktemp("compare") / "run")
    config = load_config(
        None, [*TRAIN, f"train.eval_data={run.root / 'web' / 'eval'}", "compare.seeds=2"]
    )
    selections = parse_selections(["raw=raw", "curated=run"])
    return run, config, run_compare(run.root, config, selections)


def test_each_selection_is_trained_once_per_seed(compared):
    run, _, comparison = compared
    assert comparison["seeds"] == 2 and comparison["baseline"] == "raw"
    for name in ("raw", "curated"):
        entry = comparison["runs"][name]
        assert entry["seeds"] == [0, 1]
        folders = [run.root / "train" / name, run.root / "train" / name / "seeds" / "1"]
        for seed, folder in enumerate(folders):
            assert (folder / "checkpoints" / "latest.pt").is_file()
            assert yaml.safe_load((folder / "config.yaml").read_text())["train"]["seed"] == seed
        by_seed = entry["zeroshot_top1_by_seed"]
        assert len(by_seed) == 2 and entry["zeroshot_top1"] == pytest.approx(np.mean(by_seed))
        assert entry["zeroshot_top1_sd"] == pytest.approx(np.std(by_seed, ddof=1))


def test_the_difference_to_the_baseline_is_paired_by_seed_and_image(compared):
    comparison = compared[2]
    runs = comparison["runs"]
    d = comparison["differences"]["curated"]["top1"]
    assert (d["seeds"], d["images"]) == (2, 72)
    # The mean difference is the difference of the means over seeds.
    expected = np.mean(runs["curated"]["zeroshot_top1_by_seed"]) - np.mean(
        runs["raw"]["zeroshot_top1_by_seed"]
    )
    # The per-seed top-1 are float32 figures: equal to the hits' mean to about 1e-7, not 1e-6 relative.
    assert d["mean"] == pytest.approx(expected, abs=1e-6)
    assert d["low"] <= d["mean"] <= d["high"]
    assert d["significant"] == (d["low"] > 0 or d["high"] < 0)
    assert comparison["differences"]["curated"]["top1_tail"]["images"] == 36  # 18 classes x 2
    assert [line.split(":")[0] for line in comparison["conclusions"]] == [
        "curated vs raw, top-1",
        "curated vs raw, tail top-1",
        "curated vs raw, image->text R@1",
        "curated vs raw, text->image R@1",
    ]
    lines = table_lines(comparison)
    assert "(mean +- sd over 2 seeds)" in lines and lines[-4:] == comparison["conclusions"]


def test_retrieval_on_the_eval_captions_is_compared_per_pair(compared):
    comparison = compared[2]
    for name in ("raw", "curated"):
        r = comparison["runs"][name]
        assert r["eval_gallery_size"] == 36
        assert 0 <= r["eval_i2t_r1"] <= r["eval_i2t_r5"] <= 1 and r["eval_t2i_r1_sd"] >= 0
    d = comparison["differences"]["curated"]
    assert {k: (v["label"], v["images"], v["seeds"]) for k, v in d.items()} == {
        "top1": ("top-1", 72, 2),
        "top1_tail": ("tail top-1", 36, 2),
        "i2t_r1": ("image->text R@1", 72, 2),
        "t2i_r1": ("text->image R@1", 72, 2),
    }
    header = next(line for line in table_lines(comparison) if line.startswith("trained on"))
    assert header.split()[-2:] == ["i2t@1", "t2i@1"]


def test_hits_resampled_again_give_the_recorded_interval(compared):
    """The interval is a function of the stored per-image results alone (fixed bootstrap seed)."""
    run, _, comparison = compared

    def hits(name):
        folders = [run.root / "train" / name, run.root / "train" / name / "seeds" / "1"]
        rows = []
        for folder in folders:
            last = sorted((folder / "metrics").glob("step_*.json"))[-1]
            rows.append(json.loads(last.read_text())["zeroshot_hits"])
        return np.array(rows)

    again = paired_difference(hits("curated"), hits("raw"), 2000, 0.95)
    assert again.as_dict() | {"label": "top-1"} == comparison["differences"]["curated"]["top1"]


def test_a_baseline_that_names_no_selection_is_refused(compared):
    run, config, _ = compared
    bad = config.replace(compare=type(config.compare)(seeds=2, baseline="nope"))
    with pytest.raises(InputError, match=r"compare\.baseline: 'nope' is not one of"):
        run_compare(run.root, bad, parse_selections(["raw=raw", "curated=run"]))


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs 2 cores and CPU affinity",
)
def test_trainings_at_once_give_what_one_after_another_gives(demo_run, tmp_path_factory):
    """compare.parallel=2 on 2 cores: two spawned trainings of one torch thread each, the same
    models, bit for bit, as one after another with one thread."""
    import torch

    selections = parse_selections(["raw=raw", "curated=run"])
    results = {}
    affinity, threads = os.sched_getaffinity(0), torch.get_num_threads()
    os.sched_setaffinity(0, sorted(affinity)[:2])  # the spawned trainings inherit 2 cores
    try:
        for parallel in (1, 2):
            root = tmp_path_factory.mktemp(f"parallel{parallel}") / "run"
            run = copy_run(demo_run.root, root)
            config = load_config(
                None,
                [
                    *TRAIN,
                    f"train.eval_data={run.root / 'web' / 'eval'}",
                    "compare.seeds=2",
                    f"compare.parallel={parallel}",
                ],
            )
            torch.set_num_threads(1)
            results[parallel] = run_compare(run.root, config, selections)
    finally:
        os.sched_setaffinity(0, affinity)
        torch.set_num_threads(threads)
    one, two = results[1], results[2]
    for name in ("raw", "curated"):
        assert two["runs"][name]["seeds"] == [0, 1]
        for key in ("zeroshot_top1_by_seed", "zeroshot_top1_tail_by_seed", "final_loss"):
            assert two["runs"][name][key] == one["runs"][name][key]
    assert two["differences"] == one["differences"]
    assert two["conclusions"] == one["conclusions"]


def test_parallel_below_one_is_refused():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="parallel >= 1"):
        load_config(None, ["compare.parallel=0"])


def test_a_bare_point_estimate_is_printed_only_without_intervals(compared):
    _, _, comparison = compared
    with_intervals = table_lines(comparison)
    assert not any(line.startswith("curated - raw top-1") for line in with_intervals)
    margin = comparison["top1_margin"] * 100
    bare = table_lines(comparison | {"conclusions": []})
    assert bare[-1] == f"curated - raw top-1: {margin:+.1f} points"
