"""Classifier heads over the stored image embeddings: LAION's aesthetic predictor v2 layout loads
as published (weights_only), TorchScript loads, pickled code is refused, shapes are checked, and
annotate writes each head's `score_<name>` column from the stored embedding."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.clip.heads import load_head
from pipeline.config import load_config
from pipeline.dedup.semantic.kernels import to_matrix
from pipeline.errors import ConfigError
from pipeline.runner import run_stage
from tests.conftest import clip_overrides, copy_run


class AestheticMLP(torch.nn.Module):
    """LAION's improved-aesthetic-predictor v2 `MLP` (simple_inference.py), without Lightning."""

    def __init__(self, input_size: int = 768) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(input_size, 1024),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(1024, 128),
            torch.nn.Dropout(0.2),
            torch.nn.Linear(128, 64),
            torch.nn.Dropout(0.1),
            torch.nn.Linear(64, 16),
            torch.nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SigmoidHead(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(width, 8)
        self.out = torch.nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(torch.relu(self.hidden(x))))


def _embeddings(n: int, width: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, width)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_laion_aesthetic_v2_state_dict_loads_as_published(tmp_path):
    torch.manual_seed(0)
    model = AestheticMLP().eval()
    path = tmp_path / "sac+logos+ava1-l14-linearMSE.pth"
    torch.save(model.state_dict(), path)
    head = load_head("aesthetic", str(path))
    assert (head.kind, head.in_features) == ("state_dict", 768)
    x = _embeddings(5, 768)
    with torch.no_grad():
        expected = model(torch.from_numpy(x))[:, 0].numpy()
    np.testing.assert_allclose(head.score(x), expected, rtol=1e-5, atol=1e-6)


def test_lightning_checkpoint_state_dict_loads(tmp_path):
    torch.manual_seed(1)
    model = AestheticMLP(input_size=32).eval()
    path = tmp_path / "head.ckpt"
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)
    x = _embeddings(4, 32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x))[:, 0].numpy()
    np.testing.assert_allclose(load_head("a", str(path)).score(x), expected, rtol=1e-5, atol=1e-6)


def test_torchscript_head_loads(tmp_path):
    torch.manual_seed(2)
    model = SigmoidHead(32).eval()
    path = tmp_path / "nsfw.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    head = load_head("nsfw", str(path))
    assert head.kind == "torchscript"
    x = _embeddings(6, 32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x))[:, 0].numpy()
    np.testing.assert_allclose(head.score(x), expected, rtol=1e-6)
    assert ((head.score(x) > 0) & (head.score(x) < 1)).all()


class Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("pickled code ran",))


@pytest.mark.parametrize(
    "write",
    [
        # A whole pickled module (torch.save(model)): its class is pickled code.
        lambda path: torch.save(SigmoidHead(8), path),
        # A plain pickle that runs a function when loaded.
        lambda path: path.write_bytes(pickle.dumps(Evil())),
    ],
    ids=["pickled_module", "plain_pickle"],
)
def test_pickled_code_is_refused(tmp_path, write, capsys):
    path = tmp_path / "head.pt"
    write(path)
    with pytest.raises(ConfigError, match="pickled code is refused"):
        load_head("h", str(path))
    assert "pickled code ran" not in capsys.readouterr().out


SHAPE_CASES = [
    (
        {"layers.0.weight": torch.zeros(4, 8), "layers.1.weight": torch.zeros(1, 5)},
        "takes 5 inputs",
    ),
    ({"layers.0.weight": torch.zeros(4, 8)}, "gives 4 outputs, not 1"),
    ({"a.0.weight": torch.zeros(4, 8), "b.1.weight": torch.zeros(1, 4)}, "several prefixes"),
    ({"bias": torch.zeros(3)}, "no Linear weights"),
]


@pytest.mark.parametrize(("state", "message"), SHAPE_CASES)
def test_state_dict_shapes_are_checked(tmp_path, state, message):
    path = tmp_path / "head.pth"
    torch.save(state, path)
    with pytest.raises(ConfigError, match=message):
        load_head("h", str(path))


def test_a_head_of_the_wrong_width_is_refused_when_scoring(tmp_path):
    path = tmp_path / "head.pth"
    torch.save(AestheticMLP(input_size=16).state_dict(), path)
    with pytest.raises(ConfigError, match="takes 16-wide embeddings, the CLIP model gives 32"):
        load_head("h", str(path)).score(_embeddings(2, 32))


def test_a_torchscript_head_of_the_wrong_width_is_refused(tmp_path):
    path = tmp_path / "head.pt"
    torch.jit.save(torch.jit.script(SigmoidHead(16).eval()), str(path))
    with pytest.raises(ConfigError, match="cannot score 32-wide embeddings"):
        load_head("h", str(path)).score(_embeddings(2, 32))


def test_annotate_writes_head_scores_from_the_stored_embeddings(scored, tiny_checkpoint, tmp_path):
    source, _ = scored
    run = copy_run(source.root, tmp_path / "run")
    dim = to_matrix(pq.read_table(run.annotations, columns=["image_embedding"]).column(0)).shape[1]
    torch.manual_seed(3)
    state_path, script_path = tmp_path / "aesthetic.pth", tmp_path / "nsfw.pt"
    torch.save(AestheticMLP(input_size=dim).state_dict(), state_path)
    torch.jit.save(torch.jit.script(SigmoidHead(dim).eval()), str(script_path))
    heads = f"annotate.heads={{aesthetic: {state_path}, nsfw: {script_path}}}"
    config = load_config(None, [*clip_overrides(tiny_checkpoint), heads])
    run_stage("annotate", run.root, config)
    table = pq.read_table(run.annotations)
    embeddings = to_matrix(table.column("image_embedding"))
    for name, path in (("aesthetic", state_path), ("nsfw", script_path)):
        expected = load_head(name, str(path)).score(embeddings)
        np.testing.assert_allclose(
            table.column(f"score_{name}").to_numpy(), expected, rtol=1e-5, atol=1e-6
        )


def test_heads_without_clip_are_a_config_error(tmp_path):
    from pipeline.annotate.stage import preflight

    config = load_config(
        None, ["clip.enabled=false", f"annotate.heads={{a: {tmp_path / 'a.pth'}}}"]
    )
    with pytest.raises(ConfigError, match=r"set clip\.enabled"):
        preflight(config)
