"""CLIP score of image-caption pairs: cosine similarity of the normalised image and text
embeddings (what LAION thresholds at 0.28 with ViT-B/32), in batches, model loaded once per
Python process, with the normalised image embeddings as float16 bytes (semantic dedup reads
them) and, optionally, the text embeddings."""

from __future__ import annotations

import functools
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipeline.clip.models import load_clip, resolve_device
from pipeline.clip.settings import ClipConfig


@dataclass(frozen=True)
class Scores:
    """Per pair: the CLIP score, the image embedding and (with save_embeddings) the text
    embedding, as float16 bytes."""

    scores: np.ndarray
    image_embeddings: list[bytes]
    text_embeddings: list[bytes] | None


@functools.cache
def _set_threads(threads: int) -> None:
    import torch

    if threads > 0:
        torch.set_num_threads(threads)


def _prepare(data: bytes, preprocess, size: int):  # type: ignore[no-untyped-def]
    image = Image.open(io.BytesIO(data))
    if image.format == "JPEG":
        image.draft("RGB", (size, size))  # decode no larger than the model will look at
    return preprocess(image.convert("RGB"))


def _image_size(net) -> int:  # type: ignore[no-untyped-def]
    size = getattr(net.visual, "image_size", 224)
    return max(size) if isinstance(size, tuple | list) else int(size)


def _autocast(device: str):  # type: ignore[no-untyped-def]
    """bf16 autocast on CUDA, none on CPU: the same for the pool and for reference images."""
    import torch

    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def score_pairs(images: list[bytes], captions: list[str], cfg: ClipConfig) -> Scores:
    """CLIP scores for aligned lists of encoded images and captions."""
    import torch

    _set_threads(cfg.threads)
    device = resolve_device(cfg.device)
    net, preprocess, tokenizer = load_clip(cfg.model, cfg.pretrained, device)
    size = _image_size(net)
    scores: list[np.ndarray] = []
    image_out: list[bytes] = []
    text_out: list[bytes] = []
    autocast = _autocast(device)
    with ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, len(images), cfg.batch_size):
            chunk = images[start : start + cfg.batch_size]
            # Decoding and resizing release the GIL: prepare the batch in threads.
            pixels = torch.stack(
                list(pool.map(functools.partial(_prepare, preprocess=preprocess, size=size), chunk))
            )
            tokens = tokenizer(captions[start : start + cfg.batch_size])
            with torch.no_grad(), autocast:
                image_emb = net.encode_image(pixels.to(device), normalize=True).float()
                text_emb = net.encode_text(tokens.to(device), normalize=True).float()
            scores.append((image_emb * text_emb).sum(dim=-1).cpu().numpy().astype(np.float32))
            image_out += [row.tobytes() for row in image_emb.cpu().numpy().astype(np.float16)]
            if cfg.save_embeddings:
                text_out += [row.tobytes() for row in text_emb.cpu().numpy().astype(np.float16)]
    return Scores(
        scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
        image_embeddings=image_out,
        text_embeddings=text_out if cfg.save_embeddings else None,
    )


def embed_images(images: list[bytes], cfg: ClipConfig) -> list[bytes]:
    """Normalised image embeddings (float16 bytes) of encoded images, as score_pairs makes them:
    for reference sets (dedup.exclude) embedded by the same model as the pool."""
    import torch

    _set_threads(cfg.threads)
    device = resolve_device(cfg.device)
    net, preprocess, _ = load_clip(cfg.model, cfg.pretrained, device)
    size = _image_size(net)
    out: list[bytes] = []
    for start in range(0, len(images), cfg.batch_size):
        chunk = images[start : start + cfg.batch_size]
        pixels = torch.stack([_prepare(data, preprocess, size) for data in chunk])
        with torch.no_grad(), _autocast(device):
            emb = net.encode_image(pixels.to(device), normalize=True).float()
        out += [row.tobytes() for row in emb.cpu().numpy().astype(np.float16)]
    return out
