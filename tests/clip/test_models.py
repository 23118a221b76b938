"""Loading CLIP weights: every way a checkpoint can be wrong is exit 2 with a message naming
the file and the problem, before any Spark task starts."""

from __future__ import annotations

import pytest
import torch

from pipeline.cli import main
from pipeline.clip.models import load_clip
from pipeline.errors import InputError
from tests.conftest import copy_run


class NotWeights:
    """Pickled as an object, so a weights-only load must refuse it."""


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory):
    base = tmp_path_factory.mktemp("ckpt")
    load_clip.cache_clear()
    micro, _, _ = load_clip("curate-micro-vit", "", "cpu")
    torch.save({"state_dict": micro.state_dict()}, base / "micro.pt")
    (base / "corrupt.pt").write_bytes(b"\x80\x04 this is not a checkpoint" * 10)
    torch.save({"state_dict": NotWeights()}, base / "pickled.pt")
    return base


@pytest.mark.parametrize(
    ("model", "name", "message"),
    [
        ("curate-micro-vit", "missing.pt", "no checkpoint file at {base}/missing.pt"),
        (
            "curate-micro-vit",
            "corrupt.pt",
            "checkpoint {base}/corrupt.pt does not load into curate-micro-vit",
        ),
        (
            "curate-micro-vit",
            "pickled.pt",
            "checkpoint {base}/pickled.pt does not load into curate-micro-vit",
        ),
        (
            "curate-tiny-vit",
            "micro.pt",
            "checkpoint {base}/micro.pt does not load into curate-tiny-vit",
        ),
        ("no-such-arch", "micro.pt", "unknown architecture 'no-such-arch'"),
    ],
)
def test_bad_weights_are_input_errors(bad_checkpoints, model, name, message):
    with pytest.raises(InputError) as err:
        load_clip(model, str(bad_checkpoints / name), "cpu")
    assert message.format(base=bad_checkpoints) in str(err.value)
    assert "clip.pretrained" in str(err.value) or "clip.model" in str(err.value)


def test_offline_tag_says_how_to_proceed():
    with pytest.raises(InputError) as err:
        load_clip("ViT-B-32", "openai", "cpu")
    assert "cannot fetch pretrained weights 'openai'" in str(err.value)
    assert "clip.enabled=false" in str(err.value)


def test_good_checkpoint_loads(bad_checkpoints):
    net, _, tokenizer = load_clip("curate-micro-vit", str(bad_checkpoints / "micro.pt"), "cpu")
    assert not net.training
    assert tokenizer(["a red circle"]).shape == (1, 24)


def test_annotate_with_a_corrupt_checkpoint_exits_2(downloaded, bad_checkpoints, tmp_path, capsys):
    run = copy_run(downloaded[0].root, tmp_path / "run")
    code = main(
        [
            "annotate",
            "--run-dir",
            str(run.root),
            "--set",
            "clip.model=curate-micro-vit",
            "--set",
            f"clip.pretrained={bad_checkpoints / 'corrupt.pt'}",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and str(bad_checkpoints / "corrupt.pt") in err[0]
    assert not run.annotations.exists()
