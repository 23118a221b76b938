"""Training a small classifier head on CLIP image embeddings, the way LAION's watermark and NSFW
detectors were made (a small MLP over CLIP embeddings of a labelled set, trained with a logistic
loss): the result is TorchScript with a sigmoid at the end, so `annotate.heads` loads it as it is
and its `score_<name>` is a probability (a `select.max` of 0.5 is its decision rule)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.files import write_atomically

log = logging.getLogger(__name__)


class ProbabilityHead(torch.nn.Module):
    """Linear -> ReLU -> Linear -> sigmoid: one probability per embedding."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(width, hidden)
        self.out = torch.nn.Linear(hidden, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


@dataclass(frozen=True)
class HeadFit:
    """A trained head and what its training saw."""

    module: ProbabilityHead
    rows: int
    positives: int
    final_loss: float
    train_accuracy: float


def train_probability_head(
    embeddings: np.ndarray,
    labels: np.ndarray,
    hidden: int = 32,
    epochs: int = 400,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> HeadFit:
    """Fit a `ProbabilityHead` to (n, d) float embeddings and n 0/1 labels: full-batch Adam on
    the class-balanced logistic loss (positives weighted by negatives / positives), seeded, so
    the same inputs give the same head on CPU."""
    x = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"expected (n, d) embeddings and n labels, got {tuple(x.shape)} and {len(y)}"
        )
    positives = int(y.sum())
    if positives in (0, len(y)):
        raise ValueError("a head needs both positive and negative examples")
    torch.manual_seed(seed)
    head = ProbabilityHead(x.shape[1], hidden)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y) - positives) / positives))
    loss = torch.tensor(0.0)
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = loss_fn(head.logits(x), y)
        loss.backward()
        optimiser.step()
    head.eval()
    with torch.no_grad():
        accuracy = float(((head(x) > 0.5).float() == y).float().mean())
    return HeadFit(head, len(y), positives, loss.item(), accuracy)


def save_torchscript_head(module: torch.nn.Module, path: Path) -> Path:
    """Write `module` as TorchScript (by a rename: a reader never sees half a file)."""
    scripted = torch.jit.script(module.eval())
    return write_atomically(path, lambda target: torch.jit.save(scripted, str(target)))
