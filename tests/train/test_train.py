"""Training the tiny ViT on synthetic-web shards: the loss falls, zero-shot accuracy on held-out
pictures beats chance by far, metrics and checkpoints follow their contract."""

from __future__ import annotations

import json
import logging
import shutil
import statistics

import open_clip
import pytest
import torch

from pipeline.clip.models import register_project_configs
from pipeline.demo.synthetic_web import CLASSES, generate_eval_set
from pipeline.train.run import run_train
from tests.train.helpers import train_config

log = logging.getLogger(__name__)
STEPS = 200


@pytest.fixture(scope="module")
def trained(shards, eval_set, tmp_path_factory):
    """(output folder, summary) of a 200-step run at batch 16 with one loader worker."""
    torch.set_num_threads(1)
    output = tmp_path_factory.mktemp("trained")
    config = train_config(
        f"train.steps={STEPS}",
        "train.warmup_steps=20",
        "train.workers=1",
        f"train.eval_data={eval_set}",
        "train.holdout_shards=1",
        "train.eval_pairs=200",
        "train.eval_every=100",
        "train.checkpoint_every=100",
    )
    return output, run_train(shards, output, config)


def _losses(output):
    return [
        json.loads(line)["loss"] for line in (output / "train_log.jsonl").read_text().splitlines()
    ]


def test_loss_falls_and_zero_shot_beats_chance(trained):
    output, summary = trained
    losses = _losses(output)
    assert len(losses) == STEPS
    before, after = statistics.mean(losses[:5]), statistics.mean(losses[-20:])
    metrics = summary["metrics"]
    chance = 1 / len(CLASSES)
    log.info(
        "loss %.3f -> %.3f; zero-shot top1 %.3f top5 %.3f (chance %.3f); i2t R@1 %.3f R@5 %.3f;"
        " t2i R@1 %.3f R@5 %.3f; %.1f samples/s",
        before,
        after,
        metrics["zeroshot_top1"],
        metrics["zeroshot_top5"],
        chance,
        metrics["i2t_r1"],
        metrics["i2t_r5"],
        metrics["t2i_r1"],
        metrics["t2i_r5"],
        summary["samples_per_s"],
    )
    assert after < 0.6 * before
    assert metrics["zeroshot_classes"] == 36 and metrics["zeroshot_images"] == 180
    assert metrics["zeroshot_top1"] > 4 * chance
    assert metrics["zeroshot_top5"] > 0.5
    # Retrieval among 200 held-out pairs (chance: R@1 0.005, R@5 0.025).
    assert metrics["retrieval_pairs"] == 200
    assert metrics["i2t_r5"] > 0.05 and metrics["t2i_r5"] > 0.05


def test_caption_retrieval_on_the_eval_set(trained):
    """The eval set's own captions, each ranked among its gallery's 36 (one picture a class)."""
    metrics = trained[1]["metrics"]
    assert (metrics["eval_retrieval_pairs"], metrics["eval_gallery_size"]) == (180, 36)
    for way in ("i2t", "t2i"):
        hits = metrics[f"eval_{way}_hits"]
        assert len(hits) == 180 and set(hits) <= {0, 1}
        assert metrics[f"eval_{way}_r1"] == pytest.approx(sum(hits) / 180)
        assert metrics[f"eval_{way}_r1"] <= metrics[f"eval_{way}_r5"]
        # Chance is 1/36 at 1; the model names colours and shapes well above it.
        assert metrics[f"eval_{way}_r1"] > 3 / 36


def test_a_finished_model_is_measured_again_on_a_changed_eval_set(trained, shards, tmp_path):
    output, summary = trained
    copy = tmp_path / "model"
    shutil.copytree(output, copy)
    other = tmp_path / "eval"
    generate_eval_set(other, n_per_class=2, seed=9, image_size=(64, 64))
    config = train_config(f"train.steps={STEPS}", f"train.eval_data={other}")
    again = run_train(shards, copy, config)["metrics"]
    assert (
        again["zeroshot_images"] == 72
        and again["zeroshot_set"] != summary["metrics"]["zeroshot_set"]
    )
    assert json.loads((copy / "metrics" / f"step_{STEPS:06d}.json").read_text()) == again
    # The same set a second time: nothing is measured again.
    written = (copy / "metrics" / f"step_{STEPS:06d}.json").stat().st_mtime_ns
    assert run_train(shards, copy, config)["metrics"] == again
    assert (copy / "metrics" / f"step_{STEPS:06d}.json").stat().st_mtime_ns == written


def test_metrics_written_per_eval(trained):
    output, summary = trained
    lines = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [100, 200]
    assert json.loads((output / "metrics" / "step_000200.json").read_text()) == summary["metrics"]
    assert (output / "config.yaml").exists()


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, torch.Tensor | bool | int | float | str)


def test_checkpoint_contract(trained):
    output, summary = trained
    folder = output / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "latest.pt",
        "step_000100.pt",
        "step_000200.pt",
    ]
    assert summary["checkpoint"] == str(folder / "latest.pt")
    state = torch.load(folder / "latest.pt", map_location="cpu", weights_only=True)
    for key in ("state_dict", "optimizer", "scheduler", "step", "model", "config", "data", "rng"):
        assert key in state
    assert state["step"] == STEPS and state["model"] == "curate-tiny-vit"
    assert state["config"]["steps"] == STEPS and state["config"]["batch_size"] == 16
    assert not any(k.startswith("module.") for k in state["state_dict"])
    assert _plain(state)
    assert torch.load(folder / "step_000100.pt", weights_only=True)["step"] == 100

    register_project_configs()
    model, _, _ = open_clip.create_model_and_transforms(
        "curate-tiny-vit", pretrained=str(folder / "latest.pt")
    )
    loaded = model.state_dict()
    assert loaded.keys() == state["state_dict"].keys()
    assert all(torch.equal(loaded[k], v) for k, v in state["state_dict"].items())


def test_pretrained_initialises_a_new_run(trained, shards, tmp_path):
    output, _ = trained
    start = torch.load(output / "checkpoints" / "latest.pt", weights_only=True)["state_dict"]
    config = train_config(
        "train.steps=1",
        "train.lr=0.0000001",
        "train.grad_clip=0",
        f"train.pretrained={output / 'checkpoints' / 'latest.pt'}",
    )
    run_train(shards, tmp_path, config)
    after = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)["state_dict"]
    # One step at lr 1e-7 (AdamW moves each weight by about lr): still the pretrained weights.
    assert all(torch.allclose(after[k], v, atol=1e-5) for k, v in start.items())
