"""Training a probability head on embeddings: it learns a separable set, is deterministic for a
seed, refuses one-class data, and its TorchScript file loads through annotate.heads' loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.clip.head_training import save_torchscript_head, train_probability_head
from pipeline.clip.heads import load_head


def _blobs(n: int = 200, width: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds on the unit sphere, as CLIP embeddings are, 1.5 sigma apart."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    centre = np.zeros(width)
    centre[0] = 1.5
    x = rng.normal(size=(n, width)) + np.where(labels[:, None] == 1, centre, -centre)
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def test_a_head_learns_a_separable_set_and_loads_as_torchscript(tmp_path):
    x, y = _blobs()
    fit = train_probability_head(x, y, seed=0)
    assert (fit.rows, fit.positives) == (200, 100)
    assert fit.train_accuracy >= 0.9
    path = save_torchscript_head(fit.module, tmp_path / "head.pt")
    head = load_head("off_target", str(path))
    assert head.kind == "torchscript"
    held_out, truth = _blobs(seed=1)
    scores = head.score(held_out.astype(np.float32))
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()
    assert ((scores > 0.5) == (truth == 1)).mean() >= 0.9


def test_the_same_seed_gives_the_same_head():
    x, y = _blobs()
    a, b = train_probability_head(x, y, seed=3), train_probability_head(x, y, seed=3)
    for pa_, pb in zip(a.module.parameters(), b.module.parameters(), strict=True):
        assert torch.equal(pa_, pb)
    assert a.final_loss == b.final_loss


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros(10, np.int64), "both positive and negative"),
        (np.ones(10, np.int64), "both positive and negative"),
        (np.zeros(9, np.int64), "expected"),
    ],
)
def test_unusable_training_sets_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        train_probability_head(np.zeros((10, 4)), labels)
