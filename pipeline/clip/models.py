"""Load an open_clip model for scoring: any open_clip architecture or one of the project's small
JSON configs, with weights from an open_clip pretrained tag or a local checkpoint file (ours or
open_clip's), loaded with `weights_only=True`. Bad weights are an InputError (exit 2)."""

from __future__ import annotations

import functools
import json
import logging
import pickle
import tempfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from pipeline.errors import InputError

log = logging.getLogger(__name__)
# A Traversable: a folder when the package is on disk, a zipfile.Path inside the --py-files zip
# that executors import from (where Path(__file__) names no real file).
MODEL_CONFIGS: Traversable = files(__package__) / "model_configs"


def project_configs() -> dict[str, str]:
    """Architecture name -> JSON text of the configs shipped in pipeline/clip/model_configs."""
    return {
        entry.name.removesuffix(".json"): entry.read_text(encoding="utf-8")
        for entry in sorted(MODEL_CONFIGS.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }


@functools.cache
def register_project_configs() -> list[str]:
    """Make the project's JSON configs known to open_clip; returns their names."""
    import open_clip

    configs = project_configs()
    for name, text in configs.items():
        try:
            json.loads(text)
        except ValueError as exc:  # open_clip's own error would not name the file
            raise RuntimeError(f"model_configs/{name}.json is not valid JSON ({exc})") from exc
    # open_clip registers configs from files only, and ours may sit inside a zip: it reads
    # copies once (its registry keeps them after the folder is gone).
    with tempfile.TemporaryDirectory(prefix="curate-clip-configs-") as tmp:
        for name, text in configs.items():
            (Path(tmp) / f"{name}.json").write_text(text, encoding="utf-8")
        open_clip.add_model_config(tmp)
    missing = sorted(set(configs) - set(open_clip.list_models()))
    if missing:
        # open_clip skips a config without embed_dim, vision_cfg and text_cfg silently.
        raise RuntimeError(f"open_clip did not accept the model configs {missing}")
    return sorted(configs)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _weights_hint(model: str) -> str:
    return (
        f"point clip.pretrained at a local checkpoint file (open_clip's or one written by "
        f"`curate train`, for architecture {model}), or set clip.enabled=false for pHash-only annotation"
    )


def check_pretrained(model: str, pretrained: str) -> None:
    """Fail fast (InputError) on an unknown architecture or a missing checkpoint file."""
    import open_clip

    register_project_configs()
    if model not in open_clip.list_models():
        raise InputError(
            f"clip.model: unknown architecture {model!r} (see open_clip.list_models())"
        )
    looks_like_path = "/" in pretrained or pretrained.endswith(
        (".pt", ".pth", ".bin", ".safetensors")
    )
    if looks_like_path and not Path(pretrained).is_file():
        raise InputError(
            f"clip.pretrained: no checkpoint file at {pretrained}; {_weights_hint(model)}"
        )


@functools.lru_cache(maxsize=2)
def load_clip(model: str, pretrained: str, device: str):  # type: ignore[no-untyped-def]
    """(model in eval mode on `device`, image preprocess, tokenizer), once per process.

    `pretrained` is a checkpoint path (loaded by open_clip with weights_only=True), an
    open_clip pretrained tag (fetched by open_clip, which needs network), or "" for random
    weights (benchmarks). Anything that cannot be loaded is an InputError naming the file.
    """
    import open_clip

    check_pretrained(model, pretrained)
    is_file = bool(pretrained) and Path(pretrained).is_file()
    try:
        net, _, preprocess = open_clip.create_model_and_transforms(
            model, pretrained=pretrained or None, device=device
        )
    except (
        RuntimeError,
        AssertionError,
        OSError,
        ValueError,
        EOFError,
        KeyError,
        pickle.UnpicklingError,
    ) as exc:
        # Wrong architecture (missing/unexpected keys, size mismatch), a corrupt or pickled
        # file refused by weights_only, an unknown tag, or a hub download without network.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        if is_file:
            problem = f"checkpoint {pretrained} does not load into {model} ({first})"
        else:
            problem = (
                f"cannot fetch pretrained weights {pretrained!r} for {model} (no network? {first})"
            )
        raise InputError(f"clip.pretrained: {problem}; {_weights_hint(model)}") from exc
    net.eval()
    log.info("clip: loaded %s (%s) on %s", model, pretrained or "random weights", device)
    return net, preprocess, open_clip.get_tokenizer(model)


def embedding_width(model) -> int:  # type: ignore[no-untyped-def]
    """The width of the model's image embedding (open_clip's vision towers all record it)."""
    return int(model.visual.output_dim)
