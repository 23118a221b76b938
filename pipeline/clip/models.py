"""Load an open_clip model for scoring: any open_clip architecture or one of the project's small
JSON configs, with weights from an open_clip pretrained tag or a local checkpoint file (ours or
open_clip's), loaded with `weights_only=True`. Bad weights are an InputError (exit 2)."""

from __future__ import annotations

import functools
import logging
import pickle
from pathlib import Path

from pipeline.errors import InputError

log = logging.getLogger(__name__)
MODEL_CONFIGS = Path(__file__).with_name("model_configs")


@functools.cache
def register_project_configs() -> list[str]:
    """Make the JSON configs shipped in pipeline/clip/model_configs known to open_clip."""
    import open_clip

    open_clip.add_model_config(MODEL_CONFIGS)
    return sorted(p.stem for p in MODEL_CONFIGS.glob("*.json"))


def known_architectures() -> list[str]:
    import open_clip

    register_project_configs()
    return open_clip.list_models()


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
