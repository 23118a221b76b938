"""Classifier heads over the stored CLIP image embeddings (`annotate.heads`): each head maps a
normalised `image_embedding` to one score, written as a `score_<name>` column in the same pass
as CLIP; thresholds come later (`select.min`/`select.max`), as NeMo Curator and LAION do.

Two formats load, neither of which runs pickled code:
- a torch state dict of a stack of Linear layers, loaded with `torch.load(weights_only=True)`:
  LAION's aesthetic predictor v2 as published (`sac+logos+ava1-l14-linearMSE.pth`: keys
  `layers.0`, `layers.2`, `layers.4`, `layers.6`, `layers.7`; ViT-L/14, 768 -> 1024 -> 128 -> 64
  -> 16 -> 1, dropouts between and no activation), or any other depth and width in that layout
  (a Lightning checkpoint's `state_dict` too). The layers are applied in key order, with nothing
  between them, as that predictor does;
- TorchScript (`torch.jit.save`), for a head of any other shape (activations, a sigmoid).
A file that is neither (a pickled module, a plain pickle) is refused.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.errors import ConfigError
from pipeline.storage import as_path

log = logging.getLogger(__name__)

_LINEAR_KEY = re.compile(r"^(?P<prefix>.*?)(?P<index>\d+)\.weight$")


@dataclass(frozen=True)
class Head:
    """A loaded head: its module (eval mode, CPU), the embedding width it takes, its format."""

    name: str
    path: str
    module: torch.nn.Module
    in_features: int | None
    kind: str  # "state_dict" or "torchscript"

    @torch.no_grad()
    def score(self, embeddings: np.ndarray) -> np.ndarray:
        """One float32 score per row of a float32 (n, d) matrix."""
        if self.in_features is not None and embeddings.shape[1] != self.in_features:
            raise ConfigError(
                f"config annotate.heads.{self.name}: the head takes {self.in_features}-wide "
                f"embeddings, the CLIP model gives {embeddings.shape[1]}"
            )
        try:
            out = self.module(torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)))
        except RuntimeError as err:  # a TorchScript head of another width
            raise ConfigError(
                f"config annotate.heads.{self.name}: the head cannot score "
                f"{embeddings.shape[1]}-wide embeddings: {str(err).splitlines()[0][:200]}"
            ) from None
        out = out.reshape(len(embeddings), -1)
        if out.shape[1] != 1:
            raise ConfigError(
                f"config annotate.heads.{self.name}: the head gives {out.shape[1]} outputs a row, not 1"
            )
        return out[:, 0].float().numpy()


class _LinearStack(torch.nn.Module):
    """Linear layers applied in order with nothing between them (LAION's aesthetic v2 layout)."""

    def __init__(self, layers: list[torch.nn.Linear]) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def _is_torchscript(data: bytes) -> bool:
    """TorchScript archives hold the module's code (`<archive>/code/`); torch.save's do not."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return False
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return any("/code/" in name for name in archive.namelist())


def _linear_stack(name: str, state: Mapping[str, torch.Tensor]) -> _LinearStack:
    """The Linear stack a state dict describes: `<prefix><i>.weight` (and `.bias`) in index order,
    each layer's input the previous one's output, one output at the end."""
    found = []
    for key, value in state.items():
        match = _LINEAR_KEY.match(key)
        if match and isinstance(value, torch.Tensor) and value.ndim == 2:
            found.append((int(match["index"]), match["prefix"], key))
    if not found:
        raise ConfigError(f"config annotate.heads.{name}: no Linear weights in the state dict")
    prefixes = {prefix for _, prefix, _ in found}
    if len(prefixes) != 1:
        raise ConfigError(
            f"config annotate.heads.{name}: Linear weights under several prefixes {sorted(prefixes)}"
        )
    layers = []
    width = None
    for index, prefix, key in sorted(found):
        weight = state[key].float()
        if width is not None and weight.shape[1] != width:
            raise ConfigError(
                f"config annotate.heads.{name}: layer {prefix}{index} takes {weight.shape[1]} "
                f"inputs, the layer before gives {width}"
            )
        bias = state.get(f"{prefix}{index}.bias")
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias.float())
        layers.append(layer)
        width = weight.shape[0]
    if width != 1:
        raise ConfigError(
            f"config annotate.heads.{name}: the last layer gives {width} outputs, not 1"
        )
    return _LinearStack(layers).eval()


def load_head(name: str, path: str) -> Head:
    """Load one head file (a path or URL); ConfigError when it cannot be used. The name was
    checked with the config (`AnnotateConfig.validate`)."""
    try:
        data = as_path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"config annotate.heads.{name}: cannot read {path}: {err}") from None
    if _is_torchscript(data):
        module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
        return Head(name, path, module, None, "torchscript")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise ConfigError(
            f"config annotate.heads.{name}: {path} is neither a state dict nor TorchScript; "
            f"pickled code is refused (weights_only loading): {str(err).splitlines()[0][:200]}"
        ) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a Lightning checkpoint
    if not isinstance(state, Mapping):
        raise ConfigError(f"config annotate.heads.{name}: {path} holds a {type(state).__name__}")
    module = _linear_stack(name, state)
    return Head(name, path, module, module.layers[0].in_features, "state_dict")


_CACHE: dict[tuple[str, str], Head] = {}
_CACHE_LOCK = threading.Lock()


def loaded_heads(heads: Mapping[str, str]) -> list[Head]:
    """The heads of `annotate.heads` ({name: file}), each loaded once per process."""
    out = []
    with _CACHE_LOCK:
        for name, path in sorted(heads.items()):
            key = (name, str(path))
            if key not in _CACHE:
                _CACHE[key] = load_head(name, str(path))
                log.info("annotate: head %s loaded from %s", name, path)
            out.append(_CACHE[key])
    return out
